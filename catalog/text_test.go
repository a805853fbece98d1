package catalog

import (
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// TestReviewCatalogTextRefusesC1: a dataset's title, keywords and
// frequency and a department's name are lines, and the C1 controls
// (U+009B is a CSI introducer, as ESC [ is), bidi overrides and line
// separators are refused in them as the C0 ones were; a description may
// hold newlines and tabs but nothing else of the kind. Found by the
// second outside review: checkText let U+0080–U+009F through.
func TestReviewCatalogTextRefusesC1(t *testing.T) {
	base := func() Dataset {
		return Dataset{Published: Published{ID: "health.cases", Title: "Cases", Description: "Notified cases.\nOne line a case.\tWeekly.", ShareType: ShareOpen}}
	}
	if d := base(); d.ValidateMetadata() != nil {
		t.Fatalf("a plain dataset refused: %v", d.ValidateMetadata())
	}
	tests := []struct {
		name, field string
		edit        func(*Dataset)
	}{
		{"title CSI", "title", func(d *Dataset) { d.Title = "Cases \u009b31m" }},
		{"title NEL", "title", func(d *Dataset) { d.Title = "Cases\u0085forged" }},
		{"title newline", "title", func(d *Dataset) { d.Title = "Cases\nforged" }},
		{"title tab", "title", func(d *Dataset) { d.Title = "Cases\tshifted" }},
		{"title override", "title", func(d *Dataset) { d.Title = "Cases \u202dx" }},
		{"keyword C1", "keywords", func(d *Dataset) { d.Keywords = []string{"ok", "a\u0090b"} }},
		{"frequency paragraph separator", "frequency", func(d *Dataset) { d.Frequency = "weekly\u2029daily" }},
		{"description ESC", "description", func(d *Dataset) { d.Description = "fine\n\x1b[2J" }},
		{"description CSI", "description", func(d *Dataset) { d.Description = "fine \u009b2J" }},
		{"description carriage return", "description", func(d *Dataset) { d.Description = "fine\rforged" }},
		{"description isolate", "description", func(d *Dataset) { d.Description = "fine \u2066x" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := base()
			tc.edit(&d)
			err := d.ValidateMetadata()
			fe, ok := err.(*vocab.Error)
			if !ok || fe.Kind != vocab.KindInvalid || fe.Violations[0].Field != tc.field {
				t.Fatalf("got %v, want an invalid %s", err, tc.field)
			}
		})
	}
	if err := ValidateName("卫生健康委员会 (Health)"); err != nil {
		t.Error(err)
	}
	if err := ValidateName("Health\u009b"); vocab.KindOf(err) != vocab.KindInvalid {
		t.Errorf("a name with U+009B: %v", err)
	}
}

// TestCheckLineNamesTheCharacter: the refusal names the field, the code
// point and its position in characters, so an officer can find it.
func TestCheckLineNamesTheCharacter(t *testing.T) {
	err := CheckLine("purpose", "统计\x1b[31m")
	if vocab.KindOf(err) != vocab.KindInvalid || !strings.Contains(err.Error(), "purpose: holds U+001B (a control character) at character 3") {
		t.Errorf("got %v", err)
	}
	err = CheckLine("reason", "ab\xff")
	if vocab.KindOf(err) != vocab.KindInvalid || !strings.Contains(err.Error(), "reason: is not valid UTF-8 (byte 2 is 0xff)") {
		t.Errorf("got %v", err)
	}
	if err := CheckLine("reason", "\ufffd is a character like any other"); err != nil {
		t.Errorf("U+FFFD written as such: %v", err)
	}
}

// TestEscapeLine: what a printer shows of old text is one line with no
// character a terminal obeys, and text the rule accepts is unchanged.
func TestEscapeLine(t *testing.T) {
	for in, want := range map[string]string{
		"统计分析":                   "统计分析",
		"a\nb\r\tc":              `a\nb\r\tc`,
		"\x1b[31mred\x1b[0m":     `\u001b[31mred\u001b[0m`,
		"x\u009b2J\u2028\u202e!": `x\u009b2J\u2028\u202e!`,
		"bad \xff":               `bad \xff`,
	} {
		if got := EscapeLine(in); got != want {
			t.Errorf("EscapeLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzEscapeLine: whatever the text, EscapeLine's result passes
// CheckLine, and text that passes CheckLine comes back unchanged.
func FuzzEscapeLine(f *testing.F) {
	for _, s := range []string{"", "统计分析", "a\nb", "\x1b[31m", "\u009b", "\xff\xfe", "\u202e\u2069"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := EscapeLine(s)
		if err := CheckLine("s", e); err != nil {
			t.Fatalf("EscapeLine(%q) = %q: %v", s, e, err)
		}
		if CheckLine("s", s) == nil && e != s {
			t.Fatalf("EscapeLine changed %q, which CheckLine accepts, to %q", s, e)
		}
	})
}
