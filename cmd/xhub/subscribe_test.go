package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestSubscribeCtrlC: Ctrl-C on subscribe exits 0, quietly, and what it
// printed was acknowledged: the same subscription resumes after it.
func TestSubscribeCtrlC(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	taxSys := filepath.Join(t.TempDir(), "tax-sys.creds")
	mustX(t, env, env.Node.AdminCreds, "creds", "issue", "--dept", "tax", "--role", "system", "--out", taxSys)
	mustX(t, env, f.tax, "share", "request", "health.open", "--purpose", "feed")
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"subscribe", "health.open", "--name", "feed", "--from", "beginning", "--hub", env.Addr(), "--creds", taxSys}, out, errb)
	}()
	recs := writeFile(t, "r.jsonl", "{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"name\":\"b\"}\n")
	mustX(t, env, f.hsys, "publish", "health.open", "--file", recs)
	testenv.WaitFor(t, 10*time.Second, "two records printed", func() bool { return strings.Count(out.String(), "\n") == 2 })
	cancel()
	select {
	case err := <-done:
		if err != nil || errb.String() != "" {
			t.Fatalf("Ctrl-C: %v, stderr %q", err, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("subscribe did not stop on Ctrl-C")
	}
	recs2 := writeFile(t, "r2.jsonl", "{\"id\":3,\"name\":\"c\"}\n")
	mustX(t, env, f.hsys, "publish", "health.open", "--file", recs2)
	got := mustX(t, env, taxSys, "subscribe", "health.open", "--name", "feed", "--max", "1")
	if !strings.Contains(got, `"id":3`) {
		t.Fatalf("resumed subscription gave %q: the printed records were not acknowledged", got)
	}
}
