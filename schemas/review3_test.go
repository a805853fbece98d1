package schemas

import (
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// TestReview3FieldNamesHoldControls: a dataset's fields are its schema's
// top-level property names, and no rule applies to them: a department's
// officer registers a schema whose property name holds ESC (written
// "\u001b" in the JSON), and every department that reads the catalog
// gets it raw from `xhub catalog show` (cmd/xhub/catalog.go: f.Name) and
// `xhub schema show` (cmd/xhub/schema.go: f.Name, and the schema text,
// whose C1 and bidi characters encoding/json leaves raw).
func TestReview3FieldNamesHoldControls(t *testing.T) {
	for _, doc := range []string{
		`{"type":"object","properties":{"id\u001b[2J\u001b[Hstatus: retired":{"type":"string"}}}`,
		`{"type":"object","properties":{"n\u009b31m":{"type":"string"}}}`,
		`{"type":"object","properties":{"n":{"type":"string","description":"ok\u202eevil"}}}`,
	} {
		s, err := Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		err = s.CheckFields()
		if vocab.KindOf(err) != vocab.KindInvalid || strings.ContainsAny(err.Error(), "\x1b\u009b\u202e") {
			t.Errorf("%s: %v, want invalid (the refusal itself escaped)", doc, err)
		}
	}
	ok := MustParse(`{"type":"object","properties":{"病例":{"type":"string","description":"one line\nand another"}}}`)
	if err := ok.CheckFields(); err != nil {
		t.Errorf("plain fields refused: %v", err)
	}
}

// TestReview3WithheldReasonHoldsRawKey: a provider's record whose nested
// key holds ESC fails the schema, and the reason the consumer is told
// (query.go: "fails the schema: "+err.Error(), printed raw on stderr by
// `xhub query`, cmd/xhub/data.go) holds the key raw in its JSON pointer:
// a hostile provider writes escape sequences into a grantee's terminal.
// (Values are quoted by the validator; pointers are not.)
func TestReview3WithheldReasonHoldsRawKey(t *testing.T) {
	s, err := Parse([]byte(`{"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"string"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := DecodeRecord([]byte(`{"m":{"\u001b]0;owned\u0007\u001b[2J":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Validate(rec)
	if err == nil {
		t.Fatal("valid")
	}
	if strings.ContainsAny(err.Error(), "\x1b\x07") {
		t.Errorf("the consumer's withheld reason holds raw controls: %q", err.Error())
	}
}
