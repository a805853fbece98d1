package exchange

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHeadReadsShared: however many refusals are judged on the log's
// head at once, the log sees at most one head read in flight, and each
// caller gets a read that began after it called. Without the sharing, a
// department asking in a loop for datasets it holds no grant on would
// cost the log one stream-info request per refusal.
func TestHeadReadsShared(t *testing.T) {
	var (
		inFlight, most, reads atomic.Int32
		seq                   atomic.Uint64
	)
	release := make(chan struct{})
	h := &headReads{wait: time.Minute, read: func(ctx context.Context) (uint64, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		reads.Add(1)
		s := seq.Load() // the head as the read began
		<-release
		return s, nil
	}}
	ctx := context.Background()
	// A first caller's read is under way when the log grows to 7.
	first := make(chan uint64)
	go func() { s, _ := h.last(ctx); first <- s }()
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	seq.Store(7)
	var wg sync.WaitGroup
	got := make([]uint64, 100)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], _ = h.last(ctx) }()
	}
	for queued := 0; queued < len(got); { // every caller waits behind the first read
		time.Sleep(time.Millisecond)
		h.mu.Lock()
		queued = h.queued
		h.mu.Unlock()
	}
	close(release)
	wg.Wait()
	if s := <-first; s != 0 {
		t.Errorf("first caller: head %d, want 0", s)
	}
	for i, s := range got {
		if s != 7 {
			t.Fatalf("caller %d, which called after the log held 7 entries, got head %d", i, s)
		}
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("%d reads of the head for %d callers", n, len(got)+1)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d head reads in flight at once, want 1", m)
	}
}
