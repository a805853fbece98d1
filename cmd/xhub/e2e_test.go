package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// xhub runs one CLI command line against env as the holder of creds.
func xhub(t *testing.T, env *testenv.Env, creds string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--hub", env.Addr(), "--creds", creds)
	err := run(context.Background(), args, &out, &errb)
	return out.String(), err
}

func mustX(t *testing.T, env *testenv.Env, creds string, args ...string) string {
	t.Helper()
	out, err := xhub(t, env, creds, args...)
	if err != nil {
		t.Fatalf("xhub %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// wantRefused checks that a command failed with code and a message naming want.
func wantRefused(t *testing.T, err error, code codes.Code, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s (%q), got success", code, want)
	}
	if got := status.Code(err); got != code {
		t.Fatalf("want code %s, got %s: %v", code, got, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %q", err.Error(), want)
	}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCatalogAndSchemaStory(t *testing.T) {
	env := testenv.Start(t)
	admin := env.Node.AdminCreds
	dir := t.TempDir()

	mustX(t, env, admin, "dept", "add", "health", "--name", "Health Commission")
	mustX(t, env, admin, "dept", "add", "tax", "--name", "Tax Bureau")
	_, err := xhub(t, env, admin, "dept", "add", "health", "--name", "Again")
	wantRefused(t, err, codes.AlreadyExists, "health already exists")
	_, err = xhub(t, env, admin, "dept", "add", "Bad_Id", "--name", "x")
	wantRefused(t, err, codes.InvalidArgument, "must start with a lowercase letter")

	health := filepath.Join(dir, "health.creds")
	tax := filepath.Join(dir, "tax.creds")
	sys := filepath.Join(dir, "health-sys.creds")
	mustX(t, env, admin, "creds", "issue", "--dept", "health", "--role", "officer", "--out", health)
	mustX(t, env, admin, "creds", "issue", "--dept", "tax", "--role", "officer", "--out", tax)
	mustX(t, env, health, "creds", "issue", "--dept", "health", "--role", "system", "--name", "clinic", "--out", sys)
	_, err = xhub(t, env, tax, "creds", "issue", "--dept", "health", "--role", "system", "--name", "x", "--out", filepath.Join(dir, "x.creds"))
	wantRefused(t, err, codes.PermissionDenied, "may not issue")
	if _, err := os.Stat(filepath.Join(dir, "x.creds")); err == nil {
		t.Fatal("refused issue left a creds file behind")
	}

	v1 := writeFile(t, "v1.json", `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},"required":["id"]}`)
	out := mustX(t, env, health, "schema", "register", "health.patients", "--file", v1)
	if !strings.Contains(out, "registered version 1 (FORWARD)") {
		t.Fatalf("register: %q", out)
	}
	out = mustX(t, env, health, "schema", "register", "health.patients", "--file", v1)
	if !strings.Contains(out, "identical to version 1") {
		t.Fatalf("re-register: %q", out)
	}
	bad := writeFile(t, "bad.json", `{"type":"object","properties":{"id":{"type":"string"},"name":{"type":"string"}},"required":["id"]}`)
	_, err = xhub(t, env, health, "schema", "register", "health.patients", "--file", bad)
	wantRefused(t, err, codes.FailedPrecondition, "/properties/id: type changed integer → string")
	out, err = xhub(t, env, health, "schema", "check", "health.patients", "--file", bad)
	if err == nil || !strings.Contains(out, "/properties/id: type changed integer → string") {
		t.Fatalf("check: %q, %v", out, err)
	}
	v2 := writeFile(t, "v2.json", `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},"ward":{"type":"string"}},"required":["id"]}`)
	mustX(t, env, health, "schema", "register", "health.patients", "--file", v2)
	for _, tc := range []struct{ body, want string }{
		{`{"type":`, "is not JSON"},
		{`{"type":"object","properties":{"a":{"$ref":"https://evil.example/s.json"}}}`, "remote $ref is not allowed"},
		{`{"type":"nonsense"}`, "is not a valid JSON Schema"},
		{`[1,2]`, "must be a JSON object or boolean"},
	} {
		_, err = xhub(t, env, health, "schema", "register", "health.other", "--file", writeFile(t, "b.json", tc.body))
		wantRefused(t, err, codes.InvalidArgument, tc.want)
	}

	mustX(t, env, health, "catalog", "publish", "health.patients", "--title", "Patients in wards", "--share", "conditional",
		"--schema", "health.patients", "--keywords", "hospital,Wards", "--description", "Patients admitted")
	out = mustX(t, env, tax, "catalog", "show", "health.patients", "-o", "json")
	var ds struct {
		ID            string   `json:"id"`
		Owner         string   `json:"owner"`
		ShareType     string   `json:"share_type"`
		SchemaVersion int      `json:"schema_version"`
		Keywords      []string `json:"keywords"`
		Fields        []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			Required bool   `json:"required"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatalf("show -o json: %v\n%s", err, out)
	}
	if ds.Owner != "health" || ds.ShareType != "conditional" || ds.SchemaVersion != 2 || len(ds.Fields) != 3 || !ds.Fields[0].Required || ds.Fields[0].Type != "integer" {
		t.Fatalf("dataset: %+v", ds)
	}
	if strings.Join(ds.Keywords, ",") != "hospital,wards" {
		t.Fatalf("keywords not normalised: %v", ds.Keywords)
	}

	// Refusals.
	_, err = xhub(t, env, tax, "catalog", "publish", "health.stolen", "--title", "x", "--share", "open", "--schema", "health.patients")
	wantRefused(t, err, codes.PermissionDenied, "an officer of tax may not publish datasets of department health")
	_, err = xhub(t, env, sys, "catalog", "publish", "health.fromsys", "--title", "x", "--share", "open", "--schema", "health.patients")
	wantRefused(t, err, codes.PermissionDenied, "role system may not call")
	_, err = xhub(t, env, health, "catalog", "publish", "health.nos", "--title", "x", "--share", "open", "--schema", "health.missing")
	wantRefused(t, err, codes.FailedPrecondition, "has no registered version")
	_, err = xhub(t, env, health, "catalog", "publish", "health.xx", "--title", "x", "--share", "sometimes", "--schema", "health.patients")
	wantRefused(t, err, codes.InvalidArgument, "share_type")

	// Listing and search.
	out = mustX(t, env, tax, "catalog", "list", "--search", "ward")
	if !strings.Contains(out, "health.patients") || !strings.Contains(out, "(1 datasets)") {
		t.Fatalf("search: %q", out)
	}
	out = mustX(t, env, tax, "catalog", "list", "--dept", "tax")
	if !strings.Contains(out, "(0 datasets)") {
		t.Fatalf("list --dept tax: %q", out)
	}

	// Retire; the listing hides it unless asked.
	mustX(t, env, health, "catalog", "retire", "health.patients", "--reason", "moved")
	out = mustX(t, env, tax, "catalog", "list")
	if strings.Contains(out, "health.patients") {
		t.Fatalf("retired dataset listed: %q", out)
	}

	// A revoked credential is refused at once.
	c, err := vocab.LoadCreds(sys)
	if err != nil {
		t.Fatal(err)
	}
	mustX(t, env, sys, "catalog", "list")
	mustX(t, env, admin, "creds", "revoke", c.Serial, "--reason", "lost laptop")
	_, err = xhub(t, env, sys, "catalog", "list")
	wantRefused(t, err, codes.Unauthenticated, "revoked")

	// The ledger shows it all in order.
	out = mustX(t, env, tax, "ledger", "log", "--dataset", "health.patients")
	for _, want := range []string{"schema.registered", "dataset.published", "dataset.retired"} {
		if !strings.Contains(out, want) {
			t.Fatalf("ledger log lacks %s:\n%s", want, out)
		}
	}
}

// TestUnknownAuthority: a client certificate from another CA is refused
// in the TLS handshake, the client is told so (not "broken pipe"), and the
// hub goes on serving.
func TestUnknownAuthority(t *testing.T) {
	env := testenv.Start(t)
	other := testenv.Start(t)
	cl := env.ForeignClient()
	_, err := testenv.RPC(cl).Catalog.ListDatasets(context.Background(), nil)
	if err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "refused this credential's certificate in the TLS handshake") {
		t.Fatalf("want Unauthenticated naming the refused handshake, got %v", err)
	}
	// The foreign hub's own creds do not even trust this hub's server.
	_, err = xhub(t, env, other.Node.AdminCreds, "dept", "list")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("foreign creds: %v", err)
	}
	mustX(t, env, env.Node.AdminCreds, "dept", "list")
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"demo"}, &out, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"refused, as it should be", "type changed integer → string", "granted at once", "withheld 1 records",
		"batch already stored", "[tax subscriber] received", "stream ended after", "PermissionDenied", "verified 2", "demo finished"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("demo output lacks %q", want)
		}
	}
}
