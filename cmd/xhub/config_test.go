package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestContexts: named contexts in the XDG config file pick the hub and
// creds; use-context switches; --creds and XHUB_CREDS still override;
// --context picks another; a missing one is named.
func TestContexts(t *testing.T) {
	env := testenv.Start(t)
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("XHUB_CONFIG", "")
	t.Setenv("XHUB_CREDS", "")
	t.Setenv("XHUB_HUB", "")
	t.Setenv("XHUB_CONTEXT", "")
	x := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		return out.String(), err
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := x(args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out
	}
	if _, err := x("dept", "list"); err == nil || !strings.Contains(err.Error(), "set-context") {
		t.Fatalf("no creds, no context: %v", err)
	}
	mustRun("dept", "add", "health", "--name", "Health", "--creds", env.Node.AdminCreds, "--hub", env.Addr())
	hcreds := filepath.Join(t.TempDir(), "health.creds")
	mustRun("creds", "issue", "--dept", "health", "--role", "officer", "--out", hcreds, "--creds", env.Node.AdminCreds, "--hub", env.Addr())

	mustRun("config", "set-context", "admin", "--creds", env.Node.AdminCreds, "--hub", env.Addr())
	mustRun("config", "set-context", "health", "--creds", hcreds)
	if fi, err := os.Stat(filepath.Join(cfgHome, "xhub", "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi, err)
	}
	// The first context became current: the admin lists departments.
	if out := mustRun("dept", "list"); !strings.Contains(out, "health") {
		t.Fatalf("dept list in context admin:\n%s", out)
	}
	out := mustRun("config", "get-contexts")
	if !strings.Contains(out, "*        admin") && !strings.Contains(out, "*  ") {
		t.Fatalf("get-contexts:\n%s", out)
	}
	mustRun("config", "use-context", "health")
	if strings.TrimSpace(mustRun("config", "current-context")) != "health" {
		t.Fatal("use-context did not switch")
	}
	// health's officer may not add departments: the context's identity is used.
	if _, err := x("dept", "add", "edu", "--name", "Edu"); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("as health's officer: %v", err)
	}
	// --context and XHUB_CREDS override the current one; the --context
	// flag beats XHUB_CREDS; the --creds flag beats everything.
	mustRun("dept", "add", "edu", "--name", "Edu", "--context", "admin")
	t.Setenv("XHUB_CREDS", env.Node.AdminCreds)
	mustRun("dept", "add", "fin", "--name", "Fin", "--hub", env.Addr())
	if _, err := x("dept", "add", "tax", "--name", "Tax", "--context", "health"); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("--context health with XHUB_CREDS=admin: %v", err)
	}
	t.Setenv("XHUB_CREDS", "")
	mustRun("dept", "add", "tax", "--name", "Tax", "--creds", env.Node.AdminCreds, "--hub", env.Addr(), "--context", "health")
	if _, err := x("dept", "list", "--context", "nosuch"); err == nil || !strings.Contains(err.Error(), `context "nosuch" is not in`) {
		t.Fatalf("missing context: %v", err)
	}
	var cfg ContextConfig
	if err := json.Unmarshal([]byte(mustRun("config", "get-contexts", "-o", "json")), &cfg); err != nil || len(cfg.Contexts) != 2 || cfg.CurrentContext != "health" {
		t.Fatalf("-o json: %+v %v", cfg, err)
	}
	mustRun("config", "delete-context", "health")
	if out := mustRun("config", "get-contexts"); strings.Contains(out, "health") {
		t.Fatalf("deleted context listed:\n%s", out)
	}
}
