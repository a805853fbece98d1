package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// TestDataPlaneThroughTheCLI: adapter file as provider, query with
// filters and paging, publish, subscribe and audit, all as the CLI runs
// them.
func TestDataPlaneThroughTheCLI(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	dir := t.TempDir()
	taxSys := filepath.Join(dir, "tax-sys.creds")
	mustX(t, env, env.Node.AdminCreds, "creds", "issue", "--dept", "tax", "--role", "system", "--out", taxSys)
	out := mustX(t, env, f.tax, "share", "request", "health.cond", "--purpose", "wards", "--fields", "id,ward")
	req, _ := ids(out)
	mustX(t, env, f.health, "share", "approve", req)

	// The provider: a CSV file, through `xhub adapter file`.
	csv := writeFile(t, "cases.csv", "id,name,ward\n1,Ana,north\n2,Bo,south\n3,Cy,north\n4,Di,north\n")
	actx, stop := context.WithCancel(context.Background())
	adapterDone := make(chan error, 1)
	go func() {
		var buf bytes.Buffer
		adapterDone <- run(actx, []string{"adapter", "file", "--dataset", "health.cond", "--path", csv, "--hub", env.Addr(), "--creds", f.hsys}, &buf, &buf)
	}()
	defer func() {
		stop()
		if err := <-adapterDone; err != nil {
			t.Errorf("adapter: %v", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := xhub(t, env, taxSys, "query", "health.cond", "--where", "ward=north", "--limit", "2", "--all")
		if err == nil {
			if out != "{\"id\":1,\"ward\":\"north\"}\n{\"id\":3,\"ward\":\"north\"}\n{\"id\":4,\"ward\":\"north\"}\n" {
				t.Fatalf("query --all: %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := xhub(t, env, taxSys, "query", "health.cond", "--fields", "name")
	wantRefused(t, err, codes.PermissionDenied, `field "name"`)
	_, err = xhub(t, env, taxSys, "query", "health.cond", "--where", "ward~north")
	if err == nil || !strings.Contains(err.Error(), "no operator") {
		t.Fatalf("bad filter: %v", err)
	}
	// A doubled operator is refused, not answered with zero rows.
	_, err = xhub(t, env, taxSys, "query", "health.cond", "--where", "ward==north")
	if err == nil || !strings.Contains(err.Error(), `"==" is not an operator`) {
		t.Fatalf("ward==north: %v", err)
	}
	// -o json: one document, numbers as numbers; -o table: columns = fields.
	out = mustX(t, env, taxSys, "query", "health.cond", "--where", "ward=north", "--all", "-o", "json")
	var doc struct {
		Records  []map[string]any `json:"records"`
		Withheld int              `json:"withheld"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Records) != 3 || doc.Records[0]["id"] != float64(1) {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	out = mustX(t, env, taxSys, "query", "health.cond", "--where", "ward=north", "--all", "-o", "table")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || strings.Fields(lines[0])[0] != "ID" || strings.Join(strings.Fields(lines[1]), " ") != "1 north" {
		t.Fatalf("-o table:\n%s", out)
	}
	if _, err := xhub(t, env, taxSys, "query", "health.cond", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "jsonl") {
		t.Fatalf("-o yaml: %v", err)
	}

	// Publish and subscribe.
	recs := writeFile(t, "r.jsonl", `{"id":10,"name":"X","ward":"east"}`+"\n"+`{"id":11,"ward":"west"}`+"\n")
	out = mustX(t, env, f.hsys, "publish", "health.cond", "--file", recs, "--batch-id", "b-1")
	if !strings.Contains(out, "stored 2 records") {
		t.Fatalf("publish: %q", out)
	}
	if out = mustX(t, env, f.hsys, "publish", "health.cond", "--file", recs, "--batch-id", "b-1"); !strings.Contains(out, "already stored") {
		t.Fatalf("republish: %q", out)
	}
	bad := writeFile(t, "bad.jsonl", `{"id":"x","ward":"east"}`+"\n")
	_, err = xhub(t, env, f.hsys, "publish", "health.cond", "--file", bad)
	wantRefused(t, err, codes.InvalidArgument, "records[0] /id")
	out = mustX(t, env, taxSys, "subscribe", "health.cond", "--from", "beginning", "--max", "2")
	if out != "{\"id\":10,\"ward\":\"east\"}\n{\"id\":11,\"ward\":\"west\"}\n" {
		t.Fatalf("subscribe: %q", out)
	}

	// The subscription that made stays; the department lists and deletes it.
	out = mustX(t, env, taxSys, "subscription", "list")
	if !strings.Contains(out, "health.cond") || !strings.Contains(out, "default") || !strings.Contains(out, "may have 32") {
		t.Fatalf("subscription list:\n%s", out)
	}
	if out = mustX(t, env, f.police, "subscription", "list"); strings.Contains(out, "health.cond") {
		t.Fatalf("another department sees tax's subscriptions:\n%s", out)
	}
	_, err = xhub(t, env, f.police, "subscription", "delete", "default")
	wantRefused(t, err, codes.NotFound, "no subscription named")
	if out = mustX(t, env, f.tax, "subscription", "delete", "default"); !strings.Contains(out, "deleted") {
		t.Fatalf("subscription delete: %q", out)
	}
	if out = mustX(t, env, taxSys, "subscription", "list", "-o", "json"); strings.Contains(out, "health.cond") {
		t.Fatalf("after delete:\n%s", out)
	}

	// The audit trail, as the owner's officer sees it.
	out = mustX(t, env, f.health, "audit", "--dataset", "health.cond")
	for _, want := range []string{"query", "publish", "deliver", "tax", "b-1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("audit lacks %q:\n%s", want, out)
		}
	}
	if out = mustX(t, env, f.police, "audit", "--dataset", "health.cond"); strings.Contains(out, "health.cond") {
		t.Fatalf("another department sees the audit trail:\n%s", out)
	}
}
