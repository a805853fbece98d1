package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestMutationsJSON: every command that changes state answers -o json
// with what it made (ids, the ledger seq), so scripts parse no text.
func TestMutationsJSON(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	admin := env.Node.AdminCreds
	js := func(creds string, args ...string) map[string]any {
		t.Helper()
		out := mustX(t, env, creds, append(args, "-o", "json")...)
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v: not one JSON document: %v\n%s", args, err, out)
		}
		return m
	}
	num := func(m map[string]any, path ...string) float64 {
		t.Helper()
		var v any = m
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		n, ok := v.(float64)
		if !ok || n <= 0 {
			t.Fatalf("%v at %v: %v", m, path, v)
		}
		return n
	}
	str := func(m map[string]any, path ...string) string {
		t.Helper()
		var v any = m
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		s, ok := v.(string)
		if !ok || s == "" {
			t.Fatalf("%v at %v: %v", m, path, v)
		}
		return s
	}
	num(js(admin, "dept", "add", "edu", "--name", "Education"), "seq")
	c := js(admin, "creds", "issue", "--dept", "edu", "--role", "officer", "--out", filepath.Join(t.TempDir(), "edu.creds"))
	serial := str(c, "credential", "serial")
	num(c, "credential", "seq")
	num(js(admin, "creds", "revoke", serial, "--reason", "test"), "seq")
	schema := writeFile(t, "s2.json", `{"type":"object","properties":{"id":{"type":"integer"}}}`)
	num(js(f.health, "schema", "register", "health.extra", "--file", schema), "schema", "seq")
	num(js(f.health, "catalog", "publish", "health.extra", "--title", "Extra", "--share", "conditional", "--schema", "health.extra"), "seq")
	r := js(f.tax, "share", "request", "health.extra", "--purpose", "p")
	req := str(r, "request", "id")
	num(r, "seq")
	a := js(f.health, "share", "approve", req)
	grant := str(a, "grant", "id")
	num(a, "seq")
	num(js(f.health, "share", "revoke", grant, "--reason", "done"), "seq")
	r2 := str(js(f.tax, "share", "request", "health.extra", "--purpose", "again"), "request", "id")
	num(js(f.health, "share", "reject", r2, "--reason", "no"), "seq")
	r3 := str(js(f.police, "share", "request", "health.extra", "--purpose", "p"), "request", "id")
	num(js(f.police, "share", "withdraw", r3), "seq")
	recs := writeFile(t, "r.jsonl", "{\"id\":1,\"name\":\"a\"}\n")
	num(js(f.hsys, "publish", "health.open", "--file", recs), "stream_seq")
	num(js(f.health, "catalog", "retire", "health.extra"), "seq")
}
