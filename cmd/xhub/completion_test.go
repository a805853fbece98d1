package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCompletion: the shell completes ids from the hub, as the caller
// sees them, and the completion scripts are generated for each shell.
func TestCompletion(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	req, _ := ids(mustX(t, env, f.tax, "share", "request", "health.cond", "--purpose", "wards"))
	complete := func(creds string, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		// __complete takes the command line, the word being completed last.
		cmdline := append([]string{"__complete", "--hub", env.Addr(), "--creds", creds}, args...)
		if err := run(context.Background(), cmdline, &out, &errb); err != nil {
			t.Fatalf("%v: %v", cmdline, err)
		}
		return out.String()
	}
	if out := complete(f.health, "share", "approve", ""); !strings.Contains(out, req+"\ttax asks for health.cond: wards") {
		t.Fatalf("share approve <TAB>:\n%s", out)
	}
	if out := complete(f.tax, "catalog", "show", "health.c"); !strings.Contains(out, "health.cond\t") || strings.Contains(out, "health.open") {
		t.Fatalf("catalog show health.c<TAB>:\n%s", out)
	}
	if out := complete(f.health, "catalog", "retire", ""); !strings.Contains(out, "health.open") {
		t.Fatalf("catalog retire <TAB> (own datasets):\n%s", out)
	}
	if out := complete(f.tax, "catalog", "retire", ""); strings.Contains(out, "health.") {
		t.Fatalf("tax may not retire health's datasets, none offered:\n%s", out)
	}
	if out := complete(f.tax, "share", "list", "--grantee", ""); !strings.Contains(out, "police\t") {
		t.Fatalf("--grantee <TAB>:\n%s", out)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{"completion", sh}, &out, &errb); err != nil || out.Len() < 500 {
			t.Fatalf("completion %s: %v (%d bytes)", sh, err, out.Len())
		}
	}
}
