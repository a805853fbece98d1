package console

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestConsoleRefusesAnotherUserForReal: run as root, the officer signs in
// and a process of another user (nobody, 65534) replays the officer's own
// session cookie under the console's own name: refused. The same request
// from the officer's process shows the inbox. (Skipped when not root: it
// takes root to start a process as another user.)
func TestConsoleRefusesAnotherUserForReal(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a process as another user")
	}
	env := testenv.Start(t)
	if _, err := env.Admin.AddDepartment(context.Background(), "health", "卫生健康委员会"); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Client: env.Officer("health")})
	if err != nil {
		t.Fatal(err)
	}
	lis := serveConsole(t, srv)
	addr, host := lis.Addr().String(), srv.Host(lis.Addr().String())
	status, _, cookie := replayOnce(addr, host, "/login?token="+srv.token, "")
	if status != http.StatusSeeOther || cookie == "" {
		t.Fatalf("signing in: HTTP %d, cookie %q", status, cookie)
	}
	if status, _, _ := replayOnce(addr, host, "/inbox", cookie); status != http.StatusOK {
		t.Fatalf("the officer's own process with the session: HTTP %d, want 200", status)
	}

	// The test binary, where nobody can run it, run as nobody.
	dir, err := os.MkdirTemp("", "xhub-replay-") // (t.TempDir's parent is the test's own)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "console.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestReplayAsAnotherUser$", "-test.v")
	cmd.Dir = dir
	cmd.Env = []string{"XHUB_REPLAY=" + addr + " " + host + " " + cookie}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the replay as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "replay: HTTP 403 ") || !strings.Contains(string(out), "serves only the user who started it") {
		t.Fatalf("another user replaying the officer's session was not refused:\n%s", out)
	}
}

// TestReplayAsAnotherUser is the other user's side of
// TestConsoleRefusesAnotherUserForReal (run by it, as nobody).
func TestReplayAsAnotherUser(t *testing.T) {
	args := strings.Fields(os.Getenv("XHUB_REPLAY"))
	if len(args) != 3 {
		t.Skip("run by TestConsoleRefusesAnotherUserForReal")
	}
	status, body, _ := replayOnce(args[0], args[1], "/inbox", args[2])
	t.Logf("uid %d replay: HTTP %d %s", os.Getuid(), status, strings.TrimSpace(body))
}

// replayOnce sends GET path to the console at addr with the Host and
// Cookie given; it returns the status, the body and any session cookie set.
func replayOnce(addr, host, path, cookie string) (int, string, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Host = host
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	hc := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error(), ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	set := ""
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			set = c.Name + "=" + c.Value
		}
	}
	return resp.StatusCode, string(b), set
}
