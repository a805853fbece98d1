package keyspace

import (
	"strings"
	"testing"
)

// TestSpaces: no prefix is the start of another (nor the same as
// another), so a scan of one keyspace reads only its own keys; each has
// an owner and says what it holds.
func TestSpaces(t *testing.T) {
	for i, a := range Spaces {
		if a.Prefix == "" || !strings.HasSuffix(string(a.Prefix), "/") || a.Owner == "" || a.Holds == "" {
			t.Errorf("keyspace %+v: a prefix ends in /, and names its owner and what it holds", a)
		}
		for j, b := range Spaces {
			if i != j && strings.HasPrefix(string(b.Prefix), string(a.Prefix)) {
				t.Errorf("prefix %q (%s) is the start of %q (%s)", a.Prefix, a.Owner, b.Prefix, b.Owner)
			}
		}
	}
	if s, ok := Of(FormatKey); !ok || s.Prefix != Meta {
		t.Errorf("the format key %q is not under %q", FormatKey, Meta)
	}
}
