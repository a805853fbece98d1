// Package ratelog bounds the log lines about events a remote party can
// cause in bulk (refused handshakes, refused NATS connections): at most
// one line per interval, each saying how many went unlogged before it.
// The events themselves are counted in metrics by their callers; the log
// only samples them.
package ratelog

import (
	"sync"
	"time"
)

// Limiter lets one event in every Every be logged. Its zero value is not
// usable: make it with New.
type Limiter struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// New makes a limiter of one line per every.
func New(every time.Duration) *Limiter { return &Limiter{every: every} }

// Allow says whether the event at now may be logged and, if so, how many
// were not logged since the last one that was.
func (l *Limiter) Allow(now time.Time) (unlogged int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return 0, false
	}
	unlogged, l.last, l.suppressed = l.suppressed, now, 0
	return unlogged, true
}
