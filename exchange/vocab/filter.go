package vocab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/internal/fault"
)

// Op is a filter operator on a top-level field.
type Op string

const (
	OpEq     Op = "="
	OpNe     Op = "!="
	OpLt     Op = "<"
	OpLe     Op = "<="
	OpGt     Op = ">"
	OpGe     Op = ">="
	OpIn     Op = "in"
	OpPrefix Op = "prefix"
)

// Ops lists the operators, longest symbols first (for parsing).
var Ops = []Op{OpLe, OpGe, OpNe, OpEq, OpLt, OpGt, OpIn, OpPrefix}

// Limits on filters.
const (
	MaxFilters       = 16
	MaxFilterValue   = 4096
	MaxInValues      = 256
	maxFilterTextLen = 8192
)

// Filter is one condition: Field Op Value. Value is a JSON value (decoded
// with UseNumber); for "in" a JSON array; for "prefix" a string.
type Filter struct {
	Field string `json:"field"`
	Op    Op     `json:"op"`
	Value any    `json:"value"`
}

// ParseFilter parses the CLI form: `field OP value`, with OP one of
// = != < <= > >= in prefix. The value is JSON if it parses as JSON,
// otherwise a string: `district=north`, `age>=18`,
// `vaccine in ["MMR","HPV"]`, `name prefix Li`.
func ParseFilter(s string) (Filter, error) {
	if len(s) > maxFilterTextLen {
		return Filter{}, fault.Invalid("where", "filter is %d bytes, at most %d", len(s), maxFilterTextLen)
	}
	if !utf8.ValidString(s) {
		return Filter{}, fault.Invalid("where", "filter is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	field, rest := splitField(s)
	if field == "" {
		return Filter{}, fault.Invalid("where", "%q: want <field> <op> <value> with op one of = != < <= > >= in prefix", s)
	}
	rest = strings.TrimLeft(rest, " ")
	var op Op
	for _, o := range Ops {
		word := o == OpIn || o == OpPrefix
		if strings.HasPrefix(rest, string(o)) && (!word || len(rest) > len(o) && rest[len(o)] == ' ') {
			op = o
			break
		}
	}
	if op == "" {
		return Filter{}, fault.Invalid("where", "%q: no operator after field %q (want = != < <= > >= in prefix)", s, field)
	}
	raw := strings.TrimSpace(rest[len(op):])
	if raw == "" {
		return Filter{}, fault.Invalid("where", "%q: no value after %s", s, op)
	}
	// 'vaccine==MMR' would compare with the string "=MMR" and match
	// nothing, silently: an operator character right after the operator
	// is a mistyped operator. A value that starts with one is written as
	// a JSON string ('name="=x"').
	if op != OpIn && op != OpPrefix && strings.ContainsRune("=<>!~", rune(raw[0])) && !json.Valid([]byte(raw)) {
		typed := string(op) + operatorPrefix(raw)
		return Filter{}, fault.Invalid("where", "%q: %q is not an operator (want one of = != < <= > >= in prefix); a value starting with %q is written as a JSON string", s, typed, raw[:1])
	}
	var v any
	if decoded, err := decodeValue([]byte(raw)); err == nil {
		v = decoded
	} else {
		v = raw
	}
	f := Filter{Field: field, Op: op, Value: v}
	return f, f.check()
}

// operatorPrefix is the run of operator characters at the start of s.
func operatorPrefix(s string) string {
	i := 0
	for i < len(s) && strings.ContainsRune("=<>!~", rune(s[i])) {
		i++
	}
	return s[:i]
}

func splitField(s string) (field, rest string) {
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r > 127) {
			return s[:i], s[i:]
		}
	}
	return s, ""
}

func decodeValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

// DecodeFilterValue decodes a filter value sent as JSON bytes.
func DecodeFilterValue(b []byte) (any, error) {
	if len(b) > MaxFilterValue {
		return nil, fault.Invalid("filters.value", "is %d bytes, at most %d", len(b), MaxFilterValue)
	}
	v, err := decodeValue(b)
	if err != nil {
		return nil, fault.Invalid("filters.value", "is not JSON: %v", err)
	}
	return v, nil
}

// check validates the operator against the value's shape.
func (f Filter) check() error {
	if f.Field == "" || len(f.Field) > 256 {
		return fault.Invalid("filters.field", "must be 1 to 256 characters")
	}
	switch f.Op {
	case OpEq, OpNe:
	case OpLt, OpLe, OpGt, OpGe:
		switch f.Value.(type) {
		case json.Number, string:
		default:
			return fault.Invalid("filters.value", "%s %s needs a number or a string", f.Field, f.Op)
		}
	case OpIn:
		arr, ok := f.Value.([]any)
		if !ok {
			return fault.Invalid("filters.value", "%s in needs a JSON array, e.g. [\"a\",\"b\"]", f.Field)
		}
		if len(arr) > MaxInValues {
			return fault.Invalid("filters.value", "%s in has %d values, at most %d", f.Field, len(arr), MaxInValues)
		}
	case OpPrefix:
		if _, ok := f.Value.(string); !ok {
			return fault.Invalid("filters.value", "%s prefix needs a string", f.Field)
		}
	default:
		return fault.Invalid("filters.op", "%q is not one of = != < <= > >= in prefix", f.Op)
	}
	return nil
}

// Validate checks a filter against the dataset's fields: the field exists
// and the value fits its type.
func (f Filter) Validate(fields []catalog.Field) error {
	if err := f.check(); err != nil {
		return err
	}
	i := slices.IndexFunc(fields, func(x catalog.Field) bool { return x.Name == f.Field })
	if i < 0 {
		return fault.Invalid("filters.field", "%q is not a field of the dataset", f.Field)
	}
	typ := fields[i].Type
	vals := []any{f.Value}
	if f.Op == OpIn {
		vals = f.Value.([]any)
	}
	for _, v := range vals {
		if !valueFits(v, typ) {
			return fault.Invalid("filters.value", "%s is of type %s; %s does not fit", f.Field, typ, canonJSON(v))
		}
	}
	if f.Op == OpPrefix && !typeHas(typ, "string") {
		return fault.Invalid("filters.op", "prefix needs a string field; %s is %s", f.Field, typ)
	}
	return nil
}

func typeHas(typ, t string) bool {
	if typ == "any" || typ == "enum" {
		return true
	}
	return slices.Contains(strings.Split(typ, "|"), t)
}

func valueFits(v any, typ string) bool {
	switch v := v.(type) {
	case nil:
		return typeHas(typ, "null")
	case bool:
		return typeHas(typ, "boolean")
	case string:
		return typeHas(typ, "string")
	case json.Number:
		if typeHas(typ, "number") {
			return true
		}
		if typeHas(typ, "integer") {
			r, ok := new(big.Rat).SetString(v.String())
			return ok && r.IsInt()
		}
		return false
	case []any:
		return typeHas(typ, "array")
	case map[string]any:
		return typeHas(typ, "object")
	}
	return false
}

// Match reports whether a record (decoded with UseNumber) satisfies f. A
// missing field matches nothing but !=.
func (f Filter) Match(rec map[string]any) bool {
	v, ok := rec[f.Field]
	if !ok {
		return f.Op == OpNe
	}
	switch f.Op {
	case OpEq:
		return jsonEq(v, f.Value)
	case OpNe:
		return !jsonEq(v, f.Value)
	case OpIn:
		for _, x := range f.Value.([]any) {
			if jsonEq(v, x) {
				return true
			}
		}
		return false
	case OpPrefix:
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, f.Value.(string))
	}
	c, ok := compare(v, f.Value)
	if !ok {
		return false
	}
	switch f.Op {
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	}
	return false
}

func compare(a, b any) (int, bool) {
	switch a := a.(type) {
	case json.Number:
		bn, ok := b.(json.Number)
		if !ok {
			return 0, false
		}
		ra, ok1 := new(big.Rat).SetString(a.String())
		rb, ok2 := new(big.Rat).SetString(bn.String())
		if !ok1 || !ok2 {
			return 0, false
		}
		return ra.Cmp(rb), true
	case string:
		bs, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(a, bs), true
	}
	return 0, false
}

func jsonEq(a, b any) bool {
	if an, ok := a.(json.Number); ok {
		if bn, ok := b.(json.Number); ok {
			c, ok := compare(an, bn)
			return ok && c == 0
		}
		return false
	}
	return canonJSON(a) == canonJSON(b)
}

func canonJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// String is the CLI form.
func (f Filter) String() string { return f.Field + " " + string(f.Op) + " " + canonJSON(f.Value) }

// ValueJSON is the value's canonical JSON, as sent on the wire.
func (f Filter) ValueJSON() []byte { return []byte(canonJSON(f.Value)) }
