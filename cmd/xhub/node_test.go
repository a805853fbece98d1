package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeCommands: node token prints a token (or writes it once to
// --out), node list shows it in table and JSON, an officer may not make one.
func TestNodeCommands(t *testing.T) {
	f := newShareFixture(t)
	env, admin := f.env, f.env.Node.AdminCreds
	tok := strings.TrimSpace(mustX(t, env, admin, "node", "token", "--name", "hub-b"))
	if !strings.HasPrefix(tok, "xhubjoin1.") {
		t.Fatalf("token: %q", tok)
	}
	out := filepath.Join(t.TempDir(), "b.token")
	mustX(t, env, admin, "node", "token", "--name", "hub-c", "--out", out)
	first, _ := os.ReadFile(out)
	if msg := mustX(t, env, admin, "node", "token", "--name", "hub-c", "--out", out); !strings.Contains(msg, "no new token") {
		t.Fatalf("second token to the same file: %q", msg)
	}
	if again, _ := os.ReadFile(out); string(again) != string(first) {
		t.Fatal("an existing token file was overwritten")
	}
	var list struct {
		Tokens []struct{ Name, Status string } `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(mustX(t, env, admin, "node", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Tokens) != 2 || list.Tokens[0].Name != "hub-b" || list.Tokens[0].Status != "unused" {
		t.Fatalf("node list: %+v", list.Tokens)
	}
	if tab := mustX(t, env, admin, "node", "list"); !strings.Contains(tab, "hub-c") {
		t.Fatalf("node list table: %q", tab)
	}
	_, err := xhub(t, env, f.health, "node", "token")
	if err == nil || !strings.Contains(err.Error(), "PermissionDenied") || !strings.Contains(err.Error(), "allowed: admin") {
		t.Fatalf("officer makes a join token: %v", err)
	}
}
