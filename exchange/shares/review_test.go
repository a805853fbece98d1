package shares

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// unsafeTexts are texts a person reads that would act on a terminal or
// forge a table row, each with the code point the refusal must name.
var unsafeTexts = []struct{ name, text, names string }{
	{"NUL", "statistics\x00here", "U+0000"},
	{"newline", "statistics\nr-99  forged row", "U+000A"},
	{"carriage return", "statistics\rforged", "U+000D"},
	{"tab", "statistics\tshifted column", "U+0009"},
	{"ANSI colour", "statistics \x1b[31mred\x1b[0m", "U+001B"},
	{"DEL", "statistics\x7f", "U+007F"},
	{"C1 CSI", "statistics \u009b31m", "U+009B"},
	{"line separator", "statistics\u2028second line", "U+2028"},
	{"right-to-left override", "statistics \u202egnp.exe", "U+202E"},
	{"right-to-left isolate", "statistics \u2067x\u2069", "U+2067"},
	{"invalid UTF-8", "statistics \xff\xfe", "0xff"},
}

// refusedNaming fails unless err is KindInvalid naming field and a
// description holding want.
func refusedNaming(t *testing.T, err error, field, want string) {
	t.Helper()
	var fe *vocab.Error
	if !errors.As(err, &fe) || fe.Kind != vocab.KindInvalid {
		t.Fatalf("got %v (kind %s), want an invalid-argument refusal", err, vocab.KindOf(err))
	}
	if len(fe.Violations) != 1 || fe.Violations[0].Field != field || !strings.Contains(fe.Violations[0].Description, want) {
		t.Fatalf("refusal %+v: want field %q naming %q", fe.Violations, field, want)
	}
}

// TestReviewRequestPurposeRefusesControlCharacters: a share request's
// purpose is printed raw by xhub share inbox and share list and in the
// summary of ledger log, so a control character, line separator, bidi
// override or invalid UTF-8 in it is refused, naming the field and the
// character; Chinese text and punctuation are accepted as they are.
// Found by the second outside review (terminal escape injection and
// forged table rows in an officer's terminal).
func TestReviewRequestPurposeRefusesControlCharacters(t *testing.T) {
	v := store.Map{}
	ds := catalog.Dataset{Published: catalog.Published{ID: "health.cases", Title: "Cases", ShareType: catalog.ShareConditional,
		Fields: []catalog.Field{{Name: "id", Type: "string"}}}, Status: catalog.StatusPublished}
	if err := v.Put(catalog.DatasetKey(ds.ID), ds); err != nil {
		t.Fatal(err)
	}
	rules := Rules{ResponseDays: 10, MaxGrantDays: 365, MaxPendingRequests: 10}
	officer := vocab.Identity{Dept: "tax", Role: vocab.RoleOfficer, Name: "o"}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, c := range unsafeTexts {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewRequest(v, rules, officer, Input{Dataset: ds.ID, Purpose: c.text}, 0, "r-1", now)
			refusedNaming(t, err, "purpose", c.names)
		})
	}
	for _, ok := range []string{"统计分析", "统计分析：2026 年度（季度）报告，见《条例》第 3 条。", "office planning; see § 4 — «draft» ✓"} {
		r, err := NewRequest(v, rules, officer, Input{Dataset: ds.ID, Purpose: ok}, 0, "r-1", now)
		if err != nil || r.Purpose != ok {
			t.Errorf("purpose %q: %+v %v", ok, r, err)
		}
	}
}

// TestReviewDisputeTextIsOneLine: a dispute's reason, its answer and
// its record key are lines of text too (dispute list prints them in a
// table): the same characters are refused, naming the field.
func TestReviewDisputeTextIsOneLine(t *testing.T) {
	for _, c := range unsafeTexts {
		refusedNaming(t, checkText("reason", c.text, 1, MaxPurposeLen), "reason", c.names)
		refusedNaming(t, checkText("record_key", c.text, 0, MaxRecordKeyLen), "record_key", c.names)
	}
	if err := checkText("reason", "同一人登记两次 (P-1024)", 1, MaxPurposeLen); err != nil {
		t.Error(err)
	}
}
