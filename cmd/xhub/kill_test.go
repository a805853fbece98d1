package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// TestMain lets the test binary act as `xhub serve` in a child process.
func TestMain(m *testing.M) {
	if dir := os.Getenv("XHUB_TEST_SERVE_DIR"); dir != "" {
		// As main does: SIGTERM and SIGINT end the context.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := run(ctx, []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-level", "error"}, os.Stdout, os.Stderr)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	// No test reads the user's own contexts (xhub config).
	if os.Getenv("XHUB_CONFIG") == "" {
		dir, err := os.MkdirTemp("", "xhub-test-config-")
		if err == nil {
			os.Setenv("XHUB_CONFIG", dir+"/config.json")
			code := m.Run()
			os.RemoveAll(dir)
			stopTestPG()
			os.Exit(code)
		}
	}
	code := m.Run()
	stopTestPG()
	os.Exit(code)
}

// startServe runs `xhub serve` as a child process and returns it with its
// gRPC address.
func startServe(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "XHUB_TEST_SERVE_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-lines:
		f := strings.Fields(l) // "xhub node listening on ADDR ..."
		if len(f) < 5 {
			t.Fatalf("unexpected first line %q", l)
		}
		return cmd, f[4]
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	return nil, ""
}

// TestKill9LosesNothingAcknowledged: every change acknowledged before a
// kill -9 is there after the restart, applied once.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	cmd, addr := startServe(t, dir)
	ctx := context.Background()
	cl := dialAdmin(t, dir, addr)
	var last uint64
	for i := range 50 {
		r, err := testenv.RPC(cl).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: "dept-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Name: "D"})
		if err != nil {
			t.Fatal(err)
		}
		last = r.Seq
	}
	cl.Close()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, addr = startServe(t, dir)
	cl = dialAdmin(t, dir, addr)
	defer cl.Close()
	r, err := testenv.RPC(cl).Departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{MinSeq: last, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Departments) != 50 {
		t.Fatalf("after kill -9: %d departments, want 50", len(r.Departments))
	}
	e, err := testenv.RPC(cl).Ledger.ListEntries(ctx, &xhubv1.ListEntriesRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(e.Entries)) != last {
		t.Fatalf("ledger has %d entries, want %d", len(e.Entries), last)
	}
	n, err := testenv.RPC(cl).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: "after", Name: "After"})
	if err != nil || n.Seq != last+1 {
		t.Fatalf("next entry: %v %v, want seq %d", n, err, last+1)
	}
}

// TestSIGTERMShutsDownCleanly: `xhub serve` exits 0 on SIGTERM, promptly,
// and starts again on the same data dir with everything there.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	cmd, addr := startServe(t, dir)
	ctx := context.Background()
	cl := dialAdmin(t, dir, addr)
	r, err := testenv.RPC(cl).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: "health", Name: "Health"})
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("shutdown took %s", el)
	}
	_, addr = startServe(t, dir)
	cl = dialAdmin(t, dir, addr)
	defer cl.Close()
	d, err := testenv.RPC(cl).Departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{MinSeq: r.Seq})
	if err != nil || len(d.Departments) != 1 {
		t.Fatalf("after restart: %v %v", d, err)
	}
}

// dialAdmin connects to a child serve process with its admin credentials.
func dialAdmin(t *testing.T, dir, addr string) *adapters.Client {
	t.Helper()
	cl, err := adapters.Dial(context.Background(), filepath.Join(dir, "admin.creds"), adapters.WithHub(addr))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
