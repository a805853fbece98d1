package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/xhub-gov/xhub/internal/jsonnum"
)

// The reference is decodeJSON: encoding/json's Decoder with UseNumber, as
// schemas themselves are still decoded.
var stdDecode = decodeJSON

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
		var be *jsonnum.BoundError
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
		return jsonnum.Check(v.String()) != nil
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
