package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/internal/bus"
)

// TestAuditExport: audit entries export to a hash-chained file that
// --check accepts; an edited, dropped or cut file is refused, naming the
// line; the audit stream has its retention.
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
	lines := strings.SplitAfter(string(b), "\n")
	for name, tampered := range map[string]string{
		"edited":  strings.Replace(string(b), `"records":2`, `"records":3`, 1),
		"dropped": lines[0] + strings.Join(lines[2:], ""),
		"cut":     strings.Join(lines[:3], ""),
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
