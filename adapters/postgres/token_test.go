package postgres

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseToken: whatever reaches the adapter as a page token, reading
// it never crashes, and it binds only a value of the key's kind (a
// number for a numeric key, a string otherwise), or is refused with
// ErrPageToken.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{`"110101198512124321"`, `3`, `9007199254740993`, `1.5`, `1e999`, `-0`, `"3"`, `{"a":1}`, `[1]`, `null`, `true`, `"a" "b"`, `"a"x`, `"\u0000"`, ``, `"`} {
		f.Add(s)
	}
	num, text := &Source{key: "id", numericKey: true}, &Source{key: "national_id"}
	f.Fuzz(func(t *testing.T, tok string) {
		for _, s := range []*Source{num, text} {
			v, err := s.parseToken(tok)
			if err != nil {
				if !errors.Is(err, ErrPageToken) {
					t.Fatalf("%q refused with %v", tok, err)
				}
				continue
			}
			switch v.(type) {
			case int64, float64, string:
			default:
				t.Fatalf("%q bound as %T", tok, v)
			}
			if _, isString := v.(string); isString == s.numericKey {
				var back any
				if json.Unmarshal([]byte(tok), &back) != nil {
					t.Fatalf("%q accepted but is not JSON", tok)
				}
				if _, ok := back.(string); ok == s.numericKey {
					t.Fatalf("%q bound as %T for a numeric key %v", tok, v, s.numericKey)
				}
			}
		}
	})
}
