package exchange

import (
	"context"
	"testing"

	"github.com/xhub-gov/xhub/internal/store"
)

// replica is another node of cfg's log: cfg on a fresh in-memory store,
// caught up by applying the log alone (no drafts). Both are closed when
// the test ends.
func replica(t *testing.T, cfg Config) (*ControlPlane, *store.Store) {
	t.Helper()
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store = st
	cp, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Close)
	if err := cp.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cp, st
}
