package ledger

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// chain builds n canonical, chained entries.
func chain(tb testing.TB, n int) [][]byte {
	tb.Helper()
	var prev Hash
	out := make([][]byte, n)
	at := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for i := range n {
		e, err := New(uint64(i+1), prev, at, "spiffe://xhub/dept/hub/admin/admin", "dept.added", fmt.Sprintf("d%d", i), map[string]string{"id": fmt.Sprintf("d%d", i)})
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = e.Marshal()
		prev = LeafHash(out[i])
	}
	return out
}

func TestVerifierFindsBreaks(t *testing.T) {
	entries := chain(t, 20)
	v := &Verifier{}
	for _, raw := range entries {
		if err := v.Add(raw); err != nil {
			t.Fatal(err)
		}
	}
	tree, _ := v.Tree()

	// Signed head round trip.
	skey, vkey, _ := note.GenerateKey(rand.Reader, "xhub-ledger")
	signer, _ := note.NewSigner(skey)
	msg, err := SignHead(tree, signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenHead(msg, vkey)
	if err != nil || got != tree {
		t.Fatalf("open head: %v %v", got, err)
	}

	// Inclusion and consistency with tlog's proofs over the same hashes.
	proof, err := tlog.ProveRecord(tree.N, 6, v.stored)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckInclusion(tree, 7, entries[6], ProofBytes(proof)); err != nil {
		t.Fatalf("inclusion: %v", err)
	}
	if err := CheckInclusion(tree, 8, entries[6], ProofBytes(proof)); !errors.Is(err, ErrProof) {
		t.Fatalf("inclusion at the wrong position: %v", err)
	}
	old, _ := v.TreeAt(9)
	tp, _ := tlog.ProveTree(tree.N, 9, v.stored)
	if err := CheckConsistency(old, tree, ProofBytes(tp)); err != nil {
		t.Fatalf("consistency: %v", err)
	}
	other := &Verifier{}
	for _, raw := range chain(t, 9)[:8] {
		_ = other.Add(raw)
	}
	_ = other.Add([]byte(`{"v":1}`)) // a different 9th entry: an unrelated log
	unrelated, _ := other.Tree()
	if err := CheckConsistency(unrelated, tree, ProofBytes(tp)); !errors.Is(err, ErrProof) {
		t.Fatalf("consistency from an unrelated log: %v", err)
	}

	tests := []struct {
		name   string
		mutate func([][]byte) [][]byte
		seq    uint64
	}{
		{"malformed", func(e [][]byte) [][]byte { e[4] = []byte("{"); return e }, 5},
		{"wrong seq", func(e [][]byte) [][]byte { e[4], e[5] = e[5], e[4]; return e }, 5},
		{"broken chain", func(e [][]byte) [][]byte {
			e[9] = bytes.Replace(e[9], []byte(`"id":"d9"`), []byte(`"id":"x9"`), 1)
			return e
		}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := tt.mutate(chain(t, 20))
			v := &Verifier{}
			var first *MismatchError
			for _, raw := range es {
				var me *MismatchError
				if err := v.Add(raw); errors.As(err, &me) && first == nil {
					first = me
				}
			}
			if first == nil || first.Seq != tt.seq+boolToSeq(tt.name == "broken chain") {
				t.Fatalf("first mismatch %+v, want entry %d", first, tt.seq)
			}
			if v.Len() != 20 {
				t.Fatalf("verifier stopped at %d", v.Len())
			}
		})
	}
}

// boolToSeq: altering entry k breaks the chain at k+1.
func boolToSeq(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// BenchmarkVerify1M recomputes a ledger of 1,000,000 entries: canonical
// parse, chain check, leaf hash and the whole RFC 6962 tree, as `xhub
// ledger verify` does after fetching the entries.
func BenchmarkVerify1M(b *testing.B) {
	const n = 1_000_000
	entries := chain(b, n)
	b.ResetTimer()
	for b.Loop() {
		v := &Verifier{}
		for _, raw := range entries {
			if err := v.Add(raw); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := v.Tree(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
