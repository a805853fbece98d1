package schemas

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	open1 = `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string","maxLength":100}},"required":["id"]}`
	// open1 plus an optional typed property.
	openAdd   = `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string","maxLength":100},"ward":{"type":"string"}},"required":["id"]}`
	closed1   = `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],"additionalProperties":false}`
	closedAdd = `{"type":"object","properties":{"id":{"type":"integer"},"ward":{"type":"string"}},"required":["id"],"additionalProperties":false}`
	idString  = `{"type":"object","properties":{"id":{"type":"string"},"name":{"type":"string","maxLength":100}},"required":["id"]}`
	idNumber  = `{"type":"object","properties":{"id":{"type":"number"},"name":{"type":"string","maxLength":100}},"required":["id"]}`
	nameReq   = `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string","maxLength":100}},"required":["id","name"]}`
	noReq     = `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string","maxLength":100}}}`
	short     = `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string","maxLength":50}},"required":["id"]}`
	enum1     = `{"type":"object","properties":{"v":{"enum":["MMR","DTaP"]}}}`
	enum2     = `{"type":"object","properties":{"v":{"enum":["MMR","DTaP","HPV"]}}}`
	min0      = `{"type":"object","properties":{"id":{"type":"integer","minimum":0},"name":{"type":"string","maxLength":100}},"required":["id"]}`
	pat1      = `{"type":"string","pattern":"^[0-9]+$"}`
	pat2      = `{"type":"string","pattern":"^[0-9a-f]+$"}`
	oneOf1    = `{"oneOf":[{"type":"string"},{"type":"integer"}]}`
	oneOf2    = `{"oneOf":[{"type":"string"},{"type":"boolean"}]}`
	ref1      = `{"type":"object","$defs":{"addr":{"type":"object","properties":{"zip":{"type":"string"}}}},"properties":{"home":{"$ref":"#/$defs/addr"}}}`
	ref2      = `{"type":"object","$defs":{"addr":{"type":"object","properties":{"zip":{"type":"integer"}}}},"properties":{"home":{"$ref":"#/$defs/addr"}}}`
	refSame   = `{"type":"object","$defs":{"a":{"type":"object","properties":{"zip":{"type":"string"}}}},"properties":{"home":{"$ref":"#/$defs/a"}}}`
	recursive = `{"$defs":{"node":{"type":"object","properties":{"next":{"$ref":"#/$defs/node"},"v":{"type":"integer"}}}},"$ref":"#/$defs/node"}`
	items1    = `{"type":"array","items":{"type":"integer"},"maxItems":10}`
	items2    = `{"type":"array","items":{"type":["integer","null"]},"maxItems":10}`
	tIntStr   = `{"type":"object","properties":{"a":{"type":"integer"}}}`
	tStr      = `{"type":"object","properties":{"a":{"type":"string"}}}`
	tStr5     = `{"type":"object","properties":{"a":{"type":"string","maxLength":5}}}`

	mult10       = `{"type":"integer","multipleOf":10}`
	mult5        = `{"type":"integer","multipleOf":5}`
	multHalf     = `{"type":"number","multipleOf":0.5}`
	multOneHalf  = `{"type":"number","multipleOf":1.5}`
	props1       = `{"type":"object","minProperties":1,"maxProperties":4}`
	props2       = `{"type":"object","minProperties":2,"maxProperties":4}`
	props3       = `{"type":"object","minProperties":1,"maxProperties":3}`
	noDeps       = `{"type":"object","properties":{"card":{"type":"string"},"expiry":{"type":"string"}}}`
	deps         = `{"type":"object","properties":{"card":{"type":"string"},"expiry":{"type":"string"}},"dependentRequired":{"card":["expiry"]}}`
	reqExpiry    = `{"type":"object","properties":{"card":{"type":"string"},"expiry":{"type":"string"}},"required":["expiry"]}`
	anyOf1       = `{"anyOf":[{"type":"string"},{"type":"integer"}]}`
	anyOf2       = `{"anyOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}`
	allOfMin     = `{"type":"integer","allOf":[{"minimum":0}]}`
	notString    = `{"not":{"type":"string"}}`
	notShort     = `{"type":"string","not":{"type":"string","maxLength":2}}`
	contains1    = `{"type":"array","contains":{"type":"integer"}}`
	contains2    = `{"type":"array","contains":{"type":"integer"},"minContains":2}`
	names1       = `{"type":"object","propertyNames":{"maxLength":5}}`
	names2       = `{"type":"object","propertyNames":{"maxLength":3}}`
	oneOf3       = `{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}`
	oneOfOverlap = `{"oneOf":[{"type":"integer"},{"type":"number"}]}`
	depSchema    = `{"type":"object","properties":{"card":{"type":"string"},"expiry":{"type":"string"}},"dependentSchemas":{"card":{"required":["expiry"]}}}`
	closedUneval = `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],"unevaluatedProperties":false}`
	patAdded     = `{"type":"object","patternProperties":{"^x":{"type":"string"}},"additionalProperties":false}`
	patNamed     = `{"type":"object","patternProperties":{"^x":{}},"properties":{"xy":{"type":"integer"}},"additionalProperties":false}`
	patOnly      = `{"type":"object","patternProperties":{"^x":{}},"additionalProperties":false}`
	prefixAdded  = `{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"}}`
	prefixNarrow = `{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer","minimum":0}}`
)

func TestCompatibility(t *testing.T) {
	addedOpen := `/properties/ward: property "ward" added with constraints, but the old schema's open content model allowed any value there (old data may carry it)`
	tests := []struct {
		name      string
		mode      Mode
		earlier   []string
		candidate string
		want      []string
	}{
		{"none allows anything", ModeNone, []string{open1}, idString, nil},
		{"first version", ModeFull, nil, open1, nil},
		{"identical is compatible", ModeFullTransitive, []string{open1}, open1, nil},

		{"add optional property: forward ok", ModeForward, []string{open1}, openAdd, nil},
		{"add optional property: backward refused (open model)", ModeBackward, []string{open1}, openAdd, []string{addedOpen + " (backward, against version 1)"}},
		{"add optional property: full refused", ModeFull, []string{open1}, openAdd, []string{addedOpen + " (backward, against version 1)"}},
		{"add property to closed schema: backward ok", ModeBackward, []string{closed1}, closedAdd, nil},
		{"add property to closed schema: forward refused", ModeForward, []string{closed1}, closedAdd,
			[]string{`/properties/ward: property "ward" added, but the old schema has additionalProperties: false, so old consumers refuse it (forward, against version 1)`}},
		{"remove property from open schema: forward refused", ModeForward, []string{openAdd}, open1,
			[]string{`/properties/ward: property "ward" removed, but the old schema constrains it and the new schema's open content model allows any value there (forward, against version 1)`}},

		{"type change: forward", ModeForward, []string{open1}, idString, []string{"/properties/id: type changed integer → string (forward, against version 1)"}},
		{"type change: backward", ModeBackward, []string{open1}, idString, []string{"/properties/id: type changed integer → string (backward, against version 1)"}},
		{"widen integer to number: backward ok", ModeBackward, []string{open1}, idNumber, nil},
		{"widen integer to number: forward refused", ModeForward, []string{open1}, idNumber, []string{"/properties/id: type changed integer → number (forward, against version 1)"}},
		{"nullable items: forward refused", ModeForward, []string{items1}, items2, []string{"/items: type changed integer → integer|null (forward, against version 1)"}},
		{"nullable items: backward ok", ModeBackward, []string{items1}, items2, nil},

		{"newly required: forward ok", ModeForward, []string{open1}, nameReq, nil},
		{"newly required: backward refused", ModeBackward, []string{open1}, nameReq, []string{`/required: property "name" is newly required (backward, against version 1)`}},
		{"no longer required: forward refused", ModeForward, []string{open1}, noReq, []string{`/required: property "id" is no longer required (forward, against version 1)`}},
		{"no longer required: backward ok", ModeBackward, []string{open1}, noReq, nil},

		{"enum value added: forward refused", ModeForward, []string{enum1}, enum2, []string{`/properties/v: enum value "HPV" added (forward, against version 1)`}},
		{"enum value added: backward ok", ModeBackward, []string{enum1}, enum2, nil},
		{"enum value removed: backward refused", ModeBackward, []string{enum2}, enum1, []string{`/properties/v: enum value "HPV" removed (backward, against version 1)`}},

		{"tighter maxLength: forward ok", ModeForward, []string{open1}, short, nil},
		{"tighter maxLength: backward refused", ModeBackward, []string{open1}, short, []string{"/properties/name: maxLength changed 100 → 50 (backward, against version 1)"}},
		{"minimum added: backward refused", ModeBackward, []string{open1}, min0, []string{"/properties/id: lower bound added: 0 (backward, against version 1)"}},
		{"minimum removed: forward refused", ModeForward, []string{min0}, open1, []string{"/properties/id: lower bound removed (was 0) (forward, against version 1)"}},
		{"pattern changed: full refused both ways", ModeFull, []string{pat1}, pat2, []string{
			`/: pattern changed "^[0-9]+$" → "^[0-9a-f]+$" (backward, against version 1)`,
			`/: pattern changed "^[0-9]+$" → "^[0-9a-f]+$" (forward, against version 1)`,
		}},

		{"unmodelled keyword changed: cannot prove", ModeForward, []string{names1}, names2, []string{
			`/: keyword "propertyNames" differs and cannot be proved compatible (the checker models type, properties, required, additionalProperties, enum, const, items, bounds, multipleOf, pattern, format, allOf, anyOf, not, dependentRequired, minProperties/maxProperties, contains bounds and local $ref) (forward, against version 1)`,
		}},
		{"oneOf branch replaced: forward refused", ModeForward, []string{oneOf1}, oneOf2, []string{
			`/: oneOf changed [{"type":"string"},{"type":"integer"}] → [{"type":"string"},{"type":"boolean"}]: no branch of the old schema accepts all of the new while the others, by their types, accept none of it (forward, against version 1)`,
		}},
		{"oneOf gains a disjoint branch: backward ok", ModeBackward, []string{oneOf1}, oneOf3, nil},
		{"plain type into oneOf: backward ok", ModeBackward, []string{`{"type":"integer"}`}, oneOf1, nil},
		{"into an overlapping oneOf: backward refused", ModeBackward, []string{`{"type":"integer"}`}, oneOfOverlap, []string{
			`/: oneOf added: [{"type":"integer"},{"type":"number"}]: no branch of the new schema accepts all of the old while the others, by their types, accept none of it (backward, against version 1)`,
		}},
		{"dependentSchemas added: backward refused", ModeBackward, []string{noDeps}, depSchema, []string{
			`/dependentSchemas/card: what the new schema requires when "card" is present cannot be proved of the old (backward, against version 1)`,
		}},
		{"dependentSchemas added: forward ok", ModeForward, []string{noDeps}, depSchema, nil},
		{"unevaluatedProperties false is additionalProperties false: full ok", ModeFull, []string{closed1}, closedUneval, nil},
		{"boolean into enum of both: full ok", ModeFull, []string{`{"type":"boolean"}`}, `{"enum":[true,false]}`, nil},
		{"enum value the type excludes: backward ok", ModeBackward, []string{`{"type":"integer","enum":[1,2,"x"]}`}, `{"enum":[1,2]}`, nil},
		{"local $ref followed", ModeForward, []string{ref1}, ref2, []string{"/properties/home/properties/zip: type changed string → integer (forward, against version 1)"}},
		{"local $ref renamed, same shape", ModeFull, []string{ref1}, refSame, nil},
		{"recursive $ref terminates", ModeFull, []string{recursive}, recursive, nil},

		// Keywords decided since issue 13, each in both directions.
		{"multipleOf 10 → 5: backward ok", ModeBackward, []string{mult10}, mult5, nil},
		{"multipleOf 10 → 5: forward refused", ModeForward, []string{mult10}, mult5, []string{"/: multipleOf changed 10 → 5: the new step is not a whole multiple of the old one (forward, against version 1)"}},
		{"multipleOf 0.5 → 1.5: forward ok", ModeForward, []string{multHalf}, multOneHalf, nil},
		{"multipleOf 0.5 → 1.5: backward refused", ModeBackward, []string{multHalf}, multOneHalf, []string{"/: multipleOf changed 0.5 → 1.5: the old step is not a whole multiple of the new one (backward, against version 1)"}},
		{"minProperties raised: forward ok", ModeForward, []string{props1}, props2, nil},
		{"minProperties raised: backward refused", ModeBackward, []string{props1}, props2, []string{"/: minProperties changed 1 → 2 (backward, against version 1)"}},
		{"maxProperties lowered: forward ok", ModeForward, []string{props1}, props3, nil},
		{"maxProperties lowered: backward refused", ModeBackward, []string{props1}, props3, []string{"/: maxProperties changed 4 → 3 (backward, against version 1)"}},
		{"dependentRequired added: forward ok", ModeForward, []string{noDeps}, deps, nil},
		{"dependentRequired added: backward refused", ModeBackward, []string{noDeps}, deps, []string{`/dependentRequired: property "card" newly requires "expiry" (backward, against version 1)`}},
		{"dependentRequired satisfied by required: backward ok", ModeBackward, []string{reqExpiry}, deps, nil},
		{"anyOf gains a branch: backward ok", ModeBackward, []string{anyOf1}, anyOf2, nil},
		{"anyOf gains a branch: forward refused", ModeForward, []string{anyOf1}, anyOf2, []string{`/: anyOf changed [{"type":"string"},{"type":"integer"}] → [{"type":"string"},{"type":"integer"},{"type":"boolean"}]: no branch of the old schema accepts all of the new (forward, against version 1)`}},
		{"plain type into anyOf: backward ok", ModeBackward, []string{`{"type":"string"}`}, anyOf1, nil},
		{"allOf added: forward ok", ModeForward, []string{`{"type":"integer"}`}, allOfMin, nil},
		{"allOf added: backward refused", ModeBackward, []string{`{"type":"integer"}`}, allOfMin, []string{"/: lower bound added: 0 (backward, against version 1)"}},
		{"into not of a disjoint type: forward ok", ModeForward, []string{notString}, `{"type":"integer"}`, nil},
		{"into not that may overlap: forward refused", ModeForward, []string{notShort}, `{"type":"string"}`, []string{`/: not {"maxLength":2,"type":"string"} cannot be proved: the new schema may accept what it excludes (forward, against version 1)`}},
		{"minContains raised: forward ok", ModeForward, []string{contains1}, contains2, nil},
		{"minContains raised: backward refused", ModeBackward, []string{contains1}, contains2, []string{"/: minContains changed 1 → 2 (backward, against version 1)"}},

		// Keywords that widen others (these were once proved wrongly).
		{"patternProperties added to a closed model: forward refused", ModeForward, []string{`{"type":"object","additionalProperties":false}`}, patAdded,
			[]string{`/: keyword "patternProperties" in the new schema changes what its additionalProperties covers; unless it is the same in both, this cannot be proved compatible (forward, against version 1)`}},
		{"named property dropped under the same pattern: forward refused", ModeForward, []string{patNamed}, patOnly,
			[]string{`/properties/xy: property "xy" is constrained by the old schema but only by a pattern of the new one, which allows more (forward, against version 1)`}},
		{"named property dropped under the same pattern: backward ok", ModeBackward, []string{patNamed}, patOnly, nil},
		{"prefixItems added before items: forward refused", ModeForward, []string{`{"type":"array","items":{"type":"integer"}}`}, prefixAdded,
			[]string{`/0: type changed integer → string (forward, against version 1)`}},
		{"prefix item added to an open tuple: forward ok", ModeForward, []string{`{"type":"array","prefixItems":[{"type":"string"}]}`}, `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}]}`, nil},
		{"prefix item added to an open tuple: backward refused", ModeBackward, []string{`{"type":"array","prefixItems":[{"type":"string"}]}`}, `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}]}`,
			[]string{"/1: type changed any → integer (backward, against version 1)"}},
		{"prefix item removed from a closed tuple: forward ok", ModeForward, []string{`{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`}, `{"type":"array","prefixItems":[{"type":"string"}],"items":false}`, nil},
		{"not narrowed: forward ok", ModeForward, []string{`{"not":{"type":["string","integer"]}}`}, `{"not":{"type":["string","integer","boolean"]}}`, nil},
		{"not narrowed: backward refused", ModeBackward, []string{`{"not":{"type":["string","integer"]}}`}, `{"not":{"type":["string","integer","boolean"]}}`,
			[]string{`/: not {"type":["string","integer","boolean"]} cannot be proved: the old schema may accept what it excludes (backward, against version 1)`}},
		{"oneOf into anyOf of the same branches: backward ok", ModeBackward, []string{oneOf1}, anyOf1, nil},
		{"same prefixItems, items narrowed: forward ok", ModeForward, []string{prefixAdded}, prefixNarrow, nil},
		{"uniqueItems added: forward ok", ModeForward, []string{`{"type":"array"}`}, `{"type":"array","uniqueItems":true}`, nil},
		{"uniqueItems added: backward refused", ModeBackward, []string{`{"type":"array"}`}, `{"type":"array","uniqueItems":true}`, []string{"/: uniqueItems added: old data may repeat items (backward, against version 1)"}},

		{"transitive checks every version", ModeForwardTransitive, []string{tIntStr, tStr}, tStr5, []string{"/properties/a: type changed integer → string (forward, against version 1)"}},
		{"non-transitive checks the latest only", ModeForward, []string{tIntStr, tStr}, tStr5, nil},
		{"backward transitive", ModeBackwardTransitive, []string{tStr, tIntStr}, tStr, []string{"/properties/a: type changed integer → string (backward, against version 2)"}},
		{"full transitive", ModeFullTransitive, []string{tStr5, tStr}, tStr, []string{"/properties/a: maxLength removed (was 5) (forward, against version 1)"}},
	}
	covered := map[Mode]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			covered[tt.mode] = true
			var earlier []*Schema
			for _, e := range tt.earlier {
				earlier = append(earlier, MustParse(e))
			}
			var got []string
			for _, p := range Check(tt.mode, earlier, MustParse(tt.candidate)) {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
	for _, m := range Modes {
		if !covered[m] {
			t.Errorf("mode %s has no case", m)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	deep := ""
	for range 40 {
		deep += `{"items":`
	}
	deep += `{}`
	for range 40 {
		deep += `}`
	}
	tests := []struct{ name, in, want string }{
		{"empty", ``, "schema: is empty"},
		{"not json", `{"type":}`, "is not JSON"},
		{"trailing", `{} {}`, "trailing data"},
		{"array", `[]`, "must be a JSON object or boolean"},
		{"remote ref", `{"$ref":"http://example.com/x"}`, "remote $ref is not allowed"},
		{"remote ref nested", `{"properties":{"a":{"items":{"$ref":"other.json#/x"}}}}`, "/properties/a/items/$ref"},
		{"invalid keyword value", `{"type":"object","required":"id"}`, "is not a valid JSON Schema"},
		{"bad regex", `{"type":"string","pattern":"("}`, "is not a valid JSON Schema"},
		{"too deep", deep, "levels deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%.40q) = %v, want error containing %q", tt.in, err, tt.want)
			}
		})
	}
	big := make([]byte, MaxSchemaBytes+1)
	for i := range big {
		big[i] = ' '
	}
	if _, err := Parse(big); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("oversized schema: %v", err)
	}
}

func TestFieldsAndValidate(t *testing.T) {
	s := MustParse(`{"type":"object","$defs":{"d":{"type":"string","format":"date"}},"properties":{"b":{"$ref":"#/$defs/d"},"a":{"type":["integer","null"]},"c":{"enum":[1,2]}},"required":["a"]}`)
	got := s.Fields()
	if len(got) != 3 || got[0].Name != "a" || got[0].Type != "integer|null" || !got[0].Required || got[1].Type != "string" || got[2].Type != "enum" {
		t.Fatalf("fields: %+v", got)
	}
	rec, err := DecodeRecord([]byte(`{"a": 12345678901234567890, "b": "2026-11-22"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(rec); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	rec, _ = DecodeRecord([]byte(`{"a": 1, "b": "not a date"}`))
	if err := s.Validate(rec); err == nil {
		t.Fatal("format date not asserted")
	}
}

func TestSelfReferenceTerminates(t *testing.T) {
	s := MustParse(`{"type":"object","properties":{"child":{"$ref":"#"},"n":{"type":"integer"}}}`)
	s2 := MustParse(`{"type":"object","properties":{"child":{"$ref":"#"},"n":{"type":"string"}}}`)
	if ps := Check(ModeFull, []*Schema{s}, s); len(ps) != 0 {
		t.Fatalf("self: %v", ps)
	}
	if ps := Check(ModeForward, []*Schema{s}, s2); len(ps) != 1 || ps[0].Path != "/properties/n" {
		t.Fatalf("changed: %v", ps)
	}
}
