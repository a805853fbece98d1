package schemas

import (
	"bytes"
	"context"
	"fmt"
	"runtime"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// DefaultSteps is the budget Validate gives one record: schema nodes
// entered. A record of a real schema takes a few per value.
const DefaultSteps = 1 << 22

// Budget is the work that validations sharing it may do, in steps: schema
// nodes entered. A caller validating a batch gives every record the same
// budget, so the batch as a whole is bounded.
type Budget struct {
	Steps int64 // the whole budget
	left  int64
}

// NewBudget is a budget of steps.
func NewBudget(steps int64) *Budget { return &Budget{Steps: steps, left: steps} }

// Used is the steps spent so far.
func (b *Budget) Used() int64 { return b.Steps - b.left }

// BudgetError is a validation stopped because it would enter more schema
// nodes than its budget allowed.
type BudgetError struct {
	Steps int64 // the budget
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("validating would take more than %d steps (schema nodes entered), the validation budget", e.Steps)
}

// The validator (santhosh-tekuri/jsonschema v6) has no context, no budget
// and no per-call state: Validate(v) is all it offers. What it does offer
// is vocabularies: a vocabulary's Compile runs for every schema object,
// and the extension it returns is called each time validation enters that
// object, after its subschemas. The budget vocabulary returns, for every
// object, an extension that counts a step on the counter of the compiled
// copy it belongs to, and when the budget is spent or the context is done
// it unwinds the validation with a panic that Validate recovers. Since the
// counter lives in the compiled copy, a Schema keeps a small pool of
// copies, each used by one validation at a time.

// counter is the budget of the validation that holds a compiled copy.
type counter struct {
	ctx  context.Context
	left int64
	b    *Budget
}

// stop unwinds a validation; Validate recovers it and nothing else.
type stop struct{ err error }

type stepExt struct{ c *counter }

func (e stepExt) Validate(*jsonschema.ValidatorContext, any) {
	c := e.c
	c.left--
	if c.left < 0 {
		panic(stop{&BudgetError{Steps: c.b.Steps}})
	}
	if c.left&255 == 0 {
		if err := c.ctx.Err(); err != nil {
			panic(stop{fmt.Errorf("validation stopped: %w", context.Cause(c.ctx))})
		}
	}
}

const budgetVocab = "urn:xhub:vocab:budget"

// vcopy is one compiled copy of a schema and its counter.
type vcopy struct {
	sch *jsonschema.Schema
	c   *counter
}

// compile compiles raw (already checked by Parse) with the budget
// vocabulary bound to a new counter.
func compile(raw []byte) (*vcopy, error) {
	cp := &vcopy{c: &counter{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	c.RegisterVocabulary(&jsonschema.Vocabulary{
		URL: budgetVocab,
		Compile: func(*jsonschema.CompilerContext, map[string]any) (jsonschema.SchemaExt, error) {
			return stepExt{cp.c}, nil
		},
	})
	c.AssertVocabs()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	if err := c.AddResource(rootURL, doc); err != nil {
		return nil, err
	}
	if cp.sch, err = c.Compile(rootURL); err != nil {
		return nil, err
	}
	return cp, nil
}

// idleCopies bounds the compiled copies a schema keeps between
// validations: one per core is as many as run at once.
func idleCopies() int { return min(max(runtime.GOMAXPROCS(0), 1), 16) }

// take returns an idle copy, or compiles one.
func (s *Schema) take() (*vcopy, error) {
	select {
	case cp := <-s.copies:
		return cp, nil
	default:
	}
	return compile(s.raw)
}

// give returns a copy to the pool, or drops it if the pool is full.
func (s *Schema) give(cp *vcopy) {
	cp.c.ctx, cp.c.b = nil, nil
	select {
	case s.copies <- cp:
	default:
	}
}

// run validates v on a copy within b, taking the steps used from b. A
// validation stopped by the budget or the context returns stopped.
func (s *Schema) run(ctx context.Context, v any, b *Budget) (verr, stopped error) {
	if b.left <= 0 {
		return nil, &BudgetError{Steps: b.Steps}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("validation stopped: %w", context.Cause(ctx))
	}
	cp, err := s.take()
	if err != nil {
		return nil, fmt.Errorf("compile schema: %w", err)
	}
	cp.c.ctx, cp.c.left, cp.c.b = ctx, b.left, b
	defer func() {
		b.left = max(cp.c.left, 0)
		if r := recover(); r != nil {
			st, ok := r.(stop)
			if !ok {
				panic(r)
			}
			// The copy holds no state between validations but its
			// counter, set anew on every run: it can be used again.
			stopped = st.err
		}
		s.give(cp)
	}()
	return cp.sch.Validate(v), nil
}
