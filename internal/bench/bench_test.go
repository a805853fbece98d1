package bench

import (
	"strings"
	"testing"
	"time"
)

func TestOutlierBaseline(t *testing.T) {
	if w := outlier("raw", []float64{129000, 6377, 125000}, "records/s"); !strings.Contains(w, "unstable") || !strings.Contains(w, "median 125000") {
		t.Fatalf("a stalled round: %q", w)
	}
	if w := outlier("raw", []float64{120000, 129000, 101000}, "records/s"); w != "" {
		t.Fatalf("steady rounds flagged: %q", w)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median %v", m)
	}
}

// TestSpread runs a small spread workload end to end on an in-process hub:
// every consumer's queries are answered (no errors) on both paths, and the
// report says what was set up.
func TestSpread(t *testing.T) {
	sp := Spread{Depts: 3, Datasets: 9, Providers: 4, Consumers: 4, Grants: 9}
	rep, err := Run(t.Context(), Config{Duration: 400 * time.Millisecond, Concurrency: 4, Spread: &sp})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Spread
	if p == nil || p.HubCalls == 0 || p.RawCalls == 0 || p.HubErrors != 0 {
		t.Fatalf("spread: %+v", p)
	}
	if s := rep.SpreadSetup; s == nil || s.LedgerEntries < 2*sp.Grants || rep.SpreadToSingle <= 0 {
		t.Fatalf("spread setup: %+v, ratio %v", s, rep.SpreadToSingle)
	}
}

func TestSpreadChecks(t *testing.T) {
	for _, sp := range []Spread{
		{Depts: 1, Datasets: 9, Providers: 4, Consumers: 4, Grants: 9},
		{Depts: 3, Datasets: 2, Providers: 4, Consumers: 4, Grants: 9},
		{Depts: 3, Datasets: 9, Providers: 49, Consumers: 4, Grants: 9},
		{Depts: 3, Datasets: 9, Providers: 4, Consumers: 4, Grants: 100},
	} {
		if err := sp.check(); err == nil {
			t.Errorf("%+v accepted", sp)
		}
	}
	if err := DefaultSpread.check(); err != nil {
		t.Fatal(err)
	}
}
