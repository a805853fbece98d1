package schemas

import (
	"testing"
)

// FuzzParse: no input crashes the registry's parser; whatever parses is
// compatible with itself under every mode (the checker never invents a
// problem between equal schemas), and its canonical form parses to the
// same schema.
func FuzzParse(f *testing.F) {
	for _, s := range []string{open1, openAdd, closed1, enum1, min0, pat1, oneOf1, ref1, recursive, items2, `true`, `false`, `{}`,
		`{"$ref":"#/$defs/a","$defs":{"a":{"$ref":"#/$defs/a"}}}`, `{"type":["string","null"],"minLength":1}`, `{"const":{"a":[1,2]}}`,
		`{"$ref":"#"}`, `{"properties":{"x":{"not":{"$ref":"#/properties/x"}}}}`, "{\"title\":\"\xff\"}",
		`{"properties":{"a":{"type":"integer"},"b":{"$ref":"#/properties/a"}},"required":["a","b"],"dependentRequired":{"a":["b"]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Parse(raw)
		if err != nil {
			return
		}
		fields := s.Fields()
		// Cut to any of its fields, a valid schema stays valid.
		if len(fields) > 0 {
			if _, err := s.Restrict([]string{fields[0].Name}); err != nil {
				t.Fatalf("restricted to %s: %v\n%s", fields[0].Name, err, raw)
			}
		}
		for _, m := range Modes {
			if ps := Check(m, []*Schema{s}, s); len(ps) > 0 {
				t.Fatalf("schema incompatible with itself under %s: %v\n%s", m, ps, raw)
			}
		}
		again, err := Parse(s.Canonical())
		if err != nil || !again.Equal(s) {
			t.Fatalf("canonical form does not round-trip: %v", err)
		}
	})
}

// FuzzCheck: any two schemas can be compared without a crash, and every
// problem names a path and a rule.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(open1), []byte(openAdd))
	f.Add([]byte(closed1), []byte(closedAdd))
	f.Add([]byte(ref1), []byte(ref2))
	f.Add([]byte(enum1), []byte(`{"type":"object","properties":{"v":{"const":"MMR"}}}`))
	f.Add([]byte(`{"minimum":1.5,"exclusiveMaximum":10}`), []byte(`{"exclusiveMinimum":1,"maximum":1e3}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		sa, err := Parse(a)
		if err != nil {
			return
		}
		sb, err := Parse(b)
		if err != nil {
			return
		}
		for _, m := range Modes {
			for _, p := range Check(m, []*Schema{sa}, sb) {
				if p.Rule == "" || p.Direction == "" || p.Version != 1 {
					t.Fatalf("problem without explanation: %+v", p)
				}
			}
		}
	})
}

// FuzzCheckSound: the checker never says "compatible" wrongly. When it
// finds a FORWARD change compatible, every instance the new schema accepts
// the old one accepts too.
func FuzzCheckSound(f *testing.F) {
	seeds := [][2]string{
		{mult10, mult5}, {multHalf, multOneHalf}, {props1, props2}, {props1, props3}, {noDeps, deps}, {reqExpiry, deps},
		{anyOf1, anyOf2}, {`{"type":"string"}`, anyOf1}, {`{"type":"integer"}`, allOfMin}, {notString, `{"type":"integer"}`},
		{notShort, `{"type":"string"}`}, {contains1, contains2}, {open1, openAdd}, {closed1, closedAdd}, {enum1, enum2},
		{`{"type":"object","additionalProperties":false}`, patAdded}, {patNamed, patOnly}, {`{"type":"array","items":{"type":"integer"}}`, prefixAdded},
		{prefixAdded, prefixNarrow}, {oneOf1, oneOf3}, {`{"type":"integer"}`, oneOfOverlap}, {noDeps, depSchema}, {closed1, closedUneval},
		{`{"type":"boolean"}`, `{"enum":[true,false]}`}, {`{"type":"array","prefixItems":[{"type":"string"}]}`, `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}]}`},
		{`{"not":{"type":["string","integer"]}}`, `{"not":{"type":["string","integer","boolean"]}}`}, {oneOf1, anyOf1}, {`{"type":"integer","enum":[1,2,"x"]}`, `{"enum":[1,2]}`},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]), []byte(`{"card":"x","expiry":"y"}`))
		f.Add([]byte(s[1]), []byte(s[0]), []byte(`[1,2,"a"]`))
		f.Add([]byte(s[0]), []byte(s[1]), []byte(`15`))
		f.Add([]byte(s[0]), []byte(s[1]), []byte(`{"x1":"s","xy":"s"}`))
		f.Add([]byte(s[0]), []byte(s[1]), []byte(`["x",1]`))
	}
	f.Fuzz(func(t *testing.T, a, b, instance []byte) {
		old, err := Parse(a)
		if err != nil {
			return
		}
		cand, err := Parse(b)
		if err != nil {
			return
		}
		if len(Check(ModeForward, []*Schema{old}, cand)) > 0 {
			return
		}
		v, err := decodeFast(instance)
		if err != nil {
			return
		}
		if cand.Validate(v) == nil && old.Validate(v) != nil {
			t.Fatalf("forward-compatible by the checker, yet %s is accepted by the new schema %s and refused by the old %s", instance, b, a)
		}
	})
}
