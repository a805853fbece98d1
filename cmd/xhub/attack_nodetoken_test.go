package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestAttackNodeTokenOutWritesThroughPlantedFile: `xhub node token --out
// FILE` checks that FILE does not exist (os.Stat), then dials the hub,
// makes the token and writes it with os.WriteFile, which follows a
// symlink and keeps an existing file's owner and mode. Another local user
// who can create entries in FILE's directory (a shared deploy dir, /tmp)
// and who sees the command line in /proc plants FILE during the dial (a
// TLS handshake and a ledger append: milliseconds), as a link to a file of
// their own, readable by them. The join token, which admits one node and
// hands it the CA key and the ledger key, is then written into the
// attacker's file. `serve --join-token-out` was fixed for this (O_EXCL and
// rename, 61d80ec); `node token --out`, which the README's cluster section
// uses, was not. The plant is made deterministic here by a TCP proxy in
// front of the hub that plants the link when the CLI connects (after its
// Stat, before its write).
func TestAttackNodeTokenOutWritesThroughPlantedFile(t *testing.T) {
	env := testenv.Start(t)
	deploy := t.TempDir()   // the shared directory the token goes to
	attacker := t.TempDir() // the other user's own directory
	out := filepath.Join(deploy, "hub-b.token")
	stolen := filepath.Join(attacker, "stolen")
	if err := os.WriteFile(stolen, nil, 0o644); err != nil { // the attacker's file, readable by them
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var plant sync.Once
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			plant.Do(func() { _ = os.Symlink(stolen, out) }) // after the CLI's Stat, before its WriteFile
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", env.Addr())
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()

	var so, se bytes.Buffer
	err = run(context.Background(), []string{"node", "token", "--name", "hub-b", "--out", out,
		"--hub", ln.Addr().String(), "--creds", env.Node.AdminCreds}, &so, &se)
	t.Logf("node token: err=%v stdout=%q stderr=%q", err, so.String(), se.String())

	got, _ := os.ReadFile(stolen)
	if strings.Contains(string(got), "xhubjoin2.") {
		st, _ := os.Stat(stolen)
		t.Fatalf("the join token was written through the planted link into the attacker's file %s (mode %v): %.20s…", stolen, st.Mode().Perm(), got)
	}
	if err == nil {
		if fi, lerr := os.Lstat(out); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			t.Fatalf("node token --out reported success writing through a symlink")
		}
	}
}
