package shares

import (
	"testing"
	"time"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

func TestAddWorkingDays(t *testing.T) {
	fri := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC) // a Friday
	for _, c := range []struct {
		n    int
		want string
	}{{1, "2026-11-23"}, {5, "2026-11-27"}, {6, "2026-11-30"}, {0, "2026-11-20"}} {
		if got := AddWorkingDays(fri, c.n).Format(time.DateOnly); got != c.want {
			t.Errorf("Friday + %d working days = %s, want %s", c.n, got, c.want)
		}
	}
	d := Dispute{Status: DisputeOpen, Deadline: AddWorkingDays(fri, 5)}
	if d.Overdue(fri.AddDate(0, 0, 7)) || !d.Overdue(fri.AddDate(0, 0, 8)) {
		t.Error("overdue is after the deadline, not before")
	}
	d.Status = DisputeCorrected
	if d.Overdue(fri.AddDate(1, 0, 0)) {
		t.Error("an answered dispute is never overdue")
	}
}

// TestDisputeText: a dispute's reason is valid UTF-8, present, and one
// line of text (tabs and newlines are refused since the review of issue
// 21: dispute list prints it in a table).
func TestDisputeText(t *testing.T) {
	for _, s := range []string{"bad \xff bytes", "bell\a", "", "line one\nline two", "a\ttab"} {
		if err := checkText("reason", s, 1, 100); vocab.KindOf(err) != vocab.KindInvalid {
			t.Errorf("%q: %v", s, err)
		}
	}
	if err := checkText("reason", "line one, line two: 数据异议", 1, 100); err != nil {
		t.Error(err)
	}
	if _, err := ParseDisputeID("d-0"); err == nil {
		t.Error("d-0 parsed")
	}
}
