package catalog

import "testing"

// TestReview3BidiMarksAreBidiControls: Unicode's Bidi_Control property
// holds twelve characters; the rule refuses nine (the embeddings,
// overrides and isolates) and lets the three marks through: U+200E LRM,
// U+200F RLM and U+061C ALM, which change where neutrals and digits are
// shown (unicode.Bidi_Control lists all twelve).
func TestReview3BidiMarksAreBidiControls(t *testing.T) {
	for _, r := range []rune{'\u200e', '\u200f', '\u061c'} {
		s := "pay 100" + string(r) + " to 200"
		if err := CheckLine("reason", s); err == nil {
			t.Errorf("CheckLine let %U through", r)
		}
		if EscapeLine(s) == s {
			t.Errorf("EscapeLine prints %U as it is", r)
		}
	}
}
