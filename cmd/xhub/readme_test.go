package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/internal/testenv"
)

// readmeBlocks are the README's ```sh blocks, in order, except those
// under a "<!-- not run by TestReadme: reason -->" line.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```sh" {
			continue
		}
		skip := i > 0 && strings.HasPrefix(lines[i-1], "<!-- not run by TestReadme:")
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		if !skip {
			blocks = append(blocks, strings.Join(body, "\n"))
		}
	}
	return blocks
}

// buildXhub builds this command into dir/xhub, as the README's
// quickstart does.
func buildXhub(t *testing.T, dir string) {
	t.Helper()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "xhub"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
}

// runReadmeScript runs script in dir, written there as file, with bash -x
// and `set -euo pipefail`, and none of the caller's XHUB_CREDS or
// XHUB_HUB. It runs in a process group of its own, ended whatever
// happens, so that no server it starts outlives the test. The test fails
// (with the tail of what the script printed) unless the script runs to
// its end within timeout; otherwise it returns what the script printed.
func runReadmeScript(t *testing.T, dir, file, script string, timeout time.Duration) string {
	t.Helper()
	const done = "README-SCRIPT-DONE"
	full := "set -euo pipefail\ncd " + dir + "\n" + script + "\necho " + done + "\n"
	if err := os.WriteFile(filepath.Join(dir, file), []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-x", filepath.Join(dir, file))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XHUB_CREDS=", "XHUB_HUB=")
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A server the script left running holds its output open: once bash
	// has ended, Wait gives the output a moment, then closes it (the group
	// is killed below), rather than wait for that server for ever.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	text := out.String()
	if err != nil || !strings.Contains(text, done) {
		if len(text) > 15000 {
			text = text[len(text)-15000:]
		}
		t.Fatalf("the README's commands (%s) failed: %v\n%s", file, err, text)
	}
	return text
}

// TestReadme runs the README's shell blocks, in order, as one script
// against a real hub (the one its quickstart starts, on free ports), so
// the README cannot drift from what xhub does. A block that is not meant
// to run says why, in a comment the test reads.
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("builds xhub and runs the README")
	}
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed (.ci/run installs it)", tool)
			}
			t.Skipf("needs %s", tool)
		}
	}
	dir := t.TempDir()
	buildXhub(t, dir)
	ports := testenv.FreePorts(t, 2)
	hub, natsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	blocks := readmeBlocks(t)
	if len(blocks) < 8 {
		t.Fatalf("only %d runnable blocks in the README", len(blocks))
	}
	script := strings.Join(blocks, "\n")
	// The quickstart builds the binary (done above) and serves on the
	// default ports (free ones here).
	script = regexp.MustCompile(`(?m)^go build -o xhub \./cmd/xhub\n`).ReplaceAllString(script, "")
	script = strings.ReplaceAll(script, "./xhub serve --data-dir ./data ", "./xhub serve --data-dir ./data --listen "+hub+" ")
	script = strings.ReplaceAll(script, "127.0.0.1:7443", hub)
	script = strings.ReplaceAll(script, "127.0.0.1:4222", natsAddr)
	if !strings.Contains(script, "--listen "+hub) {
		t.Fatal("the README's quickstart no longer starts a hub with ./xhub serve --data-dir ./data")
	}
	// Whatever happens, no hub is left behind.
	defer func() {
		_ = exec.Command("pkill", "-f", filepath.Join(dir, "xhub")).Run()
		_ = exec.Command("pkill", "-f", "--data-dir ./data --listen "+hub).Run()
	}()
	out := runReadmeScript(t, dir, "readme.sh", script+"\nkill $(jobs -p) 2>/dev/null || true\nwait || true", 4*time.Minute)
	t.Logf("%d blocks run, %d commands", len(blocks), strings.Count(out, "\n+ "))
	if os.Getenv("XHUB_README_OUT") != "" {
		_ = os.WriteFile(os.Getenv("XHUB_README_OUT"), []byte(out), 0o644)
	}
}

// clusterMarker precedes the README's cluster walk-through, which
// TestReadme leaves out and TestReadmeCluster runs.
const clusterMarker = "<!-- not run by TestReadme: its own cluster, run by TestReadmeCluster -->"

// TestReadmeCluster runs the README's cluster section as written, after
// the quickstart's hub would be running (its own ports, on 127.0.0.1
// only): three nats-server processes, two hub nodes, the second joined
// with a token, a kill -9, node list. nats-server is the module's, built
// as testenv does (the README builds the same with go build).
func TestReadmeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds xhub and nats-server and runs the README's cluster")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), clusterMarker+"\n```sh\n")
	if !ok {
		t.Fatal("the README has no cluster block under " + clusterMarker)
	}
	block, _, _ := strings.Cut(rest, "\n```")
	dir := t.TempDir()
	buildXhub(t, dir)
	if err := os.Symlink(testenv.NATSServerBinary(t), filepath.Join(dir, "nats-server")); err != nil {
		t.Fatal(err)
	}
	const builds = "go build -o xhub ./cmd/xhub && go build -o nats-server github.com/nats-io/nats-server/v2\n"
	if !strings.HasPrefix(block, builds) {
		t.Fatalf("the cluster block no longer starts with %q", builds)
	}
	script := strings.TrimPrefix(block, builds)
	// The block's own ports, as written; reserved so that no other test
	// takes one meanwhile.
	testenv.ReservePorts(t, 14221, 14222, 14223, 16221, 16222, 16223, 17443, 17444, 17445)
	text := runReadmeScript(t, dir, "cluster.sh", script, 6*time.Minute)
	for _, want := range []string{
		"hub: 127.0.0.1:17443,127.0.0.1:17444", // the creds file lists both nodes
		"is in use by another xhub process",    // the second serve on hub-a's dir
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the cluster block's output lacks %q", want)
		}
	}
	if os.Getenv("XHUB_README_OUT") != "" {
		_ = os.WriteFile(os.Getenv("XHUB_README_OUT")+".cluster", []byte(text), 0o644)
	}
}
