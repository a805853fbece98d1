package dataplane

import (
	"log/slog"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/catalog"
)

// TestUsageExpiry: a batch counts until its retention has passed (rounded
// up, never down), per dataset and per department, and an entry whose
// batches have all gone is dropped.
func TestUsageExpiry(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	u := newUsage(nil, slog.New(slog.DiscardHandler))
	u.now = func() time.Time { return now }
	put := func(id catalog.DatasetID, at time.Time, ttl time.Duration, n int64) {
		s := u.by[id]
		if s == nil {
			s = &stored{}
			u.by[id] = s
		}
		s.bytes += n
		s.expires = append(s.expires, expiry{expiresAt(at, ttl), n, at})
	}
	put("tax.a", t0, 2*time.Second, 100)
	put("tax.a", t0, time.Hour, 10)
	put("tax.b", t0, time.Hour, 1)
	put("health.c", t0, time.Hour, 1000)
	if got := u.dept("tax"); got != 111 {
		t.Fatalf("tax holds %d, want 111", got)
	}
	now = t0.Add(2 * time.Second) // not yet: the expiry is rounded up
	if got := u.dataset("tax.a"); got != 110 {
		t.Fatalf("at its retention tax.a holds %d, want 110 still", got)
	}
	now = t0.Add(4 * time.Second)
	if got := u.dataset("tax.a"); got != 10 {
		t.Fatalf("past its retention tax.a holds %d, want 10", got)
	}
	now = t0.Add(time.Hour + time.Hour/64 + time.Second)
	if got := u.depts(); len(got) != 0 || len(u.by) != 0 {
		t.Fatalf("after an hour the departments hold %v, %d datasets left", got, len(u.by))
	}
	for _, ttl := range []time.Duration{time.Second, 2 * time.Second, time.Hour, 365 * 24 * time.Hour} {
		if at := expiresAt(t0, ttl); at.Before(t0.Add(ttl)) || at.After(t0.Add(ttl+max(ttl/64, time.Second))) {
			t.Fatalf("expiresAt(%s) = %s", ttl, at.Sub(t0))
		}
	}
}
