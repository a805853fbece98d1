package ratelog

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(time.Second)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if n, ok := l.Allow(t0); !ok || n != 0 {
		t.Fatalf("first: %d %v", n, ok)
	}
	for i := range 999 {
		if _, ok := l.Allow(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			t.Fatalf("event %d logged within the second", i)
		}
	}
	if n, ok := l.Allow(t0.Add(time.Second)); !ok || n != 999 {
		t.Fatalf("after a second: %d %v, want 999 unlogged", n, ok)
	}
}
