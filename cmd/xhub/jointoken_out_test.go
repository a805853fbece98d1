package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestServeWritesJoinToken: `xhub serve --join-token-out FILE` writes,
// once it serves, the next node's join token to FILE (mode 0600) and
// leaves an existing FILE alone on later starts; a second node joins
// with that file alone (docker-compose.yml's hub-1 and hub-2, which share
// only the token's volume).
func TestServeWritesJoinToken(t *testing.T) {
	tmp := t.TempDir()
	dirA, dirB, joinDir := filepath.Join(tmp, "hub-a"), filepath.Join(tmp, "hub-b"), filepath.Join(tmp, "join")
	if err := os.Mkdir(joinDir, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(joinDir, "hub-b.token")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrA := l.Addr().String()
	l.Close()
	ctx := context.Background()

	type proc struct {
		out  *syncBuffer
		stop context.CancelFunc
		done chan error
	}
	start := func(what string, args ...string) *proc {
		rctx, stop := context.WithCancel(ctx)
		p := &proc{out: &syncBuffer{}, stop: stop, done: make(chan error, 1)}
		go func() {
			p.done <- run(rctx, append([]string{"serve", "--log-level", "error"}, args...), p.out, io.Discard)
		}()
		testenv.WaitFor(t, 60*time.Second, what+" listening", func() bool {
			select {
			case err := <-p.done:
				t.Fatalf("%s: %v\n%s", what, err, p.out.String())
			default:
			}
			return strings.Contains(p.out.String(), "listening")
		})
		return p
	}
	end := func(p *proc) {
		p.stop()
		if err := <-p.done; err != nil {
			t.Fatalf("serve after SIGTERM: %v", err)
		}
	}
	argsA := []string{"--data-dir", dirA, "--listen", addrA, "--nats-listen", "127.0.0.1:0", "--name", "hub-a",
		"--join-token-out", file, "--join-token-name", "hub-b", "--join-token-via", addrA}

	// Refused before anything starts.
	if err := run(ctx, []string{"serve", "--data-dir", dirA, "--join-token-name", "hub-b"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--join-token-out") {
		t.Fatalf("--join-token-name alone: %v", err)
	}
	if err := run(ctx, []string{"serve", "--data-dir", dirA, "--join-token-out", filepath.Join(tmp, "nowhere", "t")}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "no such directory") {
		t.Fatalf("--join-token-out into no directory: %v", err)
	}

	a := start("hub-a", argsA...)
	testenv.WaitFor(t, 30*time.Second, "the token written", func() bool { return strings.Contains(a.out.String(), "join token") })
	st, err := os.Stat(file)
	if err != nil {
		t.Fatalf("%v\n%s", err, a.out.String())
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %04o, want 0600", st.Mode().Perm())
	}
	tok, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(tok), "xhubjoin2.") || strings.Contains(a.out.String(), strings.TrimSpace(string(tok))) {
		t.Fatalf("token file %q; serve said %s", tok, a.out.String())
	}
	if left, _ := filepath.Glob(filepath.Join(joinDir, "*.tmp")); len(left) != 0 {
		t.Fatalf("left %v", left)
	}

	// The second node has the token file and its own empty data dir.
	b := start("hub-b", "--data-dir", dirB, "--listen", "127.0.0.1:0", "--name", "hub-b", "--join-file", file)
	end(b)

	// A restart of the first leaves the file, now used, alone.
	end(a)
	a = start("hub-a again", argsA...)
	testenv.WaitFor(t, 30*time.Second, "the file left alone", func() bool { return strings.Contains(a.out.String(), "no new join token made") })
	if again, _ := os.ReadFile(file); string(again) != string(tok) {
		t.Fatal("a restart replaced the token file")
	}
	cl, err := adapters.Dial(ctx, filepath.Join(dirA, "admin.creds"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	toks, err := cl.JoinTokens(ctx)
	if err != nil || len(toks) != 1 || toks[0].Status != "joined" || toks[0].JoinedAs != "hub-b" {
		t.Fatalf("join tokens after the join and a restart: %+v %v", toks, err)
	}
	end(a)
}
