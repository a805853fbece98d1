package main

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestCatalogUpdate: an officer changes only what it names, as one
// dataset.updated entry; a stricter share type leaves active grants
// standing (and says so) while new requests follow it; another
// department's officer, a system, bad values and no change are refused.
func TestCatalogUpdate(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	mustX(t, env, f.health, "catalog", "update", "health.open", "--description", "Open cases", "--keywords", "cases, Public ,cases")

	// Only the description and keywords changed; the rest is kept.
	var d struct {
		Title       string   `json:"title"`
		Description string   `json:"description"`
		Keywords    []string `json:"keywords"`
		ShareType   string   `json:"share_type"`
		Fields      []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(mustX(t, env, f.tax, "catalog", "show", "health.open", "-o", "json")), &d); err != nil {
		t.Fatal(err)
	}
	if d.Title != "health.open" || d.Description != "Open cases" || strings.Join(d.Keywords, ",") != "cases,public" || d.ShareType != "open" || len(d.Fields) != 3 {
		t.Fatalf("after update: %+v", d)
	}
	// Changing the title alone keeps the keywords (publish used to wipe them).
	out := mustX(t, env, f.health, "catalog", "update", "health.open", "--title", "Open cases", "-o", "json")
	var r struct {
		Dataset struct {
			Title    string   `json:"title"`
			Keywords []string `json:"keywords"`
		} `json:"dataset"`
		Changed      []string `json:"changed"`
		ActiveGrants int      `json:"active_grants"`
		Seq          uint64   `json:"seq"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if r.Dataset.Title != "Open cases" || len(r.Dataset.Keywords) != 2 || strings.Join(r.Changed, ",") != "title" || r.Seq == 0 {
		t.Fatalf("title update: %+v", r)
	}
	// The entry says what changed, and only that.
	log := mustX(t, env, f.tax, "ledger", "log", "--dataset", "health.open")
	if !strings.Contains(log, "dataset.updated") {
		t.Fatalf("no dataset.updated entry:\n%s", log)
	}

	// Retention: set, shown, refused when malformed, back to the default.
	if out := mustX(t, env, f.health, "catalog", "update", "health.open", "--retention", "30d"); !strings.Contains(out, "retention") {
		t.Fatalf("retention update: %q", out)
	}
	if out := mustX(t, env, f.tax, "catalog", "show", "health.open"); !strings.Contains(out, "retention:   30d") {
		t.Fatalf("catalog show:\n%s", out)
	}
	_, err := xhub(t, env, f.health, "catalog", "update", "health.open", "--retention", "30 days")
	wantRefused(t, err, codes.InvalidArgument, "retention")
	mustX(t, env, f.health, "catalog", "update", "health.open", "--retention", "")
	if out := mustX(t, env, f.tax, "catalog", "show", "health.open"); !strings.Contains(out, "retention:   the hub's default") {
		t.Fatalf("catalog show after going back to the default:\n%s", out)
	}

	// open → none with a grant standing: the grant stays, new requests are refused.
	mustX(t, env, f.tax, "share", "request", "health.open", "--purpose", "relief checks", "--days", "30")
	out = mustX(t, env, f.health, "catalog", "update", "health.open", "--share", "none")
	if !strings.Contains(out, "1 active grants on health.open stay until they expire or are revoked") {
		t.Fatalf("stricter share type: %q", out)
	}
	if out := mustX(t, env, f.tax, "share", "list", "--dataset", "health.open", "--status", "active"); !strings.Contains(out, "health.open") {
		t.Fatalf("the grant did not stay:\n%s", out)
	}
	_, err = xhub(t, env, f.police, "share", "request", "health.open", "--purpose", "x")
	wantRefused(t, err, codes.FailedPrecondition, "not shared")

	// Refusals.
	_, err = xhub(t, env, f.police, "catalog", "update", "health.open", "--title", "Mine now")
	wantRefused(t, err, codes.PermissionDenied, "health")
	_, err = xhub(t, env, f.hsys, "catalog", "update", "health.open", "--title", "x")
	wantRefused(t, err, codes.PermissionDenied, "role system")
	_, err = xhub(t, env, f.health, "catalog", "update", "health.open", "--share", "sometimes")
	wantRefused(t, err, codes.InvalidArgument, "share")
	_, err = xhub(t, env, f.health, "catalog", "update", "health.open", "--title", "")
	wantRefused(t, err, codes.InvalidArgument, "title")
	_, err = xhub(t, env, f.health, "catalog", "update", "health.open", "--title", "Open cases")
	wantRefused(t, err, codes.FailedPrecondition, "nothing to change")
	_, err = xhub(t, env, f.health, "catalog", "update", "health.nosuch", "--title", "x")
	wantRefused(t, err, codes.NotFound, "health.nosuch")
	if _, err := xhub(t, env, f.health, "catalog", "update", "health.open"); err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Fatalf("no flags: %v", err)
	}
	_, err = xhub(t, env, f.health, "catalog", "update", "health.open", "--schema", "health.open:9")
	wantRefused(t, err, codes.NotFound, "no version 9")
}
