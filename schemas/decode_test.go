package schemas

import (
	"bytes"
	"reflect"
	"testing"
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
