package schemas

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

func TestRestrict(t *testing.T) {
	s := MustParse(`{"type":"object",
	  "properties":{"id":{"type":"integer"},"ward":{"$ref":"#/$defs/ward"},"dose":{"type":"integer","maximum":5}},
	  "required":["id","ward","dose"],
	  "$defs":{"ward":{"enum":["north","south"]}},
	  "dependentRequired":{"id":["dose"]},
	  "minProperties":3}`)
	tests := []struct {
		name   string
		fields []string
		rec    string
		want   []RecordProblem
	}{
		{"granted fields valid", []string{"id", "ward"}, `{"id":1,"ward":"north"}`, nil},
		{"required cut to the fields", []string{"id"}, `{"id":1}`, nil},
		{"granted field invalid", []string{"id", "ward"}, `{"id":1,"ward":"east"}`, []RecordProblem{{"/ward", "value must be one of 'north', 'south'"}}},
		{"granted required missing", []string{"id", "ward"}, `{"id":1}`, []RecordProblem{{"/", "missing property 'ward'"}}},
		{"whole schema", []string{"dose", "id", "ward"}, `{"id":1,"ward":"north","dose":9}`, []RecordProblem{{"/dose", "maximum: got 9, want 5"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Restrict(tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			v, err := DecodeRecord([]byte(tc.rec))
			if err != nil {
				t.Fatal(err)
			}
			var got []RecordProblem
			if err := r.Validate(v); err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("not a *ValidationError: %T %v", err, err)
				}
				got = ve.Problems
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("(-want +got)\n%s", d)
			}
		})
	}
	// The cache is bounded: ever new field sets do not grow it.
	for i := range 3 * maxRestricted {
		if _, err := s.Restrict([]string{"id", string(rune('a' + i%26)), string(rune('A' + i/26))}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.restricted.m); n > maxRestricted {
		t.Fatalf("restricted cache holds %d schemas, bound %d", n, maxRestricted)
	}
}

func TestRefusedSchemas(t *testing.T) {
	tests := []struct {
		name, schema, want string
	}{
		{"invalid UTF-8", "{\"type\":\"object\",\"title\":\"caf\xe9\"}", "not valid UTF-8 (byte 29 is 0xe9)"},
		{"root refers to itself", `{"$ref":"#"}`, "$ref cycle  → "},
		{"two definitions refer to each other", `{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"allOf":[{"$ref":"#/$defs/a"}]}},"properties":{"x":{"$ref":"#/$defs/a"}}}`, "$ref cycle /$defs/a → /$defs/b → /$defs/b/allOf/0 → /$defs/a"},
		{"property refers to itself", `{"properties":{"x":{"not":{"$ref":"#/properties/x"}}}}`, "$ref cycle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.schema))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	// Recursion that moves into the value is fine: a tree of nodes.
	if _, err := Parse([]byte(`{"$defs":{"node":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}`)); err != nil {
		t.Fatalf("recursive tree schema: %v", err)
	}
	if _, err := DecodeRecord([]byte("{\"name\":\"\xff\xfe\"}")); err == nil || !strings.Contains(err.Error(), "byte 9 is 0xff") {
		t.Fatalf("record with invalid UTF-8: %v", err)
	}
}

// TestNumberBounds: a record's number beyond the bound on number texts is
// refused as it is decoded (the validator would expand it: 1e999999 is a
// 3.3-million-bit integer to check "type": "integer"), as is a schema's;
// a stored record decodes whatever its numbers.
func TestNumberBounds(t *testing.T) {
	for rec, want := range map[string]string{
		`{"n": 1e999999}`:                         "at offset 6: number 1e999999 has the exponent 999999, beyond the bound of ±400",
		`{"a": [1, {"b": -2e-401}]}`:              "at offset 16: number -2e-401 has the exponent -401",
		`{"n": ` + strings.Repeat("1", 101) + `}`: "has 101 digits, more than the bound of 100",
		`{"n": 1e400, "m": -0.5e-400}`:            "",
	} {
		_, err := DecodeRecord([]byte(rec))
		var be *vocab.NumberBoundError
		switch {
		case want == "" && err != nil:
			t.Errorf("%.30s: %v", rec, err)
		case want != "" && (!errors.As(err, &be) || !strings.Contains(err.Error(), want)):
			t.Errorf("%.30s: DecodeRecord = %v, want a bound error with %q", rec, err, want)
		}
		if _, err := DecodeStoredRecord([]byte(rec)); err != nil {
			t.Errorf("%.30s: DecodeStoredRecord = %v", rec, err)
		}
	}
	for doc, want := range map[string]string{
		`{"type":"object","properties":{"n":{"multipleOf":1e-999999}}}`: "/properties/n/multipleOf: number 1e-999999 has the exponent -999999",
		`{"enum":[1, 2, 3e401]}`:                                 "/enum/2: number 3e401",
		`{"type":"object","properties":{"n":{"maximum":1e400}}}`: "",
	} {
		_, err := Parse([]byte(doc))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", doc, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: Parse = %v, want %q", doc, err, want)
		}
	}
}
