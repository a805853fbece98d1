package exchange

import (
	"slices"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

type pairKey struct {
	grantee catalog.DeptID
	dataset catalog.DatasetID
}

// grantIndex holds the grants whose status is active, by (grantee,
// dataset). It is changed only by the apply loop, after the Badger
// transaction that changed the same grants has committed, under cp.mu; so
// it always answers as of the applied sequence. It stores expiry times and
// never decides expiry itself: every check compares with the clock.
type grantIndex struct {
	byPair map[pairKey]map[shares.GrantID]shares.Grant
}

func newGrantIndex() grantIndex {
	return grantIndex{byPair: make(map[pairKey]map[shares.GrantID]shares.Grant)}
}

func (x grantIndex) put(g shares.Grant) {
	k := pairKey{g.Grantee, g.Dataset}
	if g.Status != shares.GrantActive {
		if m := x.byPair[k]; m != nil {
			delete(m, g.ID)
			if len(m) == 0 {
				delete(x.byPair, k)
			}
		}
		return
	}
	m := x.byPair[k]
	if m == nil {
		m = make(map[shares.GrantID]shares.Grant)
		x.byPair[k] = m
	}
	m[g.ID] = g
}

// Access is the answer to "may grantee read dataset now".
type Access struct {
	Grants    []shares.GrantID // the active grants that allow it
	Fields    []string         // the union of their fields, sorted
	ExpiresAt time.Time        // when the last of them expires
	AsOf      uint64           // the log sequence the answer reflects
}

// Allows reports whether every field is granted; the first that is not is
// returned.
func (a Access) Allows(fields []string) (string, bool) {
	for _, f := range fields {
		if _, ok := slices.BinarySearch(a.Fields, f); !ok {
			return f, false
		}
	}
	return "", true
}

// CheckAccess answers, in constant time in the number of grants, whether
// grantee holds an active grant on dataset at now, and for which fields.
// An expired grant never counts, whether or not its grant.expired entry
// has been appended.
func (cp *ControlPlane) CheckAccess(grantee catalog.DeptID, dataset catalog.DatasetID, now time.Time) (Access, error) {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	a := Access{AsOf: cp.applied}
	for _, g := range cp.grants.byPair[pairKey{grantee, dataset}] {
		if !g.ActiveAt(now) {
			continue
		}
		a.Grants = append(a.Grants, g.ID)
		if a.Fields == nil {
			a.Fields = g.Fields // shared, read-only: grants are never changed in place
		} else {
			a.Fields = append(slices.Clone(a.Fields), g.Fields...)
		}
		if g.ExpiresAt.After(a.ExpiresAt) {
			a.ExpiresAt = g.ExpiresAt
		}
	}
	if len(a.Grants) == 0 {
		return a, vocab.Denied("department %s holds no active grant on %s (as of ledger entry %d)", grantee, dataset, a.AsOf)
	}
	if len(a.Grants) > 1 {
		slices.Sort(a.Fields)
		a.Fields = slices.Compact(a.Fields)
	}
	return a, nil
}

// GrantPair is a department holding at least one active grant on a
// dataset.
type GrantPair struct {
	Dept    catalog.DeptID
	Dataset catalog.DatasetID
	// ExpiresAt is when the last of those grants ends.
	ExpiresAt time.Time
}

// ActiveGrantPairs lists every (department, dataset) with an active grant
// at now, sorted.
func (cp *ControlPlane) ActiveGrantPairs(now time.Time) []GrantPair {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	var out []GrantPair
	for k, gs := range cp.grants.byPair {
		p := GrantPair{Dept: k.grantee, Dataset: k.dataset}
		for _, g := range gs {
			if g.ActiveAt(now) && g.ExpiresAt.After(p.ExpiresAt) {
				p.ExpiresAt = g.ExpiresAt
			}
		}
		if !p.ExpiresAt.IsZero() {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b GrantPair) int {
		if c := strings.Compare(string(a.Dept), string(b.Dept)); c != 0 {
			return c
		}
		return strings.Compare(string(a.Dataset), string(b.Dataset))
	})
	return out
}

// Advanced returns a channel closed when this node next applies an entry.
// Take a new channel after each close.
func (cp *ControlPlane) Advanced() <-chan struct{} {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	return cp.advanced
}
