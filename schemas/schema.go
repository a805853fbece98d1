package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// Bounds on a schema document.
const (
	MaxSchemaBytes = 256 << 10
	MaxDepth       = 32
	MaxFields      = 512
)

// Schema is a parsed, compiled, bounded JSON Schema document.
type Schema struct {
	doc       any    // decoded with UseNumber
	canonical []byte // re-encoded with sorted keys: identity for "same schema"
	raw       []byte // as registered: compiled again for each copy

	// copies are compiled copies not in use: each counts the steps
	// of the one validation that holds it (see budget.go).
	copies chan *vcopy

	restricted restrictCache // field set -> Restrict's schema
}

const rootURL = "urn:xhub:schema"

// Parse decodes, bounds and compiles a JSON Schema (draft 2020-12 unless
// the document says otherwise with $schema). Remote references are refused:
// a schema must be self-contained, so that what was registered is what is
// enforced, forever.
func Parse(raw []byte) (*Schema, error) {
	if len(raw) == 0 {
		return nil, vocab.Invalid("schema", "is empty")
	}
	if len(raw) > MaxSchemaBytes {
		return nil, vocab.Invalid("schema", "is %d bytes, at most %d", len(raw), MaxSchemaBytes)
	}
	if err := validUTF8(raw); err != nil {
		return nil, vocab.Invalid("schema", "%v", err)
	}
	doc, err := decodeFast(raw)
	var dup *DuplicateKeyError
	if errors.As(err, &dup) {
		return nil, vocab.Invalid("schema", "%v", err)
	}
	if err != nil {
		return nil, vocab.Invalid("schema", "is not JSON: %v", err)
	}
	if d := depth(doc); d > MaxDepth {
		return nil, vocab.Invalid("schema", "nests %d levels deep, at most %d", d, MaxDepth)
	}
	if at, err := boundNumbers(doc, ""); err != nil {
		return nil, vocab.Invalid("schema", "%s: %v", at, err)
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		return nil, vocab.Invalid("schema", "must be a JSON object or boolean, not %s", jsonKind(doc))
	}
	if ref := remoteRef(doc, ""); ref != "" {
		return nil, vocab.Invalid("schema", "%s: remote $ref is not allowed; a schema must be self-contained", ref)
	}
	if c := refCycle(doc); c != "" {
		return nil, vocab.Invalid("schema", "%s: validating would never end", c)
	}
	cp, err := compile(raw)
	if err != nil {
		return nil, vocab.Invalid("schema", "is not a valid JSON Schema: %s", cleanCompileError(err))
	}
	compiled := cp.sch
	if where := fanOut(compiled); where != "" {
		return nil, vocab.Invalid("schema", "%s", where)
	}
	canon, err := json.Marshal(doc)
	if err != nil {
		return nil, vocab.Invalid("schema", "%v", err)
	}
	s := &Schema{doc: doc, canonical: canon, raw: bytes.Clone(raw), copies: make(chan *vcopy, idleCopies())}
	s.copies <- cp
	if n := len(s.Fields()); n > MaxFields {
		return nil, vocab.Invalid("schema", "has %d top-level properties, at most %d", n, MaxFields)
	}
	return s, nil
}

// MustParse is Parse for schemas known to be good (tests, the demo).
func MustParse(raw string) *Schema {
	s, err := Parse([]byte(raw))
	if err != nil {
		panic(err)
	}
	return s
}

// Canonical is the schema re-encoded with sorted keys and no insignificant
// white space. Two schemas with equal canonical forms are the same schema.
func (s *Schema) Canonical() []byte { return s.canonical }

// Equal reports whether two schemas are the same document.
func (s *Schema) Equal(o *Schema) bool { return bytes.Equal(s.canonical, o.canonical) }

// Fields lists the top-level properties, in name order: the dataset's fields.
// CheckFields checks the fields a schema gives its dataset as text a
// person reads: every department sees their names and descriptions in the
// catalog, so they hold no control character, line separator or bidi
// control (catalog.CheckLine; a description may have several lines).
// Checked when a schema is registered, not when one in the ledger is
// read.
func (s *Schema) CheckFields() error {
	for _, f := range s.Fields() {
		if err := catalog.CheckLine("properties", f.Name); err != nil {
			return vocab.Invalid("properties", "field name %q: %v", catalog.EscapeLine(f.Name), err)
		}
		if err := catalog.CheckParagraph("properties", f.Description); err != nil {
			return vocab.Invalid("properties", "description of field %s: %v", f.Name, err)
		}
	}
	return nil
}

func (s *Schema) Fields() []catalog.Field {
	obj, _ := s.doc.(map[string]any)
	props, _ := obj["properties"].(map[string]any)
	required := map[string]bool{}
	if req, ok := obj["required"].([]any); ok {
		for _, r := range req {
			if name, ok := r.(string); ok {
				required[name] = true
			}
		}
	}
	fields := make([]catalog.Field, 0, len(props))
	for name, p := range props {
		f := catalog.Field{Name: name, Required: required[name]}
		if po, ok := p.(map[string]any); ok {
			po = resolveLocal(obj, po)
			f.Type = typeString(po["type"])
			f.Description, _ = po["description"].(string)
			if f.Type == "" {
				if _, ok := po["enum"]; ok {
					f.Type = "enum"
				}
			}
		}
		if f.Type == "" {
			f.Type = "any"
		}
		fields = append(fields, f)
	}
	slices.SortFunc(fields, func(a, b catalog.Field) int { return strings.Compare(a.Name, b.Name) })
	return fields
}

func typeString(t any) string {
	switch t := t.(type) {
	case string:
		return t
	case []any:
		var parts []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "|")
	}
	return ""
}

// resolveLocal follows a local "$ref" on a property, once, for field typing.
func resolveLocal(root, p map[string]any) map[string]any {
	ref, ok := p["$ref"].(string)
	if !ok || !strings.HasPrefix(ref, "#") {
		return p
	}
	if t, ok := lookupPointer(root, ref[1:]).(map[string]any); ok {
		return t
	}
	return p
}

type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("loading %s is not allowed: schemas must be self-contained", url)
}

func cleanCompileError(err error) string {
	msg := strings.ReplaceAll(err.Error(), rootURL, "schema")
	msg = strings.ReplaceAll(msg, "\n", "; ")
	if len(msg) > 600 {
		msg = msg[:600] + "…"
	}
	return msg
}

// DecodeRecord decodes one JSON record for validation: numbers as
// json.Number, so 64-bit ids survive. It uses the fast decoder, which the
// differential fuzz test holds to encoding/json's behaviour.
// Bytes that are not UTF-8 are refused, never silently replaced, and so is
// a key repeated in any object of the record (a *DuplicateKeyError naming
// it): the record is stored and passed on byte for byte, so every copy a
// reader might keep must be the one the schema judged. A number beyond the
// bounds on number texts (at most vocab.MaxNumberDigits digits, an exponent
// within ±vocab.MaxNumberExponent) is refused with a *vocab.NumberBoundError: the
// validator and the filters never see one, so none is ever expanded.
func DecodeRecord(raw []byte) (any, error) {
	if err := validUTF8(raw); err != nil {
		return nil, err
	}
	return decodeBounded(raw)
}

// DecodeStoredRecord is DecodeRecord for a record stored after it was
// judged (a published record, delivered to a subscriber): it holds no
// number to a bound, so a record stored before the bound was set is still
// delivered.
func DecodeStoredRecord(raw []byte) (any, error) {
	if err := validUTF8(raw); err != nil {
		return nil, err
	}
	return decodeFast(raw)
}

// validUTF8 names the first byte that is not UTF-8.
func validUTF8(b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Errorf("is not valid UTF-8 (byte %d is 0x%02x)", i, b[i])
		}
		i += n
	}
	return errors.New("is not valid UTF-8")
}

// refCycle finds a cycle of $ref (and the other keywords that apply a
// subschema to the same value: allOf, anyOf, oneOf, not, if, then, else,
// dependentSchemas) that never moves into the value: {"$ref": "#"} is
// one. Validation would loop on it; the validator stops only when a
// record reaches it. It returns the cycle, or "".
func refCycle(doc any) string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var path []string
	var visit func(at string) string
	visit = func(at string) string {
		switch color[at] {
		case grey:
			for i, p := range path {
				if p == at {
					return "$ref cycle " + strings.Join(append(path[i:], at), " → ")
				}
			}
		case black:
			return ""
		}
		node, ok := lookupPointer(doc, at).(map[string]any)
		if !ok {
			color[at] = black
			return ""
		}
		color[at] = grey
		path = append(path, at)
		for _, next := range inPlace(node, at) {
			if c := visit(next); c != "" {
				return c
			}
		}
		path = path[:len(path)-1]
		color[at] = black
		return ""
	}
	var walk func(v any, at string) string
	walk = func(v any, at string) string {
		switch v := v.(type) {
		case map[string]any:
			if c := visit(at); c != "" {
				return c
			}
			for _, k := range sortedKeys(v) {
				if k == "enum" || k == "const" || k == "default" || k == "examples" {
					continue
				}
				if c := walk(v[k], at+"/"+escape(k)); c != "" {
					return c
				}
			}
		case []any:
			for i, x := range v {
				if c := walk(x, fmt.Sprintf("%s/%d", at, i)); c != "" {
					return c
				}
			}
		}
		return ""
	}
	return walk(doc, "")
}

// inPlace lists the subschemas that node applies to the value it is
// applied to (JSON pointers into the document).
func inPlace(node map[string]any, at string) []string {
	var out []string
	if ref, ok := node["$ref"].(string); ok && strings.HasPrefix(ref, "#") && (ref == "#" || strings.HasPrefix(ref, "#/")) {
		out = append(out, ref[1:])
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if xs, ok := node[k].([]any); ok {
			for i := range xs {
				out = append(out, fmt.Sprintf("%s/%s/%d", at, k, i))
			}
		}
	}
	for _, k := range []string{"not", "if", "then", "else"} {
		if _, ok := node[k].(map[string]any); ok {
			out = append(out, at+"/"+k)
		}
	}
	if ds, ok := node["dependentSchemas"].(map[string]any); ok {
		for _, name := range sortedKeys(ds) {
			out = append(out, at+"/dependentSchemas/"+escape(name))
		}
	}
	return out
}

func depth(v any) int {
	switch v := v.(type) {
	case map[string]any:
		m := 0
		for _, x := range v {
			m = max(m, depth(x))
		}
		return m + 1
	case []any:
		m := 0
		for _, x := range v {
			m = max(m, depth(x))
		}
		return m + 1
	}
	return 0
}

// boundNumbers returns the pointer to the first number (in key order) that
// is beyond the bounds on number texts, and why. A bound like
// "multipleOf": 1e-999999 would otherwise be divided into every record's
// number by the validator.
func boundNumbers(v any, at string) (string, error) {
	switch v := v.(type) {
	case json.Number:
		if err := vocab.CheckNumber(v.String()); err != nil {
			if at == "" {
				at = "/"
			}
			return at, err
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if p, err := boundNumbers(v[k], at+"/"+escape(k)); err != nil {
				return p, err
			}
		}
	case []any:
		for i, x := range v {
			if p, err := boundNumbers(x, fmt.Sprintf("%s/%d", at, i)); err != nil {
				return p, err
			}
		}
	}
	return "", nil
}

// remoteRef returns the pointer to the first $ref or $dynamicRef that is not
// local to the document, or "".
func remoteRef(v any, at string) string {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range []string{"$ref", "$dynamicRef"} {
			if r, ok := v[k].(string); ok && !strings.HasPrefix(r, "#") {
				return at + "/" + k + " " + quote(r)
			}
		}
		keys := sortedKeys(v)
		for _, k := range keys {
			if k == "enum" || k == "const" || k == "default" || k == "examples" {
				continue
			}
			if r := remoteRef(v[k], at+"/"+escape(k)); r != "" {
				return r
			}
		}
	case []any:
		for i, x := range v {
			if r := remoteRef(x, fmt.Sprintf("%s/%d", at, i)); r != "" {
				return r
			}
		}
	}
	return ""
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// escape escapes a JSON pointer token.
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func lookupPointer(root any, ptr string) any {
	if ptr == "" {
		return root
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil
	}
	cur := root
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			var i int
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}
