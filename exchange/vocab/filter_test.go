package vocab

import (
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/catalog"
)

var testFields = []catalog.Field{{Name: "age", Type: "integer"}, {Name: "name", Type: "string"}, {Name: "score", Type: "number|null"}, {Name: "ok", Type: "boolean"}}

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
