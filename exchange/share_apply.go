package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/internal/store"
)

// applyShare materialises the share workflow's entries. ok is false for a
// kind it does not own.
func (cp *ControlPlane) applyShare(txn *store.Txn, e ledger.Entry) (after func(), ok bool, err error) {
	switch e.Kind {
	case KindShareRequested:
		var r ShareRequest
		if err := json.Unmarshal(e.Body, &r); err != nil {
			return nil, true, err
		}
		if r.ID != requestID(e.Seq) {
			return nil, true, fmt.Errorf("request id %s in entry %d", r.ID, e.Seq)
		}
		r.RequestedAt, r.Seq = e.Time, e.Seq
		if err := txn.Put(requestKey(r.ID), r); err != nil {
			return nil, true, err
		}
		if err := txn.Put(pendingByDatasetKey(r.Dataset, r.ID), r.ID); err != nil {
			return nil, true, err
		}
		return func() { cp.pending[r.ID] = r }, true, nil

	case KindShareApproved, KindGrantCreated:
		var b grantBody
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return nil, true, err
		}
		if b.Grant != grantID(e.Seq) {
			return nil, true, fmt.Errorf("grant id %s in entry %d", b.Grant, e.Seq)
		}
		r, err := getRequest(txn, b.Request)
		if err != nil {
			return nil, true, err
		}
		if r.Status != RequestPending {
			return nil, true, fmt.Errorf("request %s is %s", r.ID, r.Status)
		}
		g := Grant{
			ID: b.Grant, Grantee: r.Requester, Dataset: r.Dataset, Fields: b.Fields, GrantedAt: e.Time, ExpiresAt: b.ExpiresAt,
			GrantedBy: e.Actor, Status: GrantActive, Request: r.ID, Reason: b.Reason, Seq: e.Seq,
		}
		r.Status, r.DecidedBy, r.DecidedAt, r.Grant, r.Reason, r.Seq = RequestApproved, e.Actor, e.Time, g.ID, b.Reason, e.Seq
		if err := cp.putDecided(txn, r); err != nil {
			return nil, true, err
		}
		if err := txn.Put(grantKey(g.ID), g); err != nil {
			return nil, true, err
		}
		if err := txn.Put(grantByDatasetKey(g.Dataset, g.ID), g.ID); err != nil {
			return nil, true, err
		}
		return func() { delete(cp.pending, r.ID); cp.grants.put(g) }, true, nil

	case KindShareRejected, KindShareWithdrawn:
		var b requestDecision
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return nil, true, err
		}
		r, err := getRequest(txn, b.Request)
		if err != nil {
			return nil, true, err
		}
		if r.Status != RequestPending {
			return nil, true, fmt.Errorf("request %s is %s", r.ID, r.Status)
		}
		r.Status = RequestRejected
		if e.Kind == KindShareWithdrawn {
			r.Status = RequestWithdrawn
		}
		r.DecidedBy, r.DecidedAt, r.Reason, r.Seq = e.Actor, e.Time, b.Reason, e.Seq
		if err := cp.putDecided(txn, r); err != nil {
			return nil, true, err
		}
		return func() { delete(cp.pending, r.ID) }, true, nil

	case KindGrantRevoked, KindGrantExpired:
		var b grantEnd
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return nil, true, err
		}
		g, err := getGrant(txn, b.Grant)
		if err != nil {
			return nil, true, err
		}
		if g.Status != GrantActive {
			return nil, true, fmt.Errorf("grant %s is %s", g.ID, g.Status)
		}
		g.Status, g.EndedAt, g.Seq = GrantRevoked, e.Time, e.Seq
		if e.Kind == KindGrantExpired {
			g.Status = GrantExpired
		} else {
			g.Reason = b.Reason
		}
		if err := txn.Put(grantKey(g.ID), g); err != nil {
			return nil, true, err
		}
		return func() { cp.grants.put(g) }, true, nil
	}
	return nil, false, nil
}

// putDecided stores a request that is no longer pending.
func (cp *ControlPlane) putDecided(txn *store.Txn, r ShareRequest) error {
	if err := txn.Put(requestKey(r.ID), r); err != nil {
		return err
	}
	return txn.Delete(pendingByDatasetKey(r.Dataset, r.ID))
}

// endForRetirement ends the active grants of a retired dataset and rejects
// its pending requests, inside the retirement's own transaction.
func (cp *ControlPlane) endForRetirement(txn *store.Txn, e ledger.Entry, ds catalog.DatasetID) (func(), error) {
	var ended []Grant
	var rejected []RequestID
	err := txn.Scan("grd/"+string(ds)+"/", "", func(_ string, val []byte) (bool, error) {
		var id GrantID
		if err := json.Unmarshal(val, &id); err != nil {
			return false, err
		}
		g, err := getGrant(txn, id)
		if err != nil {
			return false, err
		}
		if g.Status == GrantActive {
			g.Status, g.EndedAt, g.Reason, g.Seq = GrantEnded, e.Time, "dataset retired", e.Seq
			ended = append(ended, g)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	var pend []ShareRequest
	err = txn.Scan("rqd/"+string(ds)+"/", "", func(_ string, val []byte) (bool, error) {
		var id RequestID
		if err := json.Unmarshal(val, &id); err != nil {
			return false, err
		}
		r, err := getRequest(txn, id)
		if err != nil {
			return false, err
		}
		pend = append(pend, r)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, g := range ended {
		if err := txn.Put(grantKey(g.ID), g); err != nil {
			return nil, err
		}
	}
	for _, r := range pend {
		r.Status, r.DecidedBy, r.DecidedAt, r.Reason, r.Seq = RequestRejected, e.Actor, e.Time, "dataset retired", e.Seq
		if err := cp.putDecided(txn, r); err != nil {
			return nil, err
		}
		rejected = append(rejected, r.ID)
	}
	return func() {
		for _, g := range ended {
			cp.grants.put(g)
		}
		for _, id := range rejected {
			delete(cp.pending, id)
		}
	}, nil
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
	var due []GrantID
	var open []RequestID
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
		case errors.Is(err, errAlreadyEnded), errors.Is(err, errNotDue):
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
