package catalog

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// The rule for text a person reads: a dataset's title, a department's
// name, a share request's purpose, the reason for a decision. Such text
// is stored in the ledger and printed later in an officer's terminal
// (xhub ledger log, share inbox, share list) and in tables. A control
// character there is not text but an instruction to the terminal: ESC
// or U+009B (CSI) start an escape sequence that recolours, moves the
// cursor or rewrites what is on screen; a newline or a carriage return
// forges a row of a table; a tab shifts its columns; a bidi override
// shows the characters in an order other than the one stored. So every
// command refuses them (CheckLine, CheckParagraph), and every printer
// of old entries, written before the rule, escapes them (EscapeLine).

// unsafeRune reports whether r may not appear in a line of text: any
// Unicode control character (C0, DEL, C1, which include tab, newline
// and carriage return), the line and paragraph separators, and every
// bidi control (marks, embeddings, overrides, isolates) that changes the
// visual order.
func unsafeRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u2028' || r == '\u2029': // line, paragraph separator
		return true
	case unicode.Is(unicode.Bidi_Control, r): // LRM, RLM, ALM, embeddings, overrides, isolates
		return true
	}
	return false
}

// CheckLine checks that s is one line of text a person reads: valid
// UTF-8 with no control character (tab and newline included), line
// separator or bidi override. The refusal names field and the first
// offending character, its code point and its position (counted in
// characters from 1).
func CheckLine(field, s string) error { return checkChars(field, s, false) }

// CheckParagraph is CheckLine for text of several lines (a dataset's
// description): it allows newlines and tabs, nothing else of the kind.
func CheckParagraph(field, s string) error { return checkChars(field, s, true) }

func checkChars(field, s string, paragraph bool) error {
	n := 0
	for i, r := range s {
		n++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return vocab.Invalid(field, "is not valid UTF-8 (byte %d is 0x%02x)", i, s[i])
			}
		}
		if paragraph && (r == '\n' || r == '\t') {
			continue
		}
		if unsafeRune(r) {
			what := "a control character"
			if !unicode.IsControl(r) {
				what = "a line separator or bidi control"
			}
			where := "one line of plain text"
			if paragraph {
				where = "plain text (newlines and tabs are allowed)"
			}
			return vocab.Invalid(field, "holds %U (%s) at character %d: write it as %s", r, what, n, where)
		}
	}
	return nil
}

// EscapeLine makes s printable on one line, whatever it holds: each
// character CheckLine refuses is written as an escape (\n, \r, \t, or
// \u001b as Go writes it), each byte that is not UTF-8 as \xff. Text
// that CheckLine accepts comes back unchanged. Printers use it for text
// from the ledger, since entries written before the rule may hold such
// characters.
func EscapeLine(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
				continue
			}
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
