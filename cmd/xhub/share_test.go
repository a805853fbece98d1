package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

var idRE = regexp.MustCompile(`\b[rg]-[0-9]+\b`)

// ids returns the request and grant ids an output line names.
func ids(out string) (req, grant string) {
	for _, id := range idRE.FindAllString(out, -1) {
		if strings.HasPrefix(id, "r-") && req == "" {
			req = id
		}
		if strings.HasPrefix(id, "g-") && grant == "" {
			grant = id
		}
	}
	return req, grant
}

type shareFixture struct {
	env                       *testenv.Env
	health, tax, police, hsys string
}

func newShareFixture(t *testing.T) *shareFixture {
	env := testenv.Start(t)
	dir := t.TempDir()
	f := &shareFixture{env: env, health: filepath.Join(dir, "health.creds"), tax: filepath.Join(dir, "tax.creds"),
		police: filepath.Join(dir, "police.creds"), hsys: filepath.Join(dir, "hsys.creds")}
	admin := env.Node.AdminCreds
	for _, d := range []string{"health", "tax", "police"} {
		mustX(t, env, admin, "dept", "add", d, "--name", d)
	}
	mustX(t, env, admin, "creds", "issue", "--dept", "health", "--role", "officer", "--out", f.health)
	mustX(t, env, admin, "creds", "issue", "--dept", "tax", "--role", "officer", "--out", f.tax)
	mustX(t, env, admin, "creds", "issue", "--dept", "police", "--role", "officer", "--out", f.police)
	mustX(t, env, admin, "creds", "issue", "--dept", "health", "--role", "system", "--out", f.hsys)
	schema := writeFile(t, "s.json", `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},"ward":{"type":"string"}},"required":["id"]}`)
	for _, ds := range []struct{ id, share string }{{"health.open", "open"}, {"health.cond", "conditional"}, {"health.secret", "none"}} {
		mustX(t, env, f.health, "schema", "register", ds.id, "--file", schema)
		mustX(t, env, f.health, "catalog", "publish", ds.id, "--title", ds.id, "--share", ds.share, "--schema", ds.id)
	}
	return f
}

func TestShareWorkflow(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	ctx := context.Background()

	// open: granted at once, by the policy.
	out := mustX(t, env, f.tax, "share", "request", "health.open", "--purpose", "tax relief checks", "--days", "30")
	if !strings.Contains(out, "granted at once") {
		t.Fatalf("open request: %q", out)
	}
	_, openGrant := ids(out)
	out = mustX(t, env, f.tax, "ledger", "log", "--dataset", "health.open")
	if !strings.Contains(out, "spiffe://xhub/dept/hub/admin/open-sharing") || !strings.Contains(out, "grant.created") {
		t.Fatalf("open grant not recorded as the policy's:\n%s", out)
	}

	// none: refused with the reason.
	_, err := xhub(t, env, f.tax, "share", "request", "health.secret", "--purpose", "x")
	wantRefused(t, err, codes.FailedPrecondition, "not shared (share type none)")

	// bad requests.
	_, err = xhub(t, env, f.tax, "share", "request", "health.cond", "--purpose", "x", "--fields", "id,nope")
	wantRefused(t, err, codes.InvalidArgument, `field "nope" is not in dataset health.cond`)
	_, err = xhub(t, env, f.tax, "share", "request", "health.cond", "--purpose", "x", "--days", "999")
	wantRefused(t, err, codes.InvalidArgument, "days")
	_, err = xhub(t, env, f.health, "share", "request", "health.cond", "--purpose", "x")
	wantRefused(t, err, codes.FailedPrecondition, "your own department")
	_, err = xhub(t, env, f.hsys, "share", "request", "health.open", "--purpose", "x")
	wantRefused(t, err, codes.PermissionDenied, "role system may not call")
	if _, err := testenv.RPC(env.Officer("tax")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cond", Purpose: "  "}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("empty purpose: %v", err)
	}

	// conditional: pending, in the owner's inbox.
	out = mustX(t, env, f.tax, "share", "request", "health.cond", "--purpose", "ward statistics", "--fields", "id,name,ward", "--days", "60")
	req, _ := ids(out)
	if !strings.Contains(out, "pending") || req == "" {
		t.Fatalf("conditional request: %q", out)
	}
	_, err = xhub(t, env, f.tax, "share", "request", "health.cond", "--purpose", "again")
	wantRefused(t, err, codes.FailedPrecondition, "already pending")
	out = mustX(t, env, f.health, "share", "inbox")
	if !strings.Contains(out, req) || !strings.Contains(out, "ward statistics") {
		t.Fatalf("inbox: %q", out)
	}
	if out = mustX(t, env, f.police, "share", "inbox"); strings.Contains(out, req) {
		t.Fatalf("another department's inbox shows the request: %q", out)
	}

	// Only the owner's officer decides.
	_, err = xhub(t, env, f.police, "share", "approve", req)
	wantRefused(t, err, codes.PermissionDenied, "only an officer of health (the owner)")
	_, err = xhub(t, env, f.tax, "share", "approve", req)
	wantRefused(t, err, codes.PermissionDenied, "only an officer of health (the owner)")
	_, err = xhub(t, env, f.hsys, "share", "approve", req)
	wantRefused(t, err, codes.PermissionDenied, "role system may not call")
	_, err = xhub(t, env, f.health, "share", "approve", req, "--days", "90")
	wantRefused(t, err, codes.InvalidArgument, "days")

	out = mustX(t, env, f.health, "share", "approve", req, "--fields", "id,ward", "--days", "10")
	_, grant := ids(out)
	if !strings.Contains(out, "fields id,ward") {
		t.Fatalf("approve: %q", out)
	}
	_, err = xhub(t, env, f.health, "share", "approve", req)
	wantRefused(t, err, codes.FailedPrecondition, "already approved")
	_, err = xhub(t, env, f.health, "share", "reject", req, "--reason", "late")
	wantRefused(t, err, codes.FailedPrecondition, "already approved")

	// Reject needs a reason; withdraw is the requester's.
	out = mustX(t, env, f.police, "share", "request", "health.cond", "--purpose", "investigation")
	preq, _ := ids(out)
	if _, err := testenv.RPC(env.Officer("health")).Shares.Reject(ctx, &xhubv1.RejectRequest{RequestId: preq}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("reject without reason: %v", err)
	}
	_, err = xhub(t, env, f.tax, "share", "withdraw", preq)
	wantRefused(t, err, codes.PermissionDenied, "only an officer of police")
	mustX(t, env, f.police, "share", "withdraw", preq)
	out = mustX(t, env, f.police, "share", "request", "health.cond", "--purpose", "investigation, again")
	preq, _ = ids(out)
	mustX(t, env, f.health, "share", "reject", preq, "--reason", "needs a court order")

	// Who may read what.
	out = mustX(t, env, f.health, "share", "list", "--dataset", "health.cond", "--status", "active", "-o", "json")
	var lst struct {
		Grants []struct {
			ID      string   `json:"id"`
			Grantee string   `json:"grantee"`
			Fields  []string `json:"fields"`
		} `json:"grants"`
	}
	if err := json.Unmarshal([]byte(out), &lst); err != nil {
		t.Fatal(err)
	}
	if len(lst.Grants) != 1 || lst.Grants[0].ID != grant || lst.Grants[0].Grantee != "tax" || strings.Join(lst.Grants[0].Fields, ",") != "id,ward" {
		t.Fatalf("active grants on health.cond: %+v", lst.Grants)
	}
	out = mustX(t, env, f.tax, "share", "list", "--grantee", "tax", "--status", "active")
	if !strings.Contains(out, openGrant) || !strings.Contains(out, grant) {
		t.Fatalf("what tax may read: %q", out)
	}
	out = mustX(t, env, f.police, "share", "list", "--requests")
	if !strings.Contains(out, "withdrawn") || !strings.Contains(out, "needs a court order") {
		t.Fatalf("police's request history: %q", out)
	}

	// Revocation needs a reason and the owner; the grant stops counting.
	a, err := env.Node.CP.CheckAccess("tax", "health.cond", time.Now())
	if err != nil || len(a.Fields) != 2 {
		t.Fatalf("access before revoke: %+v %v", a, err)
	}
	_, err = xhub(t, env, f.tax, "share", "revoke", grant, "--reason", "mine now")
	wantRefused(t, err, codes.PermissionDenied, "only an officer of health")
	mustX(t, env, f.health, "share", "revoke", grant, "--reason", "study finished")
	_, err = xhub(t, env, f.health, "share", "revoke", grant, "--reason", "twice")
	wantRefused(t, err, codes.FailedPrecondition, "already revoked")
	if _, err := env.Node.CP.CheckAccess("tax", "health.cond", time.Now()); err == nil {
		t.Fatal("revoked grant still allows access")
	}

	// Retiring a dataset ends its grants.
	mustX(t, env, f.health, "catalog", "retire", "health.open", "--reason", "replaced")
	out = mustX(t, env, f.tax, "share", "list", "--grantee", "tax")
	if !strings.Contains(out, "ended: dataset retired") {
		t.Fatalf("retired dataset's grant: %q", out)
	}
}
