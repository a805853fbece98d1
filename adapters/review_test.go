package adapters

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xhub-gov/xhub/exchange/ledger"
)

// oneLine fails unless s is one line with no character a terminal
// obeys: no byte below 0x20, no DEL, no C1 control, line separator or
// bidi override.
func oneLine(t *testing.T, what, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			t.Fatalf("%s: summary %q holds byte 0x%02x at %d", what, s, s[i], i)
		}
	}
	for _, r := range s {
		if r >= 0x80 && r <= 0x9f || r == '\u2028' || r == '\u2029' || r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069' {
			t.Fatalf("%s: summary %q holds %U", what, s, r)
		}
	}
	if !utf8.ValidString(s) {
		t.Fatalf("%s: summary %q is not UTF-8", what, s)
	}
}

// TestReviewSummaryIsOneLine: the summary `xhub ledger log` prints of an
// entry is one line of printable text even when the entry's purpose,
// reason or other text holds ESC, newlines, C1 controls or bidi
// overrides, as entries written before the hub refused them may. Found
// by the second outside review (terminal escape injection and forged
// rows in ledger log).
func TestReviewSummaryIsOneLine(t *testing.T) {
	bad := "x\x1b[31m\nforged\r\t\u009b2J\u0085\u2028\u202egnp\x7f\x00"
	for _, c := range []struct{ kind, field string }{
		{"share.requested", "purpose"},
		{"share.rejected", "reason"},
		{"share.approved", "reason"},
		{"grant.revoked", "reason"},
		{"cred.revoked", "reason"},
		{"dataset.retired", "reason"},
		{"dispute.opened", "reason"},
		{"dispute.opened", "record_key"},
		{"dispute.resolved", "reason"},
		{"dept.added", "name"},
		{"dataset.published", "title"},
		{"dataset.updated", "description"},
		{"some.future", "note"},
	} {
		body, err := json.Marshal(map[string]any{c.field: bad, "requester": "tax", "dataset": "health.cases", "request": "r-1", "grant": "g-2"})
		if err != nil {
			t.Fatal(err)
		}
		e, err := ledger.New(1, ledger.Hash{}, time.Unix(0, 0), "spiffe://xhub/dept/tax/officer/o", c.kind, "x", json.RawMessage(body))
		if err != nil {
			t.Fatal(err)
		}
		s := Summary(Entry{Seq: 1, Kind: c.kind, Raw: e.Marshal()})
		oneLine(t, c.kind+" "+c.field, s)
		if s == "" {
			t.Errorf("%s %s: no summary", c.kind, c.field)
		}
		t.Logf("%-18s %s", c.kind, s)
	}
}
