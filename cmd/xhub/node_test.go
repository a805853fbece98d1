package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestNodeCommands: node token prints a token (or writes it once to
// --out), node list shows it and the node (up, its applied sequence) in
// table and JSON, an officer may not make one; node forget removes a
// node's heartbeat, refusing a node that is up and an officer. The table
// says up or down, as the README does (the second outside review found
// yes and no there).
func TestNodeCommands(t *testing.T) {
	f := newShareFixture(t)
	env, admin := f.env, f.env.Node.AdminCreds
	tok := strings.TrimSpace(mustX(t, env, admin, "node", "token", "--name", "hub-b"))
	if !strings.HasPrefix(tok, "xhubjoin2.") {
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
		Nodes []struct {
			Name    string
			Up      bool
			Applied uint64 `json:"applied_seq"`
		} `json:"nodes"`
		Tokens []struct{ Name, Status string } `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(mustX(t, env, admin, "node", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Nodes) != 1 || list.Nodes[0].Name != "xhub" || !list.Nodes[0].Up || list.Nodes[0].Applied == 0 {
		t.Fatalf("node list: nodes %+v", list.Nodes)
	}
	if len(list.Tokens) != 2 || list.Tokens[0].Name != "hub-b" || list.Tokens[0].Status != "unused" {
		t.Fatalf("node list: %+v", list.Tokens)
	}
	if tab := mustX(t, env, admin, "node", "list"); !strings.Contains(tab, "hub-c") || !regexp.MustCompile(`(?m)^NODE +STATUS +LAST SEEN +APPLIED +VERSION +ADDRESSES\nxhub +up `).MatchString(tab) {
		t.Fatalf("node list table: %q", tab)
	}
	_, err := xhub(t, env, f.health, "node", "token")
	if err == nil || !strings.Contains(err.Error(), "PermissionDenied") || !strings.Contains(err.Error(), "allowed: admin") {
		t.Fatalf("officer makes a join token: %v", err)
	}

	// node forget: a removed node's heartbeat goes; a node up is refused.
	old := bus.NodeBeat{Name: "hub-gone", Instance: "x", Addrs: []string{"hub-gone.example.org:7443"}, SeenAt: time.Now().UTC().Add(-time.Hour), Interval: 10 * time.Second}
	if err := bus.PublishBeat(context.Background(), env.Node.JS, old); err != nil {
		t.Fatal(err)
	}
	if tab := mustX(t, env, admin, "node", "list"); !regexp.MustCompile(`(?m)^hub-gone +down `).MatchString(tab) {
		t.Fatalf("node list with a node last heard from an hour ago: %q", tab)
	}
	if _, err := xhub(t, env, admin, "node", "forget", "xhub"); err == nil || !strings.Contains(err.Error(), "node xhub is up") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("node forget of a node up: %v", err)
	}
	if msg := mustX(t, env, admin, "node", "forget", "hub-gone"); !strings.Contains(msg, "node hub-gone forgotten") {
		t.Fatalf("node forget: %q", msg)
	}
	if tab := mustX(t, env, admin, "node", "list"); strings.Contains(tab, "hub-gone") {
		t.Fatalf("node list after node forget: %q", tab)
	}
	if _, err := xhub(t, env, f.health, "node", "forget", "xhub", "--force"); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Fatalf("officer forgets a node: %v", err)
	}
}

// TestServeJoinTokenNotOnCommandLine: `xhub serve --join TOKEN` is
// refused before anything is done, saying what to use and not repeating
// the token (a command line is readable by every local user); a token
// file others can read is refused; a file and XHUB_JOIN together are
// refused; and --join-file from a 0600 file joins.
func TestServeJoinTokenNotOnCommandLine(t *testing.T) {
	a := testenv.Start(t, testenv.WithNATSListen())
	ctx := context.Background()
	tok, _, err := a.Admin.CreateJoinToken(ctx, "hub-b", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "hub-b")
	serve := func(ctx context.Context, out io.Writer, args ...string) error {
		return run(ctx, append([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--name", "hub-b", "--log-level", "error"}, args...), out, io.Discard)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, form := range [][]string{{"--join", tok}, {"--join=" + tok}} {
		err := serve(short, io.Discard, form...)
		if err == nil || !strings.Contains(err.Error(), "--join-file FILE") || !strings.Contains(err.Error(), "XHUB_JOIN") || strings.Contains(err.Error(), tok) {
			t.Fatalf("xhub serve %s: %v", form[0], err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Fatalf("xhub serve %s made %s", form[0], dir)
		}
	}
	file := filepath.Join(t.TempDir(), "hub-b.token")
	if err := os.WriteFile(file, []byte(tok+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := serve(short, io.Discard, "--join-file", file); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a token file others can read: %v", err)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	// Mode 0600 of another user's file keeps nothing from that user.
	if os.Getuid() == 0 && runtime.GOOS == "linux" {
		if err := os.Chown(file, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if err := serve(short, io.Discard, "--join-file", file); err == nil || !strings.Contains(err.Error(), "owned by another user") {
			t.Fatalf("a token file of another user's: %v", err)
		}
		if err := os.Chown(file, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XHUB_JOIN", tok)
	if err := serve(short, io.Discard, "--join-file", file); err == nil || !strings.Contains(err.Error(), "give one") {
		t.Fatalf("a token file and XHUB_JOIN: %v", err)
	}
	if toks, err := a.Admin.JoinTokens(ctx); err != nil || toks[0].Status != "unused" {
		t.Fatalf("the token after refused starts: %+v %v", toks, err)
	}
	os.Unsetenv("XHUB_JOIN")

	running, stop := context.WithCancel(ctx)
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- serve(running, out, "--join-file", file) }()
	testenv.WaitFor(t, 60*time.Second, "hub-b joined and listening", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve --join-file: %v", err)
		default:
		}
		return strings.Contains(out.String(), "listening")
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	toks, err := a.Admin.JoinTokens(ctx)
	if err != nil || toks[0].Status != "joined" || toks[0].JoinedAs != "hub-b" || !strings.HasPrefix(toks[0].JoinerKey, "sha256:") {
		t.Fatalf("the token after joining with --join-file: %+v %v", toks, err)
	}
}
