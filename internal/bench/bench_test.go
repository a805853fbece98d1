package bench

import (
	"strings"
	"testing"
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
