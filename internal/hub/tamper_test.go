package hub_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// addDepts appends n dept.added entries named "Department d<i>".
func addDepts(t *testing.T, env *testenv.Env, n int) uint64 {
	t.Helper()
	var seq uint64
	for i := range n {
		r, err := testenv.RPC(env.Admin).Departments.AddDepartment(context.Background(), &xhubv1.AddDepartmentRequest{Id: fmt.Sprintf("d%d", i), Name: fmt.Sprintf("Department d%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		seq = r.Seq
	}
	return seq
}

func verifier(t *testing.T, c *adapters.Client) *adapters.LedgerVerifier {
	t.Helper()
	lv, err := c.LedgerVerifier("")
	if err != nil {
		t.Fatal(err)
	}
	return lv
}

// rewriteStream replaces XHUB_LEDGER of a stopped hub with fn applied to
// each entry, as someone with access to NATS could.
func rewriteStream(t *testing.T, dir string, fn func(seq uint64, raw []byte) []byte) {
	t.Helper()
	emb, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect("tamper")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	s, err := js.Stream(ctx, bus.LedgerStream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	var raws [][]byte
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, fn(seq, m.Data))
	}
	if err := js.DeleteStream(ctx, bus.LedgerStream); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, bus.Ledger(1)); err != nil {
		t.Fatal(err)
	}
	for _, raw := range raws {
		if _, err := js.Publish(ctx, bus.LedgerSubject, raw); err != nil {
			t.Fatal(err)
		}
	}
}

// alterBadgerEntry rewrites the stored copy of entry seq in a stopped
// hub's Badger.
func alterBadgerEntry(t *testing.T, dir string, seq uint64, fn func([]byte) []byte) {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "badger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := append([]byte(keyspace.Entries), binary.BigEndian.AppendUint64(nil, seq)...)
	err = st.Update(func(txn *store.Txn) error {
		raw, ok, err := txn.GetRaw(key)
		if err != nil || !ok {
			return fmt.Errorf("entry %d: %v", seq, err)
		}
		return txn.PutRaw(key, fn(raw))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rename(from, to string) func([]byte) []byte {
	return func(raw []byte) []byte {
		if !bytes.Contains(raw, []byte(from)) {
			panic("nothing to alter")
		}
		return bytes.Replace(raw, []byte(from), []byte(to), 1)
	}
}

func TestVerifyNamesTheAlteredEntry(t *testing.T) {
	for _, tc := range []struct {
		name string
		dept int // which department's entry to alter
	}{{"middle", 3}, {"last", 9}} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.Start(t)
			addDepts(t, env, 10)
			// entries: 1 hub.init, 2 admin cred, 3.. dept d0..d9
			seq := uint64(3 + tc.dept)
			rep, err := verifier(t, env.Admin).Verify(context.Background(), nil)
			if err != nil || rep.Mismatch != nil || rep.Entries != 12 {
				t.Fatalf("clean ledger: %+v %v", rep, err)
			}
			env.Stop()
			from, to := fmt.Sprintf("Department d%d", tc.dept), fmt.Sprintf("Department X%d", tc.dept)
			alterBadgerEntry(t, env.Dir, seq, rename(from, to))
			rewriteStream(t, env.Dir, func(s uint64, raw []byte) []byte {
				if s == seq {
					return rename(from, to)(raw)
				}
				return raw
			})
			env.Restart()
			rep, err = verifier(t, env.Admin).Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Mismatch == nil || rep.Mismatch.Seq != seq {
				t.Fatalf("verify after altering entry %d: %+v", seq, rep.Mismatch)
			}
		})
	}
}

// TestRewriteBreaksEarlierProofs: a rewrite that re-chains every later
// entry and rebuilds the views is self-consistent, but a department that
// kept an earlier head or proof sees it.
func TestRewriteBreaksEarlierProofs(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	addDepts(t, env, 10)
	lv := verifier(t, env.Admin)
	_, oldHead, err := lv.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldProof, err := testenv.RPC(env.Admin).Ledger.InclusionProof(ctx, &xhubv1.InclusionProofRequest{Seq: 5})
	if err != nil {
		t.Fatal(err)
	}
	oldTree, _ := lv.OpenHead(oldHead)
	if err := ledger.CheckInclusion(oldTree, 5, oldProof.Entry.Raw, oldProof.Proof); err != nil {
		t.Fatalf("proof before rewrite: %v", err)
	}
	env.Stop()

	var prev ledger.Hash
	rewriteStream(t, env.Dir, func(seq uint64, raw []byte) []byte {
		if seq == 5 {
			raw = rename("Department d2", "Department Z2")(raw)
		}
		e, err := ledger.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		e.Prev = prev
		out := e.Marshal()
		prev = ledger.LeafHash(out)
		return out
	})
	if err := os.RemoveAll(filepath.Join(env.Dir, "badger")); err != nil {
		t.Fatal(err)
	}
	env.Restart() // rebuilds the views from the rewritten log

	lv = verifier(t, env.Admin)
	rep, err := lv.Verify(ctx, nil)
	if err != nil || rep.Mismatch != nil {
		t.Fatalf("a consistent rewrite verifies on its own (%+v, %v); only earlier heads can catch it", rep, err)
	}
	if _, _, err := lv.Consistency(ctx, oldHead); !errors.Is(err, ledger.ErrProof) {
		t.Fatalf("consistency with the head saved before the rewrite: %v, want ErrProof", err)
	}
	newTree, _, err := lv.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.CheckInclusion(newTree, 5, oldProof.Entry.Raw, oldProof.Proof); err == nil {
		t.Fatal("an inclusion proof made before the rewrite verifies against the rewritten log")
	}
}

func TestHeadSignatures(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	addDepts(t, env, 3)
	lv := verifier(t, env.Admin)
	_, head, err := lv.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(head, []byte("\n5\n"), []byte("\n4\n"), 1) // claim a shorter log
	if bytes.Equal(forged, head) {
		t.Fatal("test head has an unexpected size")
	}
	if _, err := lv.OpenHead(forged); !errors.Is(err, ledger.ErrBadSignature) {
		t.Fatalf("altered head text: %v", err)
	}
	sig := bytes.Clone(head)
	sig[len(sig)-5] ^= 1
	if _, err := lv.OpenHead(sig); !errors.Is(err, ledger.ErrBadSignature) {
		t.Fatalf("altered signature: %v", err)
	}
	skey, _, _ := note.GenerateKey(rand.Reader, "xhub-ledger")
	signer, _ := note.NewSigner(skey)
	other, _ := ledger.SignHead(ledger.Tree{N: 5}, signer)
	if _, err := lv.OpenHead(other); !errors.Is(err, ledger.ErrBadSignature) {
		t.Fatalf("head signed by another key with the same name: %v", err)
	}
}

func TestConsistencyBetweenHeads(t *testing.T) {
	a := testenv.Start(t)
	ctx := context.Background()
	addDepts(t, a, 4)
	lv := verifier(t, a.Admin)
	_, early, err := lv.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(a.Admin).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: "later", Name: "Later"}); err != nil {
		t.Fatal(err)
	}
	old, cur, err := lv.Consistency(ctx, early)
	if err != nil || cur.N != old.N+1 {
		t.Fatalf("consistency %d → %d: %v", old.N, cur.N, err)
	}

	// Another log signed with the same key (a second hub started from a
	// copy of the pki): its head is not a prefix of this log.
	dirB := t.TempDir()
	a.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB)
	addDepts(t, b, 2)
	_, bHead, err := verifier(t, b.Admin).Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := lv.Consistency(ctx, bHead); !errors.Is(err, ledger.ErrProof) {
		t.Fatalf("consistency with an unrelated log's head: %v, want ErrProof", err)
	}
}
