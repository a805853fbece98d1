package vocab

import (
	"encoding/json"
	"math/big"
	"runtime"
	"strings"
	"testing"
)

var testFields = []Field{{Name: "age", Type: "integer"}, {Name: "name", Type: "string"}, {Name: "score", Type: "number|null"}, {Name: "ok", Type: "boolean"}}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String() or error substring
		wantErr bool
	}{
		{"age>=18", `age >= "18"`, false}, // raw 18 decodes as number: see below
		{"name=Li Wei", `name = "Li Wei"`, false},
		{`name in ["a","b"]`, `name in ["a","b"]`, false},
		{"name prefix Li", `name prefix "Li"`, false},
		{"age != 3", `age != 3`, false},
		{"age", "no operator", true},
		{"=3", "want <field> <op> <value>", true},
		{"age>=", "no value", true},
		{"age in 3", "needs a JSON array", true},
		{"age prefix 3", "prefix needs a string", true},
		{"age < true", "needs a number or a string", true},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.in)
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseFilter(%q) = %v, %v; want error with %q", tt.in, f, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tt.in, err)
			continue
		}
		if tt.in == "age>=18" {
			if f.String() != "age >= 18" {
				t.Errorf("age>=18 parsed as %s", f)
			}
			continue
		}
		if f.String() != tt.want {
			t.Errorf("ParseFilter(%q) = %s, want %s", tt.in, f, tt.want)
		}
	}
}

func TestFilterValidateAndMatch(t *testing.T) {
	rec := map[string]any{}
	for k, v := range map[string]string{"age": "41", "name": `"Li Wei"`, "score": "null", "ok": "true"} {
		rec[k], _ = decodeValue([]byte(v))
	}
	tests := []struct {
		in    string
		valid string // "" or error substring
		match bool
	}{
		{"age=41", "", true},
		{"age=41.0", "", true},
		{"age>40", "", true},
		{"age<=40", "", false},
		{"age=4.5", "does not fit", false},
		{"age=abc", "does not fit", false},
		{`name in ["Li Wei","x"]`, "", true},
		{"name prefix Li", "", true},
		{"name prefix Wei", "", false},
		{"score=null", "", true},
		{"ok=true", "", true},
		{"ok!=true", "", false},
		{"missing=1", "not a field", false},
		{"age prefix x", "does not fit", false},
		{"ok prefix x", "does not fit", false},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		err = f.Validate(testFields)
		if tt.valid != "" {
			if err == nil || !strings.Contains(err.Error(), tt.valid) {
				t.Errorf("%s: Validate = %v, want %q", tt.in, err, tt.valid)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got := f.Match(rec); got != tt.match {
			t.Errorf("%s: Match = %v, want %v", tt.in, got, tt.match)
		}
	}
}

// FuzzParseFilter: no input crashes the parser or the matcher, and a
// parsed filter re-parses from its String form to the same filter.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"age>=18", "name=Li", `v in ["a",1,null]`, "n prefix x", "a!=", "a<=b", "ä=ö", `x={"a":[1,2]}`, "a in []"} {
		f.Add(s)
	}
	rec := map[string]any{"age": nil}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFilter(s)
		if err != nil {
			return
		}
		_ = fl.Validate(testFields)
		rec[fl.Field] = fl.Value
		_ = fl.Match(rec)
		again, err := ParseFilter(fl.String())
		if err != nil || again.String() != fl.String() {
			t.Fatalf("%q → %s → %v, %v", s, fl, again, err)
		}
	})
}

// TestMistypedOperators: 'vaccine==MMR' is refused naming what was typed,
// not run as a comparison with "=MMR" that matches nothing.
func TestMistypedOperators(t *testing.T) {
	for in, typed := range map[string]string{"vaccine==MMR": `"=="`, "age=>5": `"=>"`, "age<<5": `"<<"`, "name=~^A": `"=~"`, "a!==b": `"!=="`} {
		_, err := ParseFilter(in)
		if err == nil || !strings.Contains(err.Error(), typed+" is not an operator") || !strings.Contains(err.Error(), "= != < <= > >= in prefix") {
			t.Errorf("%s: %v", in, err)
		}
	}
	f, err := ParseFilter(`name="=x"`)
	if err != nil || f.Value != "=x" {
		t.Fatalf(`name="=x": %+v %v`, f, err)
	}
}

// TestFilterNumberBounds: a number beyond the bound on number texts is
// refused when the filter is parsed or checked, naming the filter and the
// bound; at the bound it is accepted.
func TestFilterNumberBounds(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" or error substring
	}{
		{"age>=1e400", ""},
		{"age>=1e999999", "filter age >=: number 1e999999 has the exponent 999999, beyond the bound of ±400"},
		{"age=-1e-401", "beyond the bound of ±400"},
		{`age in [1, 2, 3e999999]`, "filter age in: number 3e999999"},
		{"age<" + strings.Repeat("1", 101), "has 101 digits, more than the bound of 100"},
		{`age={"a":[1e999999]}`, "filter age =: number 1e999999"},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.in)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%.40s: %v", tt.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%.40s: ParseFilter = %v, %v; want error with %q", tt.in, f, err, tt.want)
		}
	}
	// A filter made from the wire (DecodeFilterValue) is held to the same
	// bound by Validate and Compile.
	v, err := DecodeFilterValue([]byte(`[1, 1e999999]`))
	if err != nil {
		t.Fatal(err)
	}
	f := Filter{Field: "age", Op: OpIn, Value: v}
	for name, err := range map[string]error{"Validate": f.Validate(testFields), "Check": f.Check()} {
		if err == nil || !strings.Contains(err.Error(), "±400") {
			t.Errorf("%s = %v, want the bound named", name, err)
		}
	}
	if _, err := f.Compile(); err == nil {
		t.Error("Compile accepted 1e999999")
	}
}

// TestMatchDoesNotExpand: a record may carry any number (a provider's
// answer, a file): matching it against a filter compares digits and
// allocates next to nothing, where math/big would make a 3.3-million-bit
// integer (about 400 KB) of 1e999999 for every record.
func TestMatchDoesNotExpand(t *testing.T) {
	tests := []struct {
		filter, rec string
		match       bool
	}{
		{"n > 5", "1e999999", true},
		{"n < 5", "1e999999", false},
		{"n >= 1e400", "1e999999", true},
		{"n = 100", "1e2", true},
		{"n = 1", "1.0", true},
		{"n = 0", "-0", true},
		{"n > 12345678901234567889", "12345678901234567890", true},
		{"n < 12345678901234567889", "12345678901234567890", false},
		{"n in [1, 2, 1e2]", "100.000", true},
		{"n in [1, 2, 3]", "1e999999", false},
		{"n != 7", "-1e-999999", true},
		{"n > 0", "-1e-999999", false},
		{"n = \"1e999999\"", "1e999999", false},
	}
	for _, tt := range tests {
		f, err := ParseFilter(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		m, err := f.Compile()
		if err != nil {
			t.Fatal(err)
		}
		rec := map[string]any{"n": json.Number(tt.rec)}
		if got := m.Match(rec); got != tt.match {
			t.Errorf("%s on n=%s: Match = %v, want %v", tt.filter, tt.rec, got, tt.match)
		}
		if got := f.Match(rec); got != tt.match {
			t.Errorf("%s on n=%s: Filter.Match = %v, want %v", tt.filter, tt.rec, got, tt.match)
		}
		const runs = 50
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			m.Match(rec)
		}
		runtime.ReadMemStats(&after)
		if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 256 {
			t.Errorf("%s on n=%s: %d bytes allocated a match, want next to none", tt.filter, tt.rec, perRun)
		}
	}
}

// FuzzMatchNumbers is differential: on numbers within the bound, a filter
// n OP a matches the record {"n": b} exactly when math/big's comparison of
// b with a says so; "integer" fits exactly the numbers big.Rat finds to be
// integers.
func FuzzMatchNumbers(f *testing.F) {
	for _, p := range [][2]string{{"1e2", "100"}, {"1.0", "1"}, {"-0", "0"}, {"12345678901234567890", "12345678901234567889"}, {"0.001", "1e-3"}, {"-5.5e1", "-55"}, {"7", "7.0000001"}, {"1e400", "9.99e399"}, {"4.5", "45e-1"}} {
		f.Add(p[0], p[1])
	}
	ops := []Op{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe}
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a) > 60 || len(b) > 60 || CheckNumber(a) != nil || CheckNumber(b) != nil {
			return // math/big would expand a large exponent for a long time
		}
		ra, ok1 := new(big.Rat).SetString(a)
		rb, ok2 := new(big.Rat).SetString(b)
		if !ok1 || !ok2 || !json.Valid([]byte(a)) || !json.Valid([]byte(b)) {
			return
		}
		va, err := decodeValue([]byte(a))
		if _, isNum := va.(json.Number); err != nil || !isNum {
			return
		}
		vb, err := decodeValue([]byte(b))
		if _, isNum := vb.(json.Number); err != nil || !isNum {
			return
		}
		c := rb.Cmp(ra)
		want := map[Op]bool{OpEq: c == 0, OpNe: c != 0, OpLt: c < 0, OpLe: c <= 0, OpGt: c > 0, OpGe: c >= 0}
		rec := map[string]any{"age": vb}
		for _, op := range ops {
			fl := Filter{Field: "age", Op: op, Value: va}
			m, err := fl.Compile()
			if err != nil {
				t.Fatalf("%s within the bound refused: %v", fl, err)
			}
			if got := m.Match(rec); got != want[op] {
				t.Fatalf("age %s %s on age=%s: Match = %v, big.Rat says %v", op, a, b, got, want[op])
			}
		}
		if got := (Filter{Field: "age", Op: OpEq, Value: va}).Validate(testFields) == nil; got != ra.IsInt() {
			t.Fatalf("%s fits integer: %v, big.Rat says IsInt %v", a, got, ra.IsInt())
		}
	})
}
