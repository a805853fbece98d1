package schemas

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// unchecked is a Schema built without Parse's fan-out bound: what the
// budget alone does against the attack.
func unchecked(t testing.TB, raw string) *Schema {
	t.Helper()
	cp, err := compile([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	s := &Schema{raw: []byte(raw), copies: make(chan *vcopy, 2)}
	s.copies <- cp
	return s
}

func TestBudget(t *testing.T) {
	// The 22-link chain takes 2^24 steps for one string; the budget
	// stops it after 100,000, and the copy is good for the next record.
	s := unchecked(t, chain(22))
	b := NewBudget(100_000)
	err := s.ValidateWithin(context.Background(), "x", b)
	var be *BudgetError
	if !errors.As(err, &be) || be.Steps != 100_000 || b.Used() != 100_000 {
		t.Fatalf("got %v (used %d), want a *BudgetError of 100000", err, b.Used())
	}
	if err := s.ValidateWithin(context.Background(), "x", b); !errors.As(err, &be) {
		t.Fatalf("spent budget: %v", err)
	}
	short := unchecked(t, chain(3))
	if err := short.ValidateWithin(context.Background(), "x", NewBudget(100)); err != nil {
		t.Fatalf("after a stopped validation: %v", err)
	}
	if err := short.ValidateWithin(context.Background(), 5, NewBudget(100)); err == nil || !strings.Contains(err.Error(), "want string") {
		t.Fatalf("wrong type: %v", err)
	}

	// A budget shared by the records of a batch: the array of 3000
	// items takes 3001 steps; two fit in 7000, the third does not.
	arr := MustParse(`{"type":"array","items":{"type":"integer"}}`)
	items := make([]any, 3000)
	for i := range items {
		items[i] = 1
	}
	b = NewBudget(7000)
	for i := range 3 {
		err := arr.ValidateWithin(context.Background(), items, b)
		if want := i == 2; errors.As(err, &be) != want {
			t.Fatalf("record %d: %v (used %d)", i, err, b.Used())
		}
	}
}

// countdown is a context that is done after n checks: cancellation in the
// middle of a validation, without timing.
type countdown struct {
	context.Context
	mu sync.Mutex
	n  int
}

func (c *countdown) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

func TestValidationHonoursCancel(t *testing.T) {
	s := unchecked(t, chain(22))
	ctx := &countdown{Context: context.Background(), n: 10}
	b := NewBudget(1 << 40)
	err := s.ValidateWithin(ctx, "x", b)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The context is looked at every 256 steps.
	if b.Used() > 12*256 {
		t.Fatalf("went on for %d steps after the context was done", b.Used())
	}
}

// TestValidateConcurrent: validations at once each count on their own
// copy; budgets do not leak between them.
func TestValidateConcurrent(t *testing.T) {
	s := MustParse(`{"type":"array","items":{"type":"integer"}}`)
	items := make([]any, 100)
	for i := range items {
		items[i] = 1
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				b := NewBudget(101)
				if err := s.ValidateWithin(context.Background(), items, b); err != nil || b.Used() != 101 {
					t.Errorf("goroutine %d: %v, used %d", g, err, b.Used())
					return
				}
			}
		}()
	}
	wg.Wait()
}
