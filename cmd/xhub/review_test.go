package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
)

// TestReviewShareTextRefusedThroughCLI: through the CLI and the API, a
// purpose or a reason holding an escape sequence or a newline is refused
// with INVALID_ARGUMENT naming the field and the character, and nothing
// of it reaches share inbox, share list or ledger log; a Chinese purpose
// is shown as it is. Found by the second outside review (terminal escape
// injection and forged table rows in an officer's terminal).
func TestReviewShareTextRefusedThroughCLI(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	_, err := xhub(t, env, f.tax, "share", "request", "health.cond", "--purpose", "x\x1b[2J\x1b[31mgranted")
	wantRefused(t, err, codes.InvalidArgument, "purpose: holds U+001B (a control character) at character 2")
	_, err = xhub(t, env, f.tax, "share", "request", "health.cond", "--purpose", "x\nr-1  health.cond  police")
	wantRefused(t, err, codes.InvalidArgument, "purpose: holds U+000A")
	out := mustX(t, env, f.tax, "share", "request", "health.cond", "--purpose", "统计分析（季度）", "-o", "id")
	req := strings.TrimSpace(out)
	_, err = xhub(t, env, f.health, "share", "reject", req, "--reason", "no\u009b2J basis")
	wantRefused(t, err, codes.InvalidArgument, "reason: holds U+009B")
	_, err = xhub(t, env, f.health, "share", "approve", req, "--fields", "id", "--reason", "ok\u202egnp")
	wantRefused(t, err, codes.InvalidArgument, "reason: holds U+202E")

	inbox := mustX(t, env, f.health, "share", "inbox")
	if !strings.Contains(inbox, "统计分析（季度）") || strings.Count(inbox, "\n") != 2 {
		t.Errorf("inbox:\n%s", inbox)
	}
	for _, out := range []string{inbox, mustX(t, env, f.tax, "share", "list", "--requests"), mustX(t, env, f.health, "ledger", "log")} {
		if strings.ContainsAny(out, "\x1b\u009b\u202e") {
			t.Errorf("refused text was printed:\n%q", out)
		}
	}
}

// TestReviewTablesEscapeOldText: the table printers (share inbox and
// list print requests this way; ledger log and every other list use the
// same table) print each cell on one line with nothing a terminal
// obeys, as text stored before the hub refused it may hold: no forged
// row, no shifted column, no escape sequence.
func TestReviewTablesEscapeOldText(t *testing.T) {
	var out bytes.Buffer
	c := &cli{stdout: &out, stderr: &out}
	old := "x\x1b[31m\nr-9  forged  row\t\u009b2J\u2028\u202e"
	err := c.printRequests([]adapters.ShareRequest{{ID: "r-1", Dataset: "health.cond", Requester: "tax", Purpose: old, Days: 30,
		Status: "rejected", Reason: old, Deadline: time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a header and one row, got %d lines:\n%s", len(lines), got)
	}
	for i, r := range got {
		if r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f || r == '\u2028' || r == '\u202e' {
			t.Fatalf("table holds %U at byte %d:\n%q", r, i, got)
		}
	}
	if !strings.Contains(lines[1], `x\u001b[31m\nr-9  forged  row\t\u009b2J\u2028\u202e`) {
		t.Errorf("row %q does not show the purpose escaped", lines[1])
	}
	out.Reset()
	if err := c.printJSON(map[string]string{"purpose": "a\u009b\u202e\x7f"}); err != nil {
		t.Fatal(err)
	}
	if want := `"purpose": "a\u009b\u202e\u007f"`; !strings.Contains(out.String(), want) {
		t.Errorf("JSON %q, want %s", out.String(), want)
	}
}
