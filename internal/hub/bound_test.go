package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// grantSeq is the sequence in a grant id g-<seq>.
func grantSeq(t *testing.T, id string) uint64 {
	var seq uint64
	if _, err := fmt.Sscanf(id, "g-%d", &seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// widenGrantView rewrites a grant's fields in a stopped hub's Badger, as
// someone with the data dir could.
func widenGrantView(t *testing.T, dir string, from, to string) {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "badger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := 0
	err = st.Update(func(txn *store.Txn) error {
		var keys []string
		var vals [][]byte
		if err := txn.Scan(string(keyspace.Grants), "", func(k string, v []byte) (bool, error) {
			if bytes.Contains(v, []byte(from)) {
				keys, vals = append(keys, k), append(vals, bytes.Replace(v, []byte(from), []byte(to), 1))
			}
			return true, nil
		}); err != nil {
			return err
		}
		for i, k := range keys {
			if err := txn.PutRaw([]byte(k), vals[i]); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("widen grant view: %d changed, %v", n, err)
	}
}

// TestEnforcementBoundToTheLedger: what the hub enforces is a function of
// the verified log. A grant widened in Badger while the hub is stopped is
// caught at start: the node refuses to serve, names the view and the
// entry, still serves the ledger, and `--rebuild-views` restores the
// grant the log gives.
func TestEnforcementBoundToTheLedger(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward"})
	f.serve(t, nil)
	ctx := context.Background()
	seq := grantSeq(t, f.grant)
	f.env.Stop()
	widenGrantView(t, f.env.Dir, `"fields":["id","ward"]`, `"fields":["age","id","name","ward"]`)
	f.env.Restart()

	if f.env.Node.Integrity() == nil {
		t.Fatal("the node started on edited views without noticing")
	}
	consumer := f.env.Dial(f.consumerCreds) // issued before the stop
	_, err := consumer.Query(ctx, "health.cases", adapters.QueryOptions{Fields: []string{"name"}})
	if testenv.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "views do not match") || !strings.Contains(err.Error(), fmt.Sprintf("entry %d", seq)) || !strings.Contains(err.Error(), "--rebuild-views") {
		t.Fatalf("query on a node with edited views: %v", err)
	}
	// The ledger is still served, and verifies.
	rep, err := verifier(t, f.env.Admin).Verify(ctx, nil)
	if err != nil || rep.Mismatch != nil {
		t.Fatalf("ledger on the refusing node: %+v %v", rep, err)
	}

	f.env.Stop()
	f.env.Config.RebuildViews = true
	f.env.Restart()
	f.env.Config.RebuildViews = false
	if err := f.env.Node.Integrity(); err != nil {
		t.Fatalf("after rebuild: %v", err)
	}
	f.provider = f.env.System("health", "clinic-db-2")
	consumer = f.env.Dial(f.consumerCreds)
	f.consumer = consumer
	f.serve(t, nil)
	if _, err := consumer.Query(ctx, "health.cases", adapters.QueryOptions{Fields: []string{"name"}}); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("after rebuild, the field the log never granted: %v", err)
	}
	r, err := consumer.Query(ctx, "health.cases", adapters.QueryOptions{})
	if err != nil || len(r.Records) == 0 || strings.Contains(string(r.Records[0]), "name") {
		t.Fatalf("after rebuild: %v %+v", err, r)
	}
}

// TestAlteredEntryIsNotEnforced: a ledger entry altered in the stream
// (the approval, to grant more fields) is named, and not enforced: the
// node refuses the data plane.
func TestAlteredEntryIsNotEnforced(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward"})
	ctx := context.Background()
	seq := grantSeq(t, f.grant)
	f.env.Stop()
	rewriteStream(t, f.env.Dir, func(s uint64, raw []byte) []byte {
		if s == seq {
			return rename(`["id","ward"]`, `["age","id","name","ward"]`)(raw)
		}
		return raw
	})
	f.env.Restart()
	err := f.env.Node.Integrity()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("ledger does not verify at entry %d", seq)) {
		t.Fatalf("altered entry %d: %v", seq, err)
	}
	consumer := f.env.Dial(f.consumerCreds)
	if _, err := consumer.Query(ctx, "health.cases", adapters.QueryOptions{Fields: []string{"name"}}); testenv.Code(err) != codes.Unavailable {
		t.Fatalf("query with an altered grant entry: %v", err)
	}
	if _, err := testenv.RPC(f.env.Admin).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: "x", Name: "X"}); testenv.Code(err) != codes.Unavailable {
		t.Fatalf("a change appended on a log that does not verify: %v", err)
	}
	// The node's own copy, which departments' proofs were made from, is
	// still served and verifies: the altered log is what it refuses.
	rep, err := verifier(t, f.env.Admin).Verify(ctx, nil)
	if err != nil || rep.Mismatch != nil {
		t.Fatalf("verify on the refusing node: %+v %v", rep, err)
	}
}
