package exchange

import (
	"context"
	"sync"
	"time"
)

// headReads reads where the log ends for every refusal judged on the
// log's head, one read at a time: callers arriving while a read is under
// way share the next one. Each caller still gets a head read that began
// after it called (an entry acknowledged before the call is counted), yet
// however many refusals are judged at once — a department asking, in a
// loop, for datasets it holds no grant on — the log sees at most one
// head read in flight per node, not one per refusal.
type headReads struct {
	read func(ctx context.Context) (uint64, error)
	wait time.Duration // bounds each read

	mu     sync.Mutex
	cur    *headRead // under way
	next   *headRead // begins when cur ends; shared by those who came during cur
	queued int       // callers sharing next
}

type headRead struct {
	done chan struct{}
	seq  uint64
	err  error
}

// last returns the log's last sequence, read after the call began.
func (h *headReads) last(ctx context.Context) (uint64, error) {
	h.mu.Lock()
	var r *headRead
	switch {
	case h.cur == nil:
		r = &headRead{done: make(chan struct{})}
		h.cur = r
		go h.run(r)
	case h.next == nil:
		r = &headRead{done: make(chan struct{})}
		h.next, h.queued = r, 1
	default:
		r = h.next
		h.queued++
	}
	h.mu.Unlock()
	select {
	case <-r.done:
		return r.seq, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run reads the head for r, then begins the read queued behind it.
func (h *headReads) run(r *headRead) {
	for r != nil {
		ctx, cancel := context.WithTimeout(context.Background(), h.wait)
		r.seq, r.err = h.read(ctx)
		cancel()
		close(r.done)
		h.mu.Lock()
		r, h.cur, h.next, h.queued = h.next, h.next, nil, 0
		h.mu.Unlock()
	}
}
