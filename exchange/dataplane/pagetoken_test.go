package dataplane

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// The key and scope the seed corpus's valid token was sealed with.
var (
	testTokenKey   = bytes.Repeat([]byte{7}, PageTokenKeySize)
	testTokenScope = tokenScope{Consumer: "tax", Dataset: "health.people", Grants: []shares.GrantID{"g1"}, Fields: []string{"district"},
		Filters: []vocab.Filter{{Field: "district", Op: vocab.OpEq, Value: "north"}}}
)

func testSealer(t testing.TB) *tokenSealer {
	s, err := newTokenSealer(testTokenKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPageTokenScope: a token opens under the scope it was sealed for
// and no other, every sealed token has one length, and every refusal is
// the same error.
func TestPageTokenScope(t *testing.T) {
	s := testSealer(t)
	for _, tok := range []string{"1", `"110101198512124321"`, strings.Repeat("x", MaxProviderToken), "\x00"} {
		sealed, err := s.seal(testTokenScope, tok)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != SealedTokenLen {
			t.Fatalf("sealed %d bytes: %d characters, want %d", len(tok), len(sealed), SealedTokenLen)
		}
		got, err := s.open(testTokenScope, sealed)
		if err != nil || got != tok {
			t.Fatalf("open: %q %v, want %q", got, err, tok)
		}
		other := func(f func(*tokenScope)) tokenScope {
			sc := testTokenScope
			f(&sc)
			return sc
		}
		for name, sc := range map[string]tokenScope{
			"consumer":     other(func(s *tokenScope) { s.Consumer = "police" }),
			"dataset":      other(func(s *tokenScope) { s.Dataset = "health.people2" }),
			"grant":        other(func(s *tokenScope) { s.Grants = []shares.GrantID{"g2"} }),
			"no grant":     other(func(s *tokenScope) { s.Grants = nil }),
			"fields":       other(func(s *tokenScope) { s.Fields = []string{"district", "name"} }),
			"filter value": other(func(s *tokenScope) { s.Filters = []vocab.Filter{{Field: "district", Op: vocab.OpEq, Value: "south"}} }),
			"filter op":    other(func(s *tokenScope) { s.Filters = []vocab.Filter{{Field: "district", Op: vocab.OpNe, Value: "north"}} }),
			"no filter":    other(func(s *tokenScope) { s.Filters = nil }),
			// Length prefixes keep parts from sliding into each other.
			"parts shifted": other(func(s *tokenScope) { s.Consumer, s.Dataset = "taxh", "ealth.people" }),
		} {
			if _, err := s.open(sc, sealed); err == nil || err.Error() != errPageToken().Error() {
				t.Fatalf("opened under another %s: %v", name, err)
			}
		}
		other2, _ := newTokenSealer(bytes.Repeat([]byte{8}, PageTokenKeySize))
		if _, err := other2.open(testTokenScope, sealed); err == nil {
			t.Fatal("opened with another key")
		}
	}
	if _, err := s.seal(testTokenScope, strings.Repeat("x", MaxProviderToken+1)); err == nil {
		t.Fatal("a provider token beyond the bound was sealed")
	}
	if tok, err := s.seal(testTokenScope, ""); tok != "" || err != nil {
		t.Fatalf("the last page: %q %v", tok, err)
	}
	if tok, err := s.open(testTokenScope, ""); tok != "" || err != nil {
		t.Fatalf("the first page: %q %v", tok, err)
	}
}

// FuzzPageToken: whatever a consumer sends as a page token, opening it
// never crashes, refuses with the one error, and what opens (only what
// the hub sealed: the seed corpus holds one sealed with the test key)
// opens under its own scope alone and is a token a provider could give.
func FuzzPageToken(f *testing.F) {
	s := testSealer(f)
	valid, err := s.seal(testTokenScope, `"110101198512124321"`)
	if err != nil {
		f.Fatal(err)
	}
	for _, tok := range []string{valid, valid[:len(valid)-1] + "B", "3", `"3"`, "", "AAAA", strings.Repeat("A", SealedTokenLen), strings.Repeat("_", SealedTokenLen), "\xff\xfe"} {
		f.Add(tok)
	}
	refusal := errPageToken().Error()
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := s.open(testTokenScope, tok)
		if err != nil {
			if err.Error() != refusal {
				t.Fatalf("refused %q with %q, not the one refusal", tok, err)
			}
			return
		}
		if tok == "" {
			if got != "" {
				t.Fatalf("the empty token opened to %q", got)
			}
			return
		}
		if len(got) == 0 || len(got) > MaxProviderToken {
			t.Fatalf("%q opened to %d bytes", tok, len(got))
		}
		sc := testTokenScope
		sc.Consumer = "police"
		if _, err := s.open(sc, tok); err == nil {
			t.Fatalf("%q opened for another department", tok)
		}
	})
}
