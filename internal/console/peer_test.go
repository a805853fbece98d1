package console

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestPeerUID: for a real loopback connection, on each family, the user
// owning the other end is found: this process's.
func TestPeerUID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the connecting user is known on Linux only")
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v (no such loopback here)", addr, err)
			continue
		}
		defer lis.Close()
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := lis.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		uid, err := peerUID(s)
		if err != nil || uid != os.Getuid() {
			t.Errorf("%s: peer uid %d, %v; want %d", addr, uid, err, os.Getuid())
		}
	}
}

// TestConsoleRefusesAnotherUser: a connection made by another user of the
// machine is refused before anything else, the one-time token left
// unused; the console's own user signs in with it. (The console is told
// it serves another uid: the lookup and the refusal are the real ones.)
func TestConsoleRefusesAnotherUser(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the connecting user is known on Linux only")
	}
	env := testenv.Start(t)
	if _, err := env.Admin.AddDepartment(context.Background(), "health", "卫生健康委员会"); err != nil {
		t.Fatal(err)
	}
	cl := env.Officer("health")
	get := func(srv *Server, lis net.Listener) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+lis.Addr().String()+"/login?token="+srv.token, nil)
		req.Host = srv.Host(lis.Addr().String())
		hc := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	serve := func(uid int) (*Server, net.Listener) {
		srv, err := New(Config{Client: cl})
		if err != nil {
			t.Fatal(err)
		}
		srv.uid = uid
		return srv, serveConsole(t, srv)
	}

	other, lis := serve(os.Getuid() + 1)
	token := other.token
	status, body := get(other, lis)
	if status != http.StatusForbidden || !strings.Contains(body, "serves only the user who started it") {
		t.Fatalf("a connection from another user: HTTP %d %q", status, body)
	}
	other.mu.Lock()
	left := other.token
	other.mu.Unlock()
	if left != token {
		t.Fatal("the refused connection used up the one-time token")
	}
	own, lis := serve(os.Getuid())
	if status, body := get(own, lis); status != http.StatusSeeOther {
		t.Fatalf("the console's own user signing in: HTTP %d %q", status, body)
	}
}

func TestSocketUID(t *testing.T) {
	table := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 50 1 000000006cab1726 100 0 0 10 0\n" +
		"   1: 0100007F:857B 0100007F:D5E4 01 00000000:00000000 00:00000000 00000000  1001        0 7 1 000000007bd1027f\n"
	local, remote := netip.MustParseAddrPort("127.0.0.1:34171"), netip.MustParseAddrPort("127.0.0.1:54756")
	if !littleEndian() {
		t.Skip("the table above is a little-endian host's")
	}
	uid, found, err := socketUID(strings.NewReader(table), local, remote)
	if err != nil || !found || uid != 1001 {
		t.Fatalf("uid %d found %v err %v, want 1001", uid, found, err)
	}
	if _, found, _ := socketUID(strings.NewReader(table), remote, local); found {
		t.Fatal("the reversed pair (the server's own socket) matched")
	}
	for _, bad := range []string{"h\n   1: 0100007F:857B\n", "h\n 1: 0100007G:857B 0100007F:D5E4 01 0 0 0 1001\n", "h\n 1: 0100007F:857B 0100007F:D5E4 01 0 0 0 x\n", "h\n" + strings.Repeat("0", maxProcLine+1) + "\n"} {
		if _, _, err := socketUID(strings.NewReader(bad), local, remote); err == nil {
			t.Errorf("table %.40q: no error", bad)
		}
	}
	six := "h\n 0: 00000000000000000000000001000000:8147 00000000000000000000000001000000:B0C4 01 0 0 0 1002 0\n"
	if uid, found, err := socketUID(strings.NewReader(six), netip.MustParseAddrPort("[::1]:33095"), netip.MustParseAddrPort("[::1]:45252")); err != nil || !found || uid != 1002 {
		t.Fatalf("tcp6: uid %d found %v err %v, want 1002", uid, found, err)
	}
}

func littleEndian() bool {
	a, _ := procAddr("0100007F:0000")
	return a.Addr() == netip.MustParseAddr("127.0.0.1")
}

// FuzzSocketUID: any table gives an answer or an error, never a crash.
func FuzzSocketUID(f *testing.F) {
	f.Add([]byte("  sl  local_address rem_address   st\n   1: 0100007F:857B 0100007F:D5E4 01 00000000:00000000 00:00000000 00000000  1001        0 7\n"))
	f.Add([]byte("h\n 0: 00000000000000000000000001000000:8147 00000000000000000000000001000000:B0C4 01 0 0 0 1002 0\n"))
	f.Fuzz(func(t *testing.T, table []byte) {
		local, remote := netip.MustParseAddrPort("127.0.0.1:34171"), netip.MustParseAddrPort("127.0.0.1:54756")
		uid, found, err := socketUID(bytes.NewReader(table), local, remote)
		if err != nil && (found || uid != 0) {
			t.Fatalf("an error with an answer: %d %v %v", uid, found, err)
		}
	})
}

// serveConsole serves srv on a free loopback port until the test ends.
func serveConsole(t *testing.T, srv *Server) net.Listener {
	t.Helper()
	lis, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, lis); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return lis
}
