package schemas

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// chain is the attack: d_i = allOf[$ref d_(i+1), $ref d_(i+1)], n links.
func chain(n int) string {
	var defs []string
	for i := range n {
		defs = append(defs, fmt.Sprintf(`"d%d":{"allOf":[{"$ref":"#/$defs/d%d"},{"$ref":"#/$defs/d%d"}]}`, i, i+1, i+1))
	}
	defs = append(defs, fmt.Sprintf(`"d%d":{"type":"string"}`, n))
	return `{"$ref":"#/$defs/d0","$defs":{` + strings.Join(defs, ",") + `}}`
}

// moving is a chain that doubles through a moving keyword: each link
// applies the next to member "a" twice.
func moving(n int) string {
	var defs []string
	for i := range n {
		defs = append(defs, fmt.Sprintf(`"d%d":{"properties":{"a":{"$ref":"#/$defs/d%d"}},"patternProperties":{"^a$":{"$ref":"#/$defs/d%d"}}}`, i, i+1, i+1))
	}
	defs = append(defs, fmt.Sprintf(`"d%d":{"type":"string"}`, n))
	return `{"$ref":"#/$defs/d0","$defs":{` + strings.Join(defs, ",") + `}}`
}

func TestFanOut(t *testing.T) {
	tests := []struct {
		name, schema, want string // want "": accepted
	}{
		{"attack: 22 links", chain(22), "/$defs/d10: validating one value against it can visit 16381 schema nodes, more than the fan-out bound of 10000"},
		{"attack: 12 links", chain(12), "more than the fan-out bound of 10000"},
		{"short chain", chain(8), ""},
		{"doubling into a member", moving(16), "validating one record can visit"},
		{"doubling recursion", `{"$defs":{"n":{"properties":{"a":{"$ref":"#/$defs/n"}},"patternProperties":{"^a":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}`, "/$defs/n: validating one record can visit"},
		{"doubling by anchor", anchored(16), "/$defs/d4: validating one value against it can visit 16381"},
		{"doubling in an embedded resource", `{"$defs":{"r":{"$id":"urn:r",` + strings.TrimPrefix(chain(16), "{") + `},"$ref":"#/$defs/r"}`, "/$defs/r/$defs/d4: validating one value"},
		{"tree", `{"$defs":{"node":{"type":"object","properties":{"left":{"$ref":"#/$defs/node"},"right":{"$ref":"#/$defs/node"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}`, ""},
		{"wide but flat", `{"properties":{` + wide(400) + `}}`, ""},
		{"wide and recursive, with patterns", wideRecursive(300, 200), ""},
		{"dynamic ref", `{"$dynamicAnchor":"n","properties":{"a":{"$dynamicRef":"#n"},"b":{"$dynamicRef":"#n"}}}`, ""},
		{"draft 7", `{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"x":{"allOf":[{"$ref":"#/definitions/y"},{"$ref":"#/definitions/y"}]},"y":{"type":"string"}},"$ref":"#/definitions/x"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.schema))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func wide(n int) string {
	var ps []string
	for i := range n {
		ps = append(ps, fmt.Sprintf(`"f%d":{"anyOf":[{"type":"string"},{"type":"null"}]}`, i))
	}
	return strings.Join(ps, ",")
}

// anchored is chain with $anchor names instead of pointers.
func anchored(n int) string {
	var defs []string
	for i := range n {
		defs = append(defs, fmt.Sprintf(`"d%d":{"$anchor":"a%d","allOf":[{"$ref":"#a%d"},{"$ref":"#a%d"}]}`, i, i, i+1, i+1))
	}
	defs = append(defs, fmt.Sprintf(`"d%d":{"$anchor":"a%d","type":"string"}`, n, n))
	return `{"$ref":"#a0","$defs":{` + strings.Join(defs, ",") + `}}`
}

// FuzzFanOut: the fan-out bound is sound. For any schema Parse accepts,
// validating any instance enters at most MaxFanOut schema nodes per value
// of the instance (each value, member name included, lies on one path,
// and a path costs at most MaxFanOut), and the analysis never crashes.
func FuzzFanOut(f *testing.F) {
	for _, s := range []string{chain(8), chain(13), moving(6), anchored(9),
		`{"$defs":{"node":{"type":"object","properties":{"left":{"$ref":"#/$defs/node"},"right":{"$ref":"#/$defs/node"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}`,
		`{"$dynamicAnchor":"n","properties":{"a":{"$dynamicRef":"#n"},"b":{"$dynamicRef":"#n"}}}`,
		`{"properties":{"a":{"anyOf":[{"$ref":"#"},{"$ref":"#/properties/a"}]}}}`,
		`{"propertyNames":{"allOf":[{"$ref":"#/$defs/s"},{"$ref":"#/$defs/s"}]},"$defs":{"s":{"minLength":1}},"additionalProperties":{"$ref":"#"}}`,
		`{"prefixItems":[{"$ref":"#"},{"$ref":"#"}],"items":{"$ref":"#"},"contains":{"$ref":"#"}}`} {
		f.Add([]byte(s), []byte(`{"a":{"a":{"a":"x"}},"left":{"right":{}},"kids":[{},{"kids":[]}]}`))
		f.Add([]byte(s), []byte(`[[1,[2]],{"b":"c"},"x"]`))
	}
	f.Fuzz(func(t *testing.T, schema, instance []byte) {
		s, err := Parse(schema)
		if err != nil {
			return
		}
		v, err := decodeFast(instance)
		if err != nil {
			return
		}
		b := NewBudget(1 << 40)
		if err := s.ValidateWithin(context.Background(), v, b); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("validation stopped: %v", err)
			}
		}
		if n := values(v); b.Used() > int64(MaxFanOut)*n {
			t.Fatalf("%d steps for %d values, more than %d per value: the analysis let %s through", b.Used(), n, MaxFanOut, schema)
		}
	})
}

// values counts an instance's values and member names.
func values(v any) int64 {
	n := int64(1)
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			n += 1 + values(x)
		}
	case []any:
		for _, x := range v {
			n += values(x)
		}
	}
	return n
}

// wideRecursive is a schema whose n properties all refer to a definition
// that has them too, and p patterns that none of the names match.
func wideRecursive(n, p int) string {
	var ps, xs []string
	for i := range n {
		ps = append(ps, fmt.Sprintf(`"p%d":{"$ref":"#/$defs/x"}`, i))
	}
	for i := range p {
		xs = append(xs, fmt.Sprintf(`"^q%d":{"type":"string"}`, i))
	}
	return `{"properties":{` + strings.Join(ps, ",") + `},"$defs":{"x":{"properties":{` + strings.Join(ps, ",") + `},"patternProperties":{` + strings.Join(xs, ",") + `}}}}`
}
