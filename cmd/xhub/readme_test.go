package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "xhub"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
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
	full := "set -euo pipefail\ncd " + dir + "\n" + script + "\nkill $(jobs -p) 2>/dev/null || true\nwait || true\necho README-DONE\n"
	if err := os.WriteFile(filepath.Join(dir, "readme.sh"), []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-x", filepath.Join(dir, "readme.sh"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XHUB_CREDS=", "XHUB_HUB=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	// Whatever happened, no hub is left behind.
	_ = exec.Command("pkill", "-f", filepath.Join(dir, "xhub")).Run()
	_ = exec.Command("pkill", "-f", "--data-dir ./data --listen "+hub).Run()
	if err != nil || !strings.Contains(out.String(), "README-DONE") {
		tail := out.String()
		if len(tail) > 12000 {
			tail = tail[len(tail)-12000:]
		}
		t.Fatalf("the README's commands failed: %v\n%s", err, tail)
	}
	t.Logf("%d blocks run, %d commands", len(blocks), strings.Count(out.String(), "\n+ "))
	if os.Getenv("XHUB_README_OUT") != "" {
		_ = os.WriteFile(os.Getenv("XHUB_README_OUT"), out.Bytes(), 0o644)
	}
}
