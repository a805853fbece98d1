package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// OpenSharingPolicy is the actor of grants made for open datasets.
var OpenSharingPolicy = vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "open-sharing"}

// ExpiryPolicy is the actor of grant.expired entries.
var ExpiryPolicy = vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "expiry"}

func getDataset(txn views, id catalog.DatasetID) (catalog.Dataset, error) {
	var d catalog.Dataset
	ok, err := txn.Get(catalog.DatasetKey(id), &d)
	if err == nil && !ok {
		err = vocab.NotFound("dataset %s is not in the catalog", id)
	}
	return d, err
}

// pendingOf counts the requests of dept still pending, with those the
// appender has drafted and this node not yet applied.
func (cp *ControlPlane) pendingOf(dept catalog.DeptID) int {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	n := 0
	for _, r := range cp.drafted {
		if r.dept == dept && r.seq > cp.applied {
			n++
		}
	}
	for _, r := range cp.pending {
		if r.Requester == dept {
			n++
		}
	}
	return n
}

// RequestShare files a request (shares.NewRequest). For an open dataset
// the open-sharing policy grants it at once (a second entry); for a
// conditional one it waits for the owner; for none it is refused with the
// reason.
func (cp *ControlPlane) RequestShare(ctx context.Context, actor vocab.Identity, in shares.Input) (shares.Request, *shares.Grant, uint64, error) {
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindShareRequested, func(txn *store.Txn, now time.Time) (string, any, error) {
		m, err := readMeta(txn)
		if err != nil {
			return "", nil, err
		}
		rules := shares.Rules{ResponseDays: cp.cfg.ResponseDays, MaxGrantDays: cp.cfg.MaxGrantDays, MaxPendingRequests: cp.cfg.MaxPendingRequests}
		req, err := shares.NewRequest(txn, rules, actor, in, cp.pendingOf(actor.Dept), shares.RequestIDAt(m.Applied+1), now)
		if err != nil {
			return "", nil, err
		}
		if _, err := getDataset(txn, req.Dataset); err != nil {
			return "", nil, err
		}
		return string(req.Dataset), req.Body(), nil
	}))
	if err != nil {
		return shares.Request{}, nil, 0, err
	}
	// The request's id is its entry's sequence, so a replayed call finds
	// it too.
	req, err := cp.Request(shares.RequestIDAt(seq))
	if err != nil {
		return shares.Request{}, nil, 0, err
	}
	ds, _ := cp.Dataset(req.Dataset)
	if req.Grant != "" { // granted already (a replayed call)
		g, err := cp.Grant(req.Grant)
		return req, &g, g.Seq, err
	}
	if ds.ShareType == catalog.ShareOpen && req.Status == shares.RequestPending {
		g, gseq, err := cp.grantOpen(WithRequestID(ctx, ""), req.ID)
		if err != nil {
			// The request stands; the sweeper grants it when the log is
			// reachable again.
			cp.lg.Warn("open grant deferred", "request", req.ID, "err", err)
		} else {
			r, _ := cp.Request(req.ID)
			return r, &g, gseq, nil
		}
	} else {
		cp.publishEvent(req.Dataset.Owner(), ledger.KindShareRequested, req.ID)
	}
	r, err := cp.Request(req.ID)
	return r, nil, seq, err
}

// grantOpen appends the open-sharing policy's grant for a pending request
// on an open dataset (shares.OpenGrant).
func (cp *ControlPlane) grantOpen(ctx context.Context, id shares.RequestID) (shares.Grant, uint64, error) {
	var gid shares.GrantID
	seq, err := cp.submit(ctx, OpenSharingPolicy, ledger.KindGrantCreated, func(txn *store.Txn, now time.Time) (string, any, error) {
		m, err := readMeta(txn)
		if err != nil {
			return "", nil, err
		}
		gid = shares.GrantIDAt(m.Applied + 1)
		body, ds, err := shares.OpenGrant(txn, id, gid, now)
		return string(ds), body, err
	})
	if err != nil {
		return shares.Grant{}, 0, err
	}
	g, err := cp.Grant(gid)
	return g, seq, err
}

// Approve grants a pending conditional request, possibly narrowed
// (shares.Approval).
func (cp *ControlPlane) Approve(ctx context.Context, actor vocab.Identity, d shares.Decision) (shares.Request, shares.Grant, uint64, error) {
	if _, err := shares.ParseRequestID(string(d.Request)); err != nil {
		return shares.Request{}, shares.Grant{}, 0, err
	}
	if err := checkReason(d.Reason, false); err != nil {
		return shares.Request{}, shares.Grant{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindShareApproved, func(txn *store.Txn, now time.Time) (string, any, error) {
		m, err := readMeta(txn)
		if err != nil {
			return "", nil, err
		}
		body, ds, err := shares.Approval(txn, actor, d, shares.GrantIDAt(m.Applied+1), now)
		return string(ds), body, err
	}))
	if err != nil {
		return shares.Request{}, shares.Grant{}, 0, err
	}
	gid := shares.GrantIDAt(seq) // a grant's id is its entry's sequence
	r, _ := cp.Request(d.Request)
	g, err := cp.Grant(gid)
	cp.publishEvent(r.Requester, ledger.KindShareApproved, r.ID)
	return r, g, seq, err
}

// Reject refuses a pending request; the reason is required
// (shares.Rejection).
func (cp *ControlPlane) Reject(ctx context.Context, actor vocab.Identity, d shares.Decision) (shares.Request, uint64, error) {
	if _, err := shares.ParseRequestID(string(d.Request)); err != nil {
		return shares.Request{}, 0, err
	}
	if err := checkReason(d.Reason, true); err != nil {
		return shares.Request{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindShareRejected, func(txn *store.Txn, _ time.Time) (string, any, error) {
		body, ds, err := shares.Rejection(txn, actor, d)
		return string(ds), body, err
	}))
	if err != nil {
		return shares.Request{}, 0, err
	}
	r, err := cp.Request(d.Request)
	cp.publishEvent(r.Requester, ledger.KindShareRejected, r.ID)
	return r, seq, err
}

// Withdraw withdraws a pending request, by its requester
// (shares.Withdrawal).
func (cp *ControlPlane) Withdraw(ctx context.Context, actor vocab.Identity, id shares.RequestID) (shares.Request, uint64, error) {
	if _, err := shares.ParseRequestID(string(id)); err != nil {
		return shares.Request{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindShareWithdrawn, func(txn *store.Txn, _ time.Time) (string, any, error) {
		body, ds, err := shares.Withdrawal(txn, actor, id)
		return string(ds), body, err
	}))
	if err != nil {
		return shares.Request{}, 0, err
	}
	r, err := cp.Request(id)
	return r, seq, err
}

// RevokeGrant ends an active grant before its term; the reason is
// required (shares.Revocation).
func (cp *ControlPlane) RevokeGrant(ctx context.Context, actor vocab.Identity, id shares.GrantID, reason string) (shares.Grant, uint64, error) {
	if _, err := shares.ParseGrantID(string(id)); err != nil {
		return shares.Grant{}, 0, err
	}
	if err := checkReason(reason, true); err != nil {
		return shares.Grant{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindGrantRevoked, func(txn *store.Txn, now time.Time) (string, any, error) {
		body, ds, err := shares.Revocation(txn, actor, id, reason, now)
		return string(ds), body, err
	}))
	if err != nil {
		return shares.Grant{}, 0, err
	}
	g, err := cp.Grant(id)
	cp.publishEvent(g.Grantee, ledger.KindGrantRevoked, g.ID)
	return g, seq, err
}

// expireGrant appends grant.expired for a grant past its expiry
// (shares.Expiry). Several nodes may try at once; expected-last-sequence
// lets one append it and the others find it no longer active when they
// re-validate.
func (cp *ControlPlane) expireGrant(ctx context.Context, id shares.GrantID) (uint64, error) {
	return cp.submit(ctx, ExpiryPolicy, ledger.KindGrantExpired, func(txn *store.Txn, now time.Time) (string, any, error) {
		body, ds, err := shares.Expiry(txn, id, now)
		return string(ds), body, err
	})
}

// Event is what officers receive on their department's event subject
// (bus.EventPrefix + dept).
type Event struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// EventSubscriber is an EventPublisher that can also deliver a
// department's events (bus.Events).
type EventSubscriber interface {
	SubscribeEvents(dept catalog.DeptID, fn func([]byte)) (stop func(), err error)
}

// MaxEventWatchers bounds the event watchers of one department on one
// node.
const MaxEventWatchers = 16

// WatchEvents streams dept's events (share.requested, share.approved,
// dispute.opened, ...) until ctx ends. Events are at most once: the
// inbox and the ledger are the record. A watcher that does not keep up
// loses events rather than holding the node's memory.
func (cp *ControlPlane) WatchEvents(ctx context.Context, dept catalog.DeptID) (<-chan Event, error) {
	es, ok := cp.cfg.Events.(EventSubscriber)
	if !ok {
		return nil, &vocab.Error{Kind: vocab.KindUnavailable, Msg: "this hub node does not deliver events"}
	}
	cp.mu.Lock()
	if cp.watchers == nil {
		cp.watchers = map[catalog.DeptID]int{}
	}
	if cp.watchers[dept] >= MaxEventWatchers {
		n := cp.watchers[dept]
		cp.mu.Unlock()
		return nil, vocab.Exhausted("dept:"+string(dept), "department %s has %d event watchers on this node, the most the hub allows (%d)", dept, n, MaxEventWatchers)
	}
	cp.watchers[dept]++
	cp.mu.Unlock()
	out := make(chan Event, 64)
	var mu sync.Mutex
	closed := false
	stop, err := es.SubscribeEvents(dept, func(b []byte) {
		var e Event
		if json.Unmarshal(b, &e) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		select {
		case out <- e:
		default:
			cp.lg.Warn("event watcher behind: event dropped", "dept", dept, "kind", e.Kind, "id", e.ID)
		}
	})
	if err != nil {
		cp.mu.Lock()
		cp.watchers[dept]--
		cp.mu.Unlock()
		return nil, err
	}
	go func() {
		<-ctx.Done()
		stop()
		mu.Lock()
		closed = true
		close(out)
		mu.Unlock()
		cp.mu.Lock()
		cp.watchers[dept]--
		cp.mu.Unlock()
	}()
	return out, nil
}

func (cp *ControlPlane) publishEvent(dept catalog.DeptID, kind string, id any) {
	if cp.cfg.Events == nil {
		return
	}
	b, _ := json.Marshal(Event{Kind: kind, ID: fmt.Sprint(id)})
	if err := cp.cfg.Events.PublishEvent(dept, b); err != nil {
		cp.lg.Warn("event not published", "dept", dept, "kind", kind, "err", err)
	}
}

// applyShare applies an entry of the share workflow (shares.Apply) and
// keeps the pending requests and the grant index in step.
func (cp *ControlPlane) applyShare(txn views, e ledger.Entry) (func(), error) {
	ch, err := shares.Apply(txn, e)
	if err != nil {
		return nil, err
	}
	return cp.cacheShares(ch), nil
}

// applyRetirementToShares ends the grants on a retired dataset and
// rejects its pending requests, in the dataset.retired entry itself
// (shares.ApplyRetirement).
func (cp *ControlPlane) applyRetirementToShares(txn views, e ledger.Entry) (func(), error) {
	var r catalog.Retirement
	if err := json.Unmarshal(e.Body, &r); err != nil {
		return nil, err
	}
	ch, err := shares.ApplyRetirement(txn, e, r.ID)
	if err != nil {
		return nil, err
	}
	return cp.cacheShares(ch), nil
}

// cacheShares is what a change does to the in-memory views, once its
// transaction has committed.
func (cp *ControlPlane) cacheShares(ch shares.Change) func() {
	return func() {
		for _, r := range ch.Requests {
			if r.Status == shares.RequestPending {
				cp.pending[r.ID] = r
			} else {
				delete(cp.pending, r.ID)
			}
		}
		for _, g := range ch.Grants {
			cp.grants.put(g)
		}
	}
}

// sweepLoop appends grant.expired for grants past their expiry, and grants
// open requests whose policy grant was not appended (a node stopped between
// the two entries). Every node runs it; the log lets one entry through.
func (cp *ControlPlane) sweepLoop(ctx context.Context) {
	t := time.NewTicker(cp.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cp.sweep(ctx)
	}
}

func (cp *ControlPlane) sweep(ctx context.Context) {
	now := cp.cfg.Now()
	var due []shares.GrantID
	var open []shares.RequestID
	cp.mu.RLock()
	for _, m := range cp.grants.byPair {
		for _, g := range m {
			if !now.Before(g.ExpiresAt) {
				due = append(due, g.ID)
			}
		}
	}
	for _, r := range cp.pending {
		if d, ok := cp.index.Get(r.Dataset); ok && d.ShareType == catalog.ShareOpen && now.Sub(r.RequestedAt) > 2*cp.cfg.SweepInterval {
			open = append(open, r.ID)
		}
	}
	cp.mu.RUnlock()
	for _, id := range due {
		if ctx.Err() != nil {
			return
		}
		seq, err := cp.expireGrant(ctx, id)
		switch {
		case err == nil:
			cp.lg.Info("grant expired", "grant", id, "seq", seq)
		case errors.Is(err, shares.ErrAlreadyEnded), errors.Is(err, shares.ErrNotDue):
		default:
			cp.lg.Warn("expire grant", "grant", id, "err", err)
		}
	}
	for _, id := range open {
		if _, _, err := cp.grantOpen(ctx, id); err != nil && ctx.Err() == nil {
			cp.lg.Debug("open grant", "request", id, "err", err)
		}
	}
}
