package ledger

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func testSeal() AuditSeal {
	return AuditSeal{
		Dataset: "health.vaccinations", Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Until: time.Date(2026, 12, 1, 8, 30, 0, 123456789, time.UTC), Entries: 3, LastHash: ChainHash(ZeroChainHash, []byte(`{}`)),
		ExportedBy: "spiffe://xhub/dept/health/officer/wang", ExportedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
		Head: Tree{N: 42},
	}
}

// TestAuditSeal: a seal opens with its key and no other; an edited text,
// a tree head and a seal are never taken for one another.
func TestAuditSeal(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "xhub-ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	_, otherV, _ := note.GenerateKey(rand.Reader, "xhub-ledger")
	s := testSeal()
	msg, err := SignAuditSeal(s, signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenAuditSeal(msg, vkey)
	if err != nil {
		t.Fatal(err)
	}
	if got.Format() != s.Format() || !got.Until.Equal(s.Until) || got.Dept != "" || got.Dataset != s.Dataset {
		t.Fatalf("round trip:\n%s\nwant\n%s", got.Format(), s.Format())
	}
	if _, err := OpenAuditSeal(msg, otherV); !errors.Is(err, ErrSealSignature) {
		t.Fatalf("another key: %v", err)
	}
	edited := strings.Replace(string(msg), "entries 3", "entries 2", 1)
	if _, err := OpenAuditSeal([]byte(edited), vkey); !errors.Is(err, ErrSealSignature) {
		t.Fatalf("edited text: %v", err)
	}
	head, _ := SignHead(Tree{N: 3}, signer)
	if _, err := OpenAuditSeal(head, vkey); !errors.Is(err, ErrNotASeal) {
		t.Fatalf("a tree head read as a seal: %v", err)
	}
	if _, err := OpenHead(msg, vkey); err == nil {
		t.Fatal("a seal read as a tree head")
	}
}

// FuzzParseAuditSeal: whatever it accepts, it formats back to the same
// text (one form per seal), and it never panics.
func FuzzParseAuditSeal(f *testing.F) {
	f.Add(testSeal().Format())
	f.Add(strings.Replace(testSeal().Format(), "entries 3", "entries 03", 1))
	f.Add("xhub audit export v1\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseAuditSeal(text)
		if err != nil {
			return
		}
		if s.Format() != text {
			t.Fatalf("accepted %q, which formats as %q", text, s.Format())
		}
	})
}
