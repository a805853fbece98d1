package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/internal/bus"
)

// TestAuditExport: audit entries export to a hash-chained file that
// --check accepts; an edited, dropped or cut file is refused, naming the
// line; a file cut short whose summary is made to agree, or a summary
// edited, is refused by the hub's seal; the audit stream has its retention.
func TestAuditExport(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	dir := t.TempDir()
	recs := writeFile(t, "r.jsonl", "{\"id\":1,\"ward\":\"north\"}\n{\"id\":2,\"ward\":\"south\"}\n")
	for i := range 5 {
		mustX(t, env, f.hsys, "publish", "health.open", "--file", recs, "--batch-id", fmt.Sprintf("b%d", i))
	}
	out := filepath.Join(dir, "audit.jsonl")
	msg := mustX(t, env, env.Node.AdminCreds, "audit", "export", "--since", "1h", "--out", out)
	if !strings.Contains(msg, "exported 5 audit entries") {
		t.Fatalf("export: %q", msg)
	}
	if msg := mustX(t, env, env.Node.AdminCreds, "audit", "export", "--check", out); !strings.Contains(msg, "5 entries, chain intact") {
		t.Fatalf("check: %q", msg)
	}
	if _, err := xhub(t, env, env.Node.AdminCreds, "audit", "export", "--since", "1h", "--out", out); err == nil {
		t.Fatal("export overwrote an existing file")
	}
	b, _ := os.ReadFile(out)
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("export has %d lines, want 5 entries and a summary", len(lines))
	}
	// The attack: drop the last two entries and make the summary agree
	// with what is left (count, last hash, since, exporter).
	var cut struct {
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &cut); err != nil {
		t.Fatal(err)
	}
	var sum map[string]map[string]any
	if err := json.Unmarshal([]byte(lines[5]), &sum); err != nil {
		t.Fatal(err)
	}
	resum := func(edit func(s map[string]any)) string {
		s := map[string]any{}
		for k, v := range sum["summary"] {
			s[k] = v
		}
		edit(s)
		b, err := json.Marshal(map[string]any{"summary": s})
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	cutShort := resum(func(s map[string]any) {
		s["entries"], s["last_hash"], s["since"], s["exported_by"] = 3, cut.Hash, time.Now().Add(-time.Minute).UTC(), "spiffe://xhub/dept/health/officer/someone"
	})
	// A seal the hub made for another export (the first entry only).
	other := filepath.Join(dir, "other.jsonl")
	mustX(t, env, env.Node.AdminCreds, "audit", "export", "--since", "1h", "--dataset", "health.open", "--out", other)
	ob, _ := os.ReadFile(other)
	var otherSum map[string]map[string]any
	olines := strings.SplitAfter(strings.TrimSuffix(string(ob), "\n"), "\n")
	if err := json.Unmarshal([]byte(olines[len(olines)-1]), &otherSum); err != nil {
		t.Fatal(err)
	}
	for name, tampered := range map[string]string{
		"edited":                   strings.Replace(string(b), `"records":2`, `"records":3`, 1),
		"dropped":                  lines[0] + strings.Join(lines[2:], ""),
		"cut":                      strings.Join(lines[:3], ""),
		"cut short, summary fixed": strings.Join(lines[:3], "") + cutShort,
		"summary exporter edited":  strings.Join(lines[:5], "") + resum(func(s map[string]any) { s["exported_by"] = "spiffe://xhub/dept/tax/officer/x" }),
		"summary period edited":    strings.Join(lines[:5], "") + resum(func(s map[string]any) { s["until"] = time.Now().Add(time.Hour).UTC() }),
		"seal removed":             strings.Join(lines[:5], "") + resum(func(s map[string]any) { delete(s, "seal") }),
		"seal of another export":   strings.Join(lines[:5], "") + resum(func(s map[string]any) { s["seal"] = otherSum["summary"]["seal"] }),
		"seal text edited":         strings.Join(lines[:5], "") + resum(func(s map[string]any) { s["seal"] = strings.Replace(s["seal"].(string), "entries 5", "entries 3", 1) }),
	} {
		p := filepath.Join(dir, name+".jsonl")
		if err := os.WriteFile(p, []byte(tampered), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := xhub(t, env, env.Node.AdminCreds, "audit", "export", "--check", p)
		if err == nil || !strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "cut short") {
			t.Errorf("%s export accepted: %v", name, err)
		}
	}
	// The stream keeps entries for the default 180 days.
	js, _ := jetstream.New(env.Node.NC)
	s, err := js.Stream(context.Background(), bus.AuditStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != bus.DefaultAuditRetention {
		t.Fatalf("audit retention %s", got)
	}
}
