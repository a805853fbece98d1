package ledger

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestEntryRoundTrip(t *testing.T) {
	e, err := New(7, LeafHash([]byte("prev")), time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.FixedZone("x", 3600)),
		"spiffe://xhub/dept/health/officer/a", "dept.added", "health", map[string]any{"z": 1, "a": "ü<>&"})
	if err != nil {
		t.Fatal(err)
	}
	raw := e.Marshal()
	got, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), raw) || got.Seq != 7 || got.Time.Nanosecond() != 123456000 {
		t.Fatalf("round trip: %s", raw)
	}
	if !strings.Contains(string(raw), `"body":{"a":"ü\u003c\u003e\u0026","z":1}`) {
		t.Fatalf("body not canonical: %s", raw)
	}
	// Whitespace or reordering makes it non-canonical: a different leaf.
	spaced := bytes.Replace(raw, []byte(`"seq":7`), []byte(`"seq": 7`), 1)
	if _, err := Parse(spaced); err == nil {
		t.Fatal("non-canonical entry accepted")
	}
}

func FuzzParse(f *testing.F) {
	e, _ := New(1, Hash{}, time.Unix(0, 0), "a", "k", "s", map[string]int{"x": 1})
	f.Add(e.Marshal())
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"seq":2,"time":"2026-01-01T00:00:00Z","actor":"","kind":"","subject":"","prev":"AAAA","body":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Parse(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Marshal(), raw) {
			t.Fatalf("accepted non-canonical bytes %q", raw)
		}
	})
}
