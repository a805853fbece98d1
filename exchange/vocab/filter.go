package vocab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
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

// Limits on filters. Every number in a filter value has at most
// MaxNumberDigits digits before its exponent and an exponent within
// ±MaxNumberExponent (records are held to the same bound): a number is
// compared by its digits, never expanded, and a bounded text is cheap
// wherever else it goes (a database, a schema validator).
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
		return Filter{}, Invalid("where", "filter is %d bytes, at most %d", len(s), maxFilterTextLen)
	}
	if !utf8.ValidString(s) {
		return Filter{}, Invalid("where", "filter is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	field, rest := splitField(s)
	if field == "" {
		return Filter{}, Invalid("where", "%q: want <field> <op> <value> with op one of = != < <= > >= in prefix", s)
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
		return Filter{}, Invalid("where", "%q: no operator after field %q (want = != < <= > >= in prefix)", s, field)
	}
	raw := strings.TrimSpace(rest[len(op):])
	if raw == "" {
		return Filter{}, Invalid("where", "%q: no value after %s", s, op)
	}
	// 'vaccine==MMR' would compare with the string "=MMR" and match
	// nothing, silently: an operator character right after the operator
	// is a mistyped operator. A value that starts with one is written as
	// a JSON string ('name="=x"').
	if op != OpIn && op != OpPrefix && strings.ContainsRune("=<>!~", rune(raw[0])) && !json.Valid([]byte(raw)) {
		typed := string(op) + operatorPrefix(raw)
		return Filter{}, Invalid("where", "%q: %q is not an operator (want one of = != < <= > >= in prefix); a value starting with %q is written as a JSON string", s, typed, raw[:1])
	}
	var v any
	if decoded, err := decodeValue([]byte(raw)); err == nil {
		v = decoded
	} else {
		v = raw
	}
	f := Filter{Field: field, Op: op, Value: v}
	return f, f.Check()
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
		return nil, Invalid("filters.value", "is %d bytes, at most %d", len(b), MaxFilterValue)
	}
	v, err := decodeValue(b)
	if err != nil {
		return nil, Invalid("filters.value", "is not JSON: %v", err)
	}
	return v, nil
}

// Check validates the operator against the value's shape and bounds the
// value's numbers (MaxNumberDigits, MaxNumberExponent). Validate does this
// and checks the filter against a dataset's fields.
func (f Filter) Check() error {
	if f.Field == "" || len(f.Field) > 256 {
		return Invalid("filters.field", "must be 1 to 256 characters")
	}
	switch f.Op {
	case OpEq, OpNe:
	case OpLt, OpLe, OpGt, OpGe:
		switch f.Value.(type) {
		case json.Number, string:
		default:
			return Invalid("filters.value", "%s %s needs a number or a string", f.Field, f.Op)
		}
	case OpIn:
		arr, ok := f.Value.([]any)
		if !ok {
			return Invalid("filters.value", "%s in needs a JSON array, e.g. [\"a\",\"b\"]", f.Field)
		}
		if len(arr) > MaxInValues {
			return Invalid("filters.value", "%s in has %d values, at most %d", f.Field, len(arr), MaxInValues)
		}
	case OpPrefix:
		if _, ok := f.Value.(string); !ok {
			return Invalid("filters.value", "%s prefix needs a string", f.Field)
		}
	default:
		return Invalid("filters.op", "%q is not one of = != < <= > >= in prefix", f.Op)
	}
	if err := boundNumbers(f.Value); err != nil {
		return Invalid("filters.value", "filter %s %s: %v", f.Field, f.Op, err)
	}
	return nil
}

// boundNumbers checks every number in a JSON value against the bounds on
// number texts. An "in" list is at most MaxInValues long and the whole
// value at most MaxFilterValue bytes: the walk is short.
func boundNumbers(v any) error {
	switch v := v.(type) {
	case json.Number:
		return CheckNumber(v.String())
	case []any:
		for _, x := range v {
			if err := boundNumbers(x); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, x := range v {
			if err := boundNumbers(x); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks a filter against the dataset's fields: the field exists
// and the value fits its type.
func (f Filter) Validate(fields []Field) error {
	if err := f.Check(); err != nil {
		return err
	}
	i := slices.IndexFunc(fields, func(x Field) bool { return x.Name == f.Field })
	if i < 0 {
		return Invalid("filters.field", "%q is not a field of the dataset", f.Field)
	}
	typ := fields[i].Type
	vals := []any{f.Value}
	if f.Op == OpIn {
		vals = f.Value.([]any)
	}
	for _, v := range vals {
		if !valueFits(v, typ) {
			return Invalid("filters.value", "%s is of type %s; %s does not fit", f.Field, typ, canonJSON(v))
		}
	}
	if f.Op == OpPrefix && !typeHas(typ, "string") {
		return Invalid("filters.op", "prefix needs a string field; %s is %s", f.Field, typ)
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
			n, ok := ParseNumber(v.String())
			return ok && n.IsInt()
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
// missing field matches nothing but !=. It prepares f for each call: to
// match many records, Compile f once.
func (f Filter) Match(rec map[string]any) bool {
	m, err := f.Compile()
	return err == nil && m.Match(rec)
}

// Matcher is a filter prepared for matching many records: its value is
// checked and its numbers parsed once, its other values encoded once.
type Matcher struct {
	f    Filter
	vals []operand // the value, or the "in" list's values
}

// operand is a filter value ready to compare: a number parsed (num), or
// any other value as its canonical JSON (canon), or a string (str).
type operand struct {
	isNum bool
	num   Number
	str   string
	isStr bool
	canon string
}

func newOperand(v any) operand {
	switch v := v.(type) {
	case json.Number:
		if n, ok := ParseNumber(v.String()); ok {
			return operand{isNum: true, num: n}
		}
	case string:
		return operand{isStr: true, str: v, canon: canonJSON(v)}
	}
	return operand{canon: canonJSON(v)}
}

// Compile checks f (Check) and prepares it for Match.
func (f Filter) Compile() (*Matcher, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	m := &Matcher{f: f}
	if f.Op == OpIn {
		for _, x := range f.Value.([]any) {
			m.vals = append(m.vals, newOperand(x))
		}
	} else {
		m.vals = []operand{newOperand(f.Value)}
	}
	return m, nil
}

// CompileFilters compiles each filter.
func CompileFilters(fs []Filter) ([]*Matcher, error) {
	out := make([]*Matcher, len(fs))
	for i, f := range fs {
		m, err := f.Compile()
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// Filter is the filter m was compiled from.
func (m *Matcher) Filter() Filter { return m.f }

// Match reports whether a record (decoded with UseNumber) satisfies the
// filter. A number of the record is compared by its digits, never
// expanded, however long it is.
func (m *Matcher) Match(rec map[string]any) bool {
	v, ok := rec[m.f.Field]
	if !ok {
		return m.f.Op == OpNe
	}
	switch m.f.Op {
	case OpEq:
		return newRecordValue(v).eq(m.vals[0])
	case OpNe:
		return !newRecordValue(v).eq(m.vals[0])
	case OpIn:
		rv := newRecordValue(v)
		for _, x := range m.vals {
			if rv.eq(x) {
				return true
			}
		}
		return false
	case OpPrefix:
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, m.vals[0].str)
	}
	c, ok := newRecordValue(v).compare(m.vals[0])
	if !ok {
		return false
	}
	switch m.f.Op {
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

// recordValue is a record's value, its number parsed, its canonical JSON
// made on first use (once for a whole "in" list).
type recordValue struct {
	v     any
	num   Number
	isNum bool
	canon *string
}

func newRecordValue(v any) *recordValue {
	r := &recordValue{v: v}
	if n, ok := v.(json.Number); ok {
		r.num, r.isNum = ParseNumber(n.String())
	}
	return r
}

func (r *recordValue) eq(o operand) bool {
	if _, ok := r.v.(json.Number); ok {
		return r.isNum && o.isNum && r.num.Cmp(o.num) == 0
	}
	if o.isNum {
		return false
	}
	if r.canon == nil {
		c := canonJSON(r.v)
		r.canon = &c
	}
	return *r.canon == o.canon
}

func (r *recordValue) compare(o operand) (int, bool) {
	switch v := r.v.(type) {
	case json.Number:
		if !r.isNum || !o.isNum {
			return 0, false
		}
		return r.num.Cmp(o.num), true
	case string:
		if !o.isStr {
			return 0, false
		}
		return strings.Compare(v, o.str), true
	}
	return 0, false
}

func canonJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// String is the CLI form.
func (f Filter) String() string { return f.Field + " " + string(f.Op) + " " + canonJSON(f.Value) }

// ValueJSON is the value's canonical JSON, as sent on the wire.
func (f Filter) ValueJSON() []byte { return []byte(canonJSON(f.Value)) }
