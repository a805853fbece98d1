package hub_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestRequestListHoldsRequests: after state-changing calls with request
// ids, the operator's unfiltered `share list --requests` lists the share
// requests and nothing else. A data dir whose views were written in
// format 1 (request ids recorded among the share requests, no format
// recorded) starts, rebuilds its views from the ledger saying so, is not
// called tampered, and lists the same requests.
func TestRequestListHoldsRequests(t *testing.T) {
	var logs testenv.Buffer
	env := testenv.Start(t, func(c *hub.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	ctx := context.Background()
	rid := func(id string) context.Context { return adapters.WithRequestID(ctx, id) }
	owner, tax := env.Officer("health"), env.Officer("tax")
	if _, err := env.Admin.AddDepartment(rid("add-police"), "police", "Police"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := owner.RegisterSchema(rid("schema"), "health.cases", []byte(casesSchema), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.PublishDataset(rid("publish"), adapters.DatasetSpec{ID: "health.cases", Title: "Cases", ShareType: "conditional", SchemaSubject: "health.cases"}); err != nil {
		t.Fatal(err)
	}
	r, err := tax.RequestShare(rid("request"), "health.cases", []string{"id"}, "statistics", 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Approve(rid("approve"), r.Request.ID, nil, 0, ""); err != nil {
		t.Fatal(err)
	}
	list := func(when string) {
		t.Helper()
		rs, err := env.Admin.Requests(ctx, adapters.ShareQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].ID != r.Request.ID {
			var rows []string
			for _, x := range rs {
				rows = append(rows, "id="+x.ID+" dataset="+x.Dataset+" requester="+x.Requester)
			}
			t.Fatalf("%s: the operator's request list holds %d rows, want the one request %s:\n%s", when, len(rs), r.Request.ID, strings.Join(rows, "\n"))
		}
	}
	list("after calls with request ids")

	// The views as format 1 wrote them.
	env.Stop()
	st, err := store.Open(filepath.Join(env.Dir, "badger"), nil)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	err = st.Update(func(txn *store.Txn) error {
		var keys []string
		var vals [][]byte
		if err := txn.Scan(string(keyspace.RequestIDs), "", func(k string, v []byte) (bool, error) {
			keys, vals = append(keys, k), append(vals, v)
			return true, nil
		}); err != nil {
			return err
		}
		for i, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
			if err := txn.PutRaw([]byte("rq/"+strings.TrimPrefix(k, string(keyspace.RequestIDs))), vals[i]); err != nil {
				return err
			}
			moved++
		}
		return txn.Delete(keyspace.FormatKey)
	})
	st.Close()
	if err != nil || moved < 5 {
		t.Fatalf("writing format-1 views: %d request ids moved, %v", moved, err)
	}
	env.Restart()
	if err := env.Node.CP.Integrity(); err != nil {
		t.Fatalf("a node with format-1 views is called tampered: %v", err)
	}
	said := false
	for _, line := range strings.Split(logs.String(), "\n") {
		said = said || strings.Contains(line, `level=WARN msg="views written in another format: rebuilding them from the ledger"`) && strings.Contains(line, "old_format=1 new_format=2")
	}
	if !said {
		t.Errorf("the log does not say the views were rebuilt:\n%s", logs.String())
	}
	list("after the rebuild")
}
