package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// stdDecode is the reference: encoding/json's Decoder with UseNumber,
// exactly one value.
func stdDecode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	for _, c := range raw[dec.InputOffset():] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return nil, errors.New("trailing data after the JSON value")
		}
	}
	return v, nil
}

// FuzzDecodeAgrees is the differential test of the fast record decoder
// against encoding/json: same verdict, same value, on every input.
func FuzzDecodeAgrees(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[true,false,null,"x"],"c":{"d":-1.5e+10}}`, `{"a":1,"a":2}`, `"\u00e9\ud800"`,
		"\"\xff\"", `{"a":01}`, `[1,]`, `{"a" 1}`, ` {} `, `{}x`, `-`, `1.`, `1e`, `0.5E-3`, `"\t"`, "\"a\tb\"", `{"\\u0061":1}`,
		`9007199254740993`, `[[[[]]]]`, `nul`, `"`, `{"a":"b\"c"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, werr := stdDecode(raw)
		got, gerr := decodeFast(raw)
		var dup *DuplicateKeyError
		if werr == nil && errors.As(gerr, &dup) {
			// Refused where encoding/json keeps the last copy: the
			// token scan must find the same repeated member.
			if ref := scanDuplicate(raw); ref == nil || ref.Pointer != dup.Pointer || ref.Key != dup.Key {
				t.Fatalf("%q: fast refuses %v, token scan finds %v", raw, dup, ref)
			}
			return
		}
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: encoding/json err=%v, fast err=%v", raw, werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("%q: encoding/json %#v, fast %#v", raw, want, got)
		}
	})
}

// FuzzDecodeBounded: the bounded decoder (DecodeRecord's) agrees with the
// fast one, but for a number beyond the bound: then it says so, and the
// fast decoder's value holds such a number (or the fast decoder fails
// further on).
func FuzzDecodeBounded(f *testing.F) {
	for _, s := range []string{`{"a":1e400,"b":-0.5e-400}`, `{"a":1e401}`, `[1,2,{"x":[3e999999]}]`, `{"a":"1e999999"}`, `1E+0400`, `-0.000e-9`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, werr := decodeFast(raw)
		got, gerr := decodeBounded(raw)
		var be *vocab.NumberBoundError
		switch {
		case errors.As(gerr, &be):
			if werr == nil && !holdsUnbounded(want) {
				t.Fatalf("%q: bounded err=%v, fast err=%v value %#v", raw, gerr, werr, want)
			}
		case (werr == nil) != (gerr == nil):
			t.Fatalf("%q: fast err=%v, bounded err=%v", raw, werr, gerr)
		case werr == nil && (!reflect.DeepEqual(want, got) || holdsUnbounded(got)):
			t.Fatalf("%q: fast %#v, bounded %#v", raw, want, got)
		}
	})
}

func holdsUnbounded(v any) bool {
	switch v := v.(type) {
	case json.Number:
		return vocab.CheckNumber(v.String()) != nil
	case []any:
		for _, x := range v {
			if holdsUnbounded(x) {
				return true
			}
		}
	case map[string]any:
		for _, x := range v {
			if holdsUnbounded(x) {
				return true
			}
		}
	}
	return false
}

func TestDecodeNestingLimitAgrees(t *testing.T) {
	for _, n := range []int{9999, 10000, 10001} {
		raw := append(bytes.Repeat([]byte("["), n), bytes.Repeat([]byte("]"), n)...)
		_, werr := stdDecode(raw)
		_, gerr := decodeFast(raw)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("depth %d: encoding/json err=%v, fast err=%v", n, werr, gerr)
		}
	}
}

// scanDuplicate is the reference duplicate-key check: a token scan with
// encoding/json's Decoder, reporting a repeated member when its value
// ends (as decodeFast does), or nil.
func scanDuplicate(raw []byte) *DuplicateKeyError {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var found *DuplicateKeyError
	var value func(path []string) bool
	value = func(path []string) bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return false
				}
				k := kt.(string)
				at := append(slices.Clone(path), escape(k))
				if !value(at) {
					return false
				}
				if seen[k] {
					found = &DuplicateKeyError{Pointer: "/" + strings.Join(at, "/"), Key: k}
					return false
				}
				seen[k] = true
			}
			_, err := dec.Token()
			return err == nil
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if !value(append(slices.Clone(path), strconv.Itoa(i))) {
					return false
				}
			}
			_, err := dec.Token()
			return err == nil
		}
		return true
	}
	value(nil)
	return found
}

// FuzzDuplicateKeys: decodeFast refuses a document exactly when the
// reference token scan finds a repeated member (on documents
// encoding/json accepts), and names the same one.
func FuzzDuplicateKeys(f *testing.F) {
	for _, s := range []string{`{"district":"<img src=x>","district":"north","beds":"not-a-number","beds":5}`,
		`{"a":{"b":1,"b":2}}`, `[{"x":1},{"x":1,"x":1}]`, `{"a":1,"\u0061":2}`, `{"a/b":1,"a~b":{"c":[0,{"d":1,"d":2}]}}`,
		`{"a":1,"a":{"b":1,"b":2}}`, `{"":1,"":2}`, `{"a":1,"b":2}`, `{"é":1,"e\u0301":2,"\u00e9":3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := stdDecode(raw); err != nil {
			return
		}
		_, err := decodeFast(raw)
		ref := scanDuplicate(raw)
		var dup *DuplicateKeyError
		switch {
		case ref == nil && err != nil:
			t.Fatalf("%q: no repeated key, yet refused: %v", raw, err)
		case ref != nil && !errors.As(err, &dup):
			t.Fatalf("%q: %s repeated, yet decoded (err %v)", raw, ref.Pointer, err)
		case ref != nil && (dup.Pointer != ref.Pointer || dup.Key != ref.Key):
			t.Fatalf("%q: fast names %s %q, token scan %s %q", raw, dup.Pointer, dup.Key, ref.Pointer, ref.Key)
		}
	})
}

func TestDuplicateKeys(t *testing.T) {
	tests := []struct {
		name, doc, pointer, key string
	}{
		{"the attack", `{"district":"<img src=x>","district":"north","beds":"not-a-number","beds":5}`, "/district", "district"},
		{"nested", `{"address":{"city":"a","zip":"1","city":"b"}}`, "/address/city", "city"},
		{"in an array", `{"visits":[{"d":1},{"d":1,"d":2}]}`, "/visits/1/d", "d"},
		{"same key by escape", `{"a":1,"\u0061":2}`, "/a", "a"},
		{"pointer escaped", `{"a/b":{"x~y":1,"x~y":2}}`, "/a~1b/x~0y", "x~y"},
		{"empty key", `{"":1,"":2}`, "/", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRecord([]byte(tc.doc))
			var dup *DuplicateKeyError
			if !errors.As(err, &dup) {
				t.Fatalf("got %v, want a *DuplicateKeyError", err)
			}
			if dup.Pointer != tc.pointer || dup.Key != tc.key {
				t.Fatalf("got %s %q, want %s %q", dup.Pointer, dup.Key, tc.pointer, tc.key)
			}
			if !strings.Contains(err.Error(), tc.pointer) || !strings.Contains(err.Error(), "duplicate key") {
				t.Fatalf("error does not name the pointer: %v", err)
			}
		})
	}
	// Keys that differ (even if they look alike once normalised) are fine.
	if _, err := DecodeRecord([]byte(`{"é":1,"e\u0301":2,"a":{"a":{"a":1}}}`)); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDuplicateCheck: the cost of refusing repeated keys, against the
// same decoder keeping the last copy, and encoding/json.
func BenchmarkDuplicateCheck(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"id":9007199254740993,"ward":"north","tags":[`)
	for i := range 40 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"k%d":"v","n":%d,"ok":true,"sub":{"a":1,"b":"x","c":null}}`, i, i)
	}
	sb.WriteString(`],"name":"Zoë 张","age":34}`)
	rec := []byte(sb.String())
	b.Run("refuse", func(b *testing.B) {
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			d := decoder{b: rec}
			if _, err := d.value(0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("last-wins", func(b *testing.B) {
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			d := decoder{b: rec, lastWins: true}
			if _, err := d.value(0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			if _, err := stdDecode(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
