package dataplane

import (
	"slices"
	"testing"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/schemas"
)

// FuzzRecordPath: whatever a provider or publisher sends, decoding,
// validation and projection never crash, and what leaves the hub holds
// only granted fields, as a JSON object.
func FuzzRecordPath(f *testing.F) {
	sch := schemas.MustParse(`{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string","maxLength":20},"tags":{"type":"array","items":{"type":"string"}}},"required":["id"]}`)
	for _, s := range []string{`{"id":1,"name":"a"}`, `{"id":1,"secret":"x"}`, `{"id":1e400}`, `[]`, `{"id":1,"id":2}`, `{"n\u0061me":"x","id":3}`, `{"id":9007199254740993}`, `{"id":1} x`, ""} {
		f.Add([]byte(s))
	}
	granted := []string{"id", "name"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := decodeObject(raw, 1<<20)
		if err != nil {
			return
		}
		if sch.Validate(rec) != nil {
			return
		}
		out, err := projectRaw(raw, rec, granted)
		if err != nil {
			return
		}
		back, err := decodeObject(out, 1<<20)
		if err != nil {
			t.Fatalf("projection %q of %q is not a JSON object: %v", out, raw, err)
		}
		for k := range back {
			if !slices.Contains(granted, k) {
				t.Fatalf("projection of %q leaks field %q", raw, k)
			}
		}
	})
}

func FuzzFrames(f *testing.F) {
	f.Add(encodeBatch("b1", [][]byte{[]byte(`{"a":1}`), nil}))
	f.Add(Result{Error: "e", NextToken: "n", Records: [][]byte{[]byte("{}")}}.encode())
	f.Add([]byte("XB1\x01"))
	f.Add((Call{Dataset: "a.bb", Fields: []string{"x"}, Limit: 3, Filters: []vocab.Filter{{Field: "x", Op: vocab.OpIn, Value: []any{"a"}}}}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		// Decoding never crashes; what decodes re-encodes to a frame that
		// decodes to the same thing (varint encodings may differ).
		if id, recs, err := decodeBatch(b); err == nil {
			id2, recs2, err := decodeBatch(encodeBatch(id, recs))
			if err != nil || id2 != id || len(recs2) != len(recs) {
				t.Fatalf("batch frame does not round-trip: %v", err)
			}
			for i := range recs {
				if string(recs[i]) != string(recs2[i]) {
					t.Fatalf("record %d changed", i)
				}
			}
		}
		if r, err := decodeResult(b); err == nil {
			if enc := r.encode(); r.size() != len(enc) {
				t.Fatalf("result size %d, encoded %d bytes", r.size(), len(enc))
			}
		}
		if c, err := decodeCall(b); err == nil {
			c2, err := decodeCall(c.encode())
			if err != nil || c2.Dataset != c.Dataset || len(c2.Filters) != len(c.Filters) || len(c2.Fields) != len(c.Fields) {
				t.Fatalf("call frame does not round-trip: %v", err)
			}
			for i := range c.Filters {
				if c.Filters[i].String() != c2.Filters[i].String() {
					t.Fatalf("filter %d: %s became %s", i, c.Filters[i], c2.Filters[i])
				}
			}
		}
	})
}
