package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/xhub-gov/xhub/catalog"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// RecordProblem is one reason a record fails a schema.
type RecordProblem struct {
	Pointer string // JSON pointer into the record, "/" for the record itself
	Message string // e.g. "maximum: got 4,242, want 5"
}

func (p RecordProblem) String() string { return p.Pointer + ": " + p.Message }

// Field is the top-level property the problem is in ("" for the record
// itself).
func (p RecordProblem) Field() string {
	tok, _, _ := strings.Cut(strings.TrimPrefix(p.Pointer, "/"), "/")
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
}

// ValidationError is a record that fails a schema, with every problem
// named by its JSON pointer.
type ValidationError struct {
	Problems []RecordProblem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

var printer = message.NewPrinter(language.English)

// Validate checks one JSON value (decoded with UseNumber) against the
// schema, within DefaultSteps. A failure is a *ValidationError.
func (s *Schema) Validate(v any) error {
	return s.ValidateWithin(context.Background(), v, NewBudget(DefaultSteps))
}

// ValidateWithin checks one JSON value (decoded with UseNumber) against
// the schema, spending steps of b. A failure is a *ValidationError; a
// validation that would spend more than b has left stops with a
// *BudgetError, and one whose ctx is done stops with an error wrapping
// ctx's cause, within a few hundred steps.
func (s *Schema) ValidateWithin(ctx context.Context, v any, b *Budget) error {
	err, stopped := s.run(ctx, v, b)
	if stopped != nil {
		return stopped
	}
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &ValidationError{Problems: []RecordProblem{{Pointer: "/", Message: err.Error()}}}
	}
	out := &ValidationError{}
	leaves(ve, func(l *jsonschema.ValidationError) {
		ptr := "/"
		if len(l.InstanceLocation) > 0 {
			toks := make([]string, len(l.InstanceLocation))
			for i, t := range l.InstanceLocation {
				// A key with control characters is written escaped: the
				// pointer reaches terminals in refusals and reasons.
				toks[i] = catalog.EscapeLine(escape(t))
			}
			ptr = "/" + strings.Join(toks, "/")
		}
		out.Problems = append(out.Problems, RecordProblem{Pointer: ptr, Message: l.ErrorKind.LocalizedString(printer)})
	})
	if len(out.Problems) == 0 {
		out.Problems = []RecordProblem{{Pointer: "/", Message: ve.ErrorKind.LocalizedString(printer)}}
	}
	return out
}

func leaves(e *jsonschema.ValidationError, fn func(*jsonschema.ValidationError)) {
	if len(e.Causes) == 0 {
		fn(e)
		return
	}
	for _, c := range e.Causes {
		leaves(c, fn)
	}
}

// rootKeep are the top-level keywords a restricted schema keeps: those
// that judge a property by itself, or that a local $ref needs.
var rootKeep = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "definitions": true, "$anchor": true, "$dynamicAnchor": true,
	"$vocabulary": true, "type": true, "patternProperties": true, "additionalProperties": true, "propertyNames": true,
}

// maxRestricted bounds the restricted schemas cached per schema: a
// consumer choosing ever new field sets cannot grow the cache.
const maxRestricted = 128

type restrictCache struct {
	mu sync.Mutex
	m  map[string]*Schema
}

// Restrict returns the schema that judges a record cut down to the given
// top-level fields: the property schemas, "required" cut to them, and the
// root keywords that judge one property by itself (type,
// patternProperties, additionalProperties, propertyNames) or that a $ref
// needs ($defs). Keywords that tie properties together (allOf, anyOf,
// oneOf, not, if/then/else, dependentRequired, dependentSchemas,
// min/maxProperties, unevaluatedProperties) are left out: whether a record
// passes the restricted schema depends on those fields alone. The
// data plane judges a provider's answer with it, so that what a consumer
// learns about a record is computable from the fields it may read.
func (s *Schema) Restrict(fields []string) (*Schema, error) {
	fields = slices.Clone(fields)
	slices.Sort(fields)
	fields = slices.Compact(fields)
	key := strings.Join(fields, "\x00")
	s.restricted.mu.Lock()
	if r, ok := s.restricted.m[key]; ok {
		s.restricted.mu.Unlock()
		return r, nil
	}
	s.restricted.mu.Unlock()

	root, ok := s.doc.(map[string]any)
	if !ok {
		return s, nil // a boolean schema judges no property
	}
	doc := make(map[string]any, len(rootKeep)+2)
	for k, v := range root {
		if rootKeep[k] {
			doc[k] = v
		}
	}
	// The record judged holds only the given fields, so the schemas of
	// other properties never apply; they stay for any $ref into them.
	if props, ok := root["properties"]; ok {
		doc["properties"] = props
	}
	if req, ok := root["required"].([]any); ok {
		var keep []any
		for _, r := range req {
			if name, ok := r.(string); ok && slices.Contains(fields, name) {
				keep = append(keep, name)
			}
		}
		if len(keep) > 0 {
			doc["required"] = keep
		}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	r, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	s.restricted.mu.Lock()
	defer s.restricted.mu.Unlock()
	if s.restricted.m == nil {
		s.restricted.m = make(map[string]*Schema)
	}
	if len(s.restricted.m) < maxRestricted {
		s.restricted.m[key] = r
	}
	return r, nil
}
