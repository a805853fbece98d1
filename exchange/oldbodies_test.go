package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/internal/store"
)

// replayFixture applies a fixture ledger on a node of its own and returns
// the node and its store.
func replayFixture(t *testing.T, name string) (*ControlPlane, *store.Store, *memLog) {
	t.Helper()
	log := newMemLog()
	log.entries = fixture(t, name)
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var logs syncBuffer
	cp, err := Open(context.Background(), Config{Store: st, Log: log, SweepInterval: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Close)
	if err := cp.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "void") {
		t.Fatalf("%s: entries refused at apply:\n%s", name, logs.String())
	}
	return cp, st, log
}

// TestOldBodiesStayValid: entries whose bodies carry the zero values the
// apply fills in (registered_at, created_at, seq … as the code wrote them
// until now: testdata/ledger/every-kind-v1.jsonl) stay valid for good:
// each chains and is proved in the tree head as `xhub ledger verify`
// checks, none is void at apply, a node that applied them verifies its
// views at its next start, and they give the same views as the bodies the
// code writes now.
func TestOldBodiesStayValid(t *testing.T) {
	old, oldSt, oldLog := replayFixture(t, "every-kind-v1.jsonl")
	_, newSt, _ := replayFixture(t, "every-kind.jsonl")

	var prev ledger.Hash
	head, err := old.TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range oldLog.entries {
		seq := uint64(i + 1)
		if _, err := ledger.Check(raw, seq, prev); err != nil {
			t.Fatalf("entry %d does not check: %v", seq, err)
		}
		prev = ledger.LeafHash(raw)
		tr, proof, stored, err := old.InclusionProof(seq, 0)
		if err != nil || tr != head || !bytes.Equal(stored, raw) {
			t.Fatalf("inclusion proof of %d: %v", seq, err)
		}
		if err := ledger.CheckInclusion(head, seq, raw, proof); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := tlog.TreeHash(head.N, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return txnHashes(t, oldSt, idx), nil
	})); err != nil || h != head.Hash {
		t.Fatalf("tree head: %v", err)
	}

	// The views, but for what the bytes of an entry decide (its copy, the
	// tree, the last leaf) and a join token's verifier (the two ledgers
	// were made with two random secrets), are the same.
	views := func(st *store.Store) map[string]string {
		out := map[string]string{}
		_ = st.View(func(txn *store.Txn) error {
			return txn.Scan("", "", func(k string, v []byte) (bool, error) {
				switch {
				case strings.HasPrefix(k, string(keyspace.Entries)), strings.HasPrefix(k, string(keyspace.TreeHashes)), k == keyLast:
					return true, nil
				case strings.HasPrefix(k, string(keyspace.JoinTokens)):
					var m map[string]any
					_ = json.Unmarshal(v, &m)
					delete(m, "verifier")
					v, _ = json.Marshal(m)
				}
				out[k] = string(v)
				return true, nil
			})
		})
		return out
	}
	ov, nv := views(oldSt), views(newSt)
	for k, v := range nv {
		if ov[k] != v {
			t.Errorf("view %s:\n old bodies give %s\n new bodies give %s", k, ov[k], v)
		}
	}
	if len(ov) != len(nv) {
		t.Errorf("old bodies give %d views, new ones %d", len(ov), len(nv))
	}

	// Restarted, the node that applied the old bodies verifies.
	old.Close()
	again, err := Open(context.Background(), Config{Store: oldSt, Log: oldLog, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := again.Integrity(); err != nil {
		t.Fatalf("views of old bodies do not verify at start: %v", err)
	}
}

func txnHashes(t *testing.T, st *store.Store, idx []int64) []tlog.Hash {
	var out []tlog.Hash
	if err := st.View(func(txn *store.Txn) (err error) {
		out, err = txnHashReader{txn}.ReadHashes(idx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
