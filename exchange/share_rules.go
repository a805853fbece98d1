package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/fault"
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
		err = fault.NotFound("dataset %s is not in the catalog", id)
	}
	return d, err
}

// mayDecide: the owner department's officer, or the hub operator.
func mayDecide(actor vocab.Identity, owner catalog.DeptID, what string) error {
	switch {
	case actor.Role == vocab.RoleAdmin:
		return nil
	case actor.Role == vocab.RoleOfficer && actor.Dept == owner:
		return nil
	case actor.Role == vocab.RoleOfficer:
		return fault.Denied("%s: only an officer of %s (the owner) may %s", actor.URI(), owner, what)
	}
	return fault.Denied("%s: role %s may not %s", actor.URI(), actor.Role, what)
}

// ShareRequestInput is what a requester asks for.
type ShareRequestInput struct {
	Dataset catalog.DatasetID
	Fields  []string
	Purpose string
	Days    int // 0: the hub's maximum
}

// pendingOf counts the requests of dept still pending.
func (cp *ControlPlane) pendingOf(dept catalog.DeptID) int {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	n := 0
	for _, r := range cp.pending {
		if r.Requester == dept {
			n++
		}
	}
	return n
}

// RequestShare files a request. For an open dataset the open-sharing
// policy grants it at once (a second entry); for a conditional one it waits
// for the owner; for none it is refused with the reason.
func (cp *ControlPlane) RequestShare(ctx context.Context, actor vocab.Identity, in ShareRequestInput) (shares.Request, *shares.Grant, uint64, error) {
	if actor.Role != vocab.RoleOfficer {
		return shares.Request{}, nil, 0, fault.Denied("%s: only a data officer requests data", actor.URI())
	}
	if _, err := catalog.ParseDatasetID(string(in.Dataset)); err != nil {
		return shares.Request{}, nil, 0, err
	}
	purpose := strings.TrimSpace(in.Purpose)
	if purpose == "" {
		return shares.Request{}, nil, 0, fault.Invalid("purpose", "is required: say what the data is for")
	}
	if len(purpose) > MaxPurposeLen {
		return shares.Request{}, nil, 0, fault.Invalid("purpose", "is %d bytes, at most %d", len(purpose), MaxPurposeLen)
	}
	days := in.Days
	if days == 0 {
		days = cp.cfg.MaxGrantDays
	}
	if days < 1 || days > cp.cfg.MaxGrantDays {
		return shares.Request{}, nil, 0, fault.Invalid("days", "%d is not between 1 and %d (the hub's longest grant)", days, cp.cfg.MaxGrantDays)
	}
	var req shares.Request
	var share catalog.ShareType
	seq, err := cp.submit(ctx, actor, shares.KindShareRequested, func(txn *store.Txn, now time.Time) (string, any, error) {
		ds, err := getDataset(txn, in.Dataset)
		if err != nil {
			return "", nil, err
		}
		if ds.Status != catalog.StatusPublished {
			return "", nil, fault.Precondition("DATASET_RETIRED", string(ds.ID), "dataset %s is retired", ds.ID)
		}
		if ds.Owner() == actor.Dept {
			return "", nil, fault.Precondition("OWN_DATASET", string(ds.ID), "dataset %s belongs to your own department", ds.ID)
		}
		if ds.ShareType == catalog.ShareNone {
			return "", nil, fault.Precondition("SHARE_TYPE_NONE", string(ds.ID), "dataset %s is not shared (share type none): its owner %s lists it in the catalog but shares it with no department", ds.ID, ds.Owner())
		}
		fields, err := checkFields("fields", in.Fields, ds)
		if err != nil {
			return "", nil, err
		}
		var dup error
		_ = txn.Scan("rqd/"+string(ds.ID)+"/", "", func(_ string, val []byte) (bool, error) {
			var id shares.RequestID
			if json.Unmarshal(val, &id) == nil {
				if r, err := shares.GetRequest(txn, id); err == nil && r.Requester == actor.Dept {
					dup = fault.Precondition("REQUEST_PENDING", string(id), "request %s of %s for %s is already pending", id, actor.Dept, ds.ID)
					return false, nil
				}
			}
			return true, nil
		})
		if dup != nil {
			return "", nil, dup
		}
		if n := cp.pendingOf(actor.Dept); n >= cp.cfg.MaxPendingRequests {
			return "", nil, fault.Exhausted("dept:"+string(actor.Dept), "department %s has %d share requests pending, the most the hub allows (%d): wait for decisions or withdraw some", actor.Dept, n, cp.cfg.MaxPendingRequests)
		}
		m, err := readMeta(txn)
		if err != nil {
			return "", nil, err
		}
		share = ds.ShareType
		req = shares.Request{
			ID: shares.RequestIDAt(m.Applied + 1), Requester: actor.Dept, Dataset: ds.ID, Fields: fields, Purpose: purpose, Days: days,
			Status: shares.RequestPending, RequestedBy: actor.URI(), Deadline: now.AddDate(0, 0, cp.cfg.ResponseDays),
		}
		return string(ds.ID), req, nil
	})
	if err != nil {
		return shares.Request{}, nil, 0, err
	}
	if share == catalog.ShareOpen {
		g, gseq, err := cp.grantOpen(ctx, req.ID)
		if err != nil {
			// The request stands; the sweeper grants it when the log is
			// reachable again.
			cp.lg.Warn("open grant deferred", "request", req.ID, "err", err)
		} else {
			r, _ := cp.Request(req.ID)
			return r, &g, gseq, nil
		}
	} else {
		cp.publishEvent(req.Dataset.Owner(), shares.KindShareRequested, req.ID)
	}
	r, err := cp.Request(req.ID)
	return r, nil, seq, err
}

// grantOpen grants a pending request on an open dataset, as the policy.
func (cp *ControlPlane) grantOpen(ctx context.Context, id shares.RequestID) (shares.Grant, uint64, error) {
	var gid shares.GrantID
	seq, err := cp.submit(ctx, OpenSharingPolicy, shares.KindGrantCreated, func(txn *store.Txn, now time.Time) (string, any, error) {
		r, err := shares.GetRequest(txn, id)
		if err != nil {
			return "", nil, err
		}
		if r.Status != shares.RequestPending {
			return "", nil, fault.Precondition("REQUEST_STATE", string(id), "request %s is %s, not pending", id, r.Status)
		}
		ds, err := getDataset(txn, r.Dataset)
		if err != nil {
			return "", nil, err
		}
		if ds.ShareType != catalog.ShareOpen || ds.Status != catalog.StatusPublished {
			return "", nil, fault.Precondition("SHARE_TYPE", string(ds.ID), "dataset %s is no longer open", ds.ID)
		}
		fields := r.Fields
		if len(fields) == 0 {
			fields = allFields(ds)
		}
		m, err := readMeta(txn)
		if err != nil {
			return "", nil, err
		}
		gid = shares.GrantIDAt(m.Applied + 1)
		return string(ds.ID), shares.GrantBody{Request: id, Grant: gid, Fields: fields, ExpiresAt: now.AddDate(0, 0, r.Days), Reason: "open sharing"}, nil
	})
	if err != nil {
		return shares.Grant{}, 0, err
	}
	g, err := cp.Grant(gid)
	return g, seq, err
}

// Decision is an owner's answer to a request.
type Decision struct {
	Request shares.RequestID
	Fields  []string // approve: narrow to these (empty: as requested)
	Days    int      // approve: shorten to this (0: as requested)
	Reason  string   // reject: required
}

// Approve grants a pending conditional request, possibly narrowed.
func (cp *ControlPlane) Approve(ctx context.Context, actor vocab.Identity, d Decision) (shares.Request, shares.Grant, uint64, error) {
	if _, err := shares.ParseRequestID(string(d.Request)); err != nil {
		return shares.Request{}, shares.Grant{}, 0, err
	}
	if err := checkReason(d.Reason, false); err != nil {
		return shares.Request{}, shares.Grant{}, 0, err
	}
	var gid shares.GrantID
	seq, err := cp.submit(ctx, actor, shares.KindShareApproved, func(txn *store.Txn, now time.Time) (string, any, error) {
		r, ds, err := cp.pendingFor(txn, actor, d.Request, "approve requests for it")
		if err != nil {
			return "", nil, err
		}
		requested := r.Fields
		if len(requested) == 0 {
			requested = allFields(ds)
		}
		fields := requested
		if len(d.Fields) > 0 {
			if fields, err = checkFields("fields", d.Fields, ds); err != nil {
				return "", nil, err
			}
			if f, ok := subsetOf(fields, requested); !ok {
				return "", nil, fault.Invalid("fields", "field %q was not requested; an approval may only narrow the request (%s)", f, strings.Join(requested, ", "))
			}
		}
		days := r.Days
		if d.Days != 0 {
			if d.Days < 1 || d.Days > r.Days {
				return "", nil, fault.Invalid("days", "%d is not between 1 and the %d days requested", d.Days, r.Days)
			}
			days = d.Days
		}
		m, err := readMeta(txn)
		if err != nil {
			return "", nil, err
		}
		gid = shares.GrantIDAt(m.Applied + 1)
		return string(ds.ID), shares.GrantBody{Request: r.ID, Grant: gid, Fields: fields, ExpiresAt: now.AddDate(0, 0, days), Reason: strings.TrimSpace(d.Reason)}, nil
	})
	if err != nil {
		return shares.Request{}, shares.Grant{}, 0, err
	}
	r, _ := cp.Request(d.Request)
	g, err := cp.Grant(gid)
	cp.publishEvent(r.Requester, shares.KindShareApproved, r.ID)
	return r, g, seq, err
}

// pendingFor loads a pending request and its dataset and checks that actor
// may decide it.
func (cp *ControlPlane) pendingFor(txn *store.Txn, actor vocab.Identity, id shares.RequestID, what string) (shares.Request, catalog.Dataset, error) {
	r, err := shares.GetRequest(txn, id)
	if err != nil {
		return r, catalog.Dataset{}, err
	}
	if err := mayDecide(actor, r.Dataset.Owner(), what); err != nil {
		return r, catalog.Dataset{}, err
	}
	if r.Status != shares.RequestPending {
		return r, catalog.Dataset{}, fault.Precondition("REQUEST_STATE", string(id), "request %s is already %s", id, r.Status)
	}
	ds, err := getDataset(txn, r.Dataset)
	return r, ds, err
}

// Reject refuses a pending request; the reason is required.
func (cp *ControlPlane) Reject(ctx context.Context, actor vocab.Identity, d Decision) (shares.Request, uint64, error) {
	if _, err := shares.ParseRequestID(string(d.Request)); err != nil {
		return shares.Request{}, 0, err
	}
	if err := checkReason(d.Reason, true); err != nil {
		return shares.Request{}, 0, err
	}
	seq, err := cp.submit(ctx, actor, shares.KindShareRejected, func(txn *store.Txn, _ time.Time) (string, any, error) {
		r, _, err := cp.pendingFor(txn, actor, d.Request, "reject requests for it")
		if err != nil {
			return "", nil, err
		}
		return string(r.Dataset), shares.Decided{Request: r.ID, Reason: strings.TrimSpace(d.Reason)}, nil
	})
	if err != nil {
		return shares.Request{}, 0, err
	}
	r, err := cp.Request(d.Request)
	cp.publishEvent(r.Requester, shares.KindShareRejected, r.ID)
	return r, seq, err
}

// Withdraw takes back a pending request; only the requester's officer.
func (cp *ControlPlane) Withdraw(ctx context.Context, actor vocab.Identity, id shares.RequestID) (shares.Request, uint64, error) {
	if _, err := shares.ParseRequestID(string(id)); err != nil {
		return shares.Request{}, 0, err
	}
	seq, err := cp.submit(ctx, actor, shares.KindShareWithdrawn, func(txn *store.Txn, _ time.Time) (string, any, error) {
		r, err := shares.GetRequest(txn, id)
		if err != nil {
			return "", nil, err
		}
		if actor.Role != vocab.RoleOfficer || actor.Dept != r.Requester {
			return "", nil, fault.Denied("%s: only an officer of %s (the requester) may withdraw request %s", actor.URI(), r.Requester, id)
		}
		if r.Status != shares.RequestPending {
			return "", nil, fault.Precondition("REQUEST_STATE", string(id), "request %s is already %s", id, r.Status)
		}
		return string(r.Dataset), shares.Decided{Request: id}, nil
	})
	if err != nil {
		return shares.Request{}, 0, err
	}
	r, err := cp.Request(id)
	return r, seq, err
}

// RevokeGrant ends a grant before its term; the reason is required. Open
// streams of the grantee end at once (the data plane watches the grant
// index).
func (cp *ControlPlane) RevokeGrant(ctx context.Context, actor vocab.Identity, id shares.GrantID, reason string) (shares.Grant, uint64, error) {
	if _, err := shares.ParseGrantID(string(id)); err != nil {
		return shares.Grant{}, 0, err
	}
	if err := checkReason(reason, true); err != nil {
		return shares.Grant{}, 0, err
	}
	seq, err := cp.submit(ctx, actor, shares.KindGrantRevoked, func(txn *store.Txn, now time.Time) (string, any, error) {
		g, err := shares.GetGrant(txn, id)
		if err != nil {
			return "", nil, err
		}
		if err := mayDecide(actor, g.Dataset.Owner(), "revoke grants on it"); err != nil {
			return "", nil, err
		}
		if st := g.StatusAt(now); st != shares.GrantActive {
			return "", nil, fault.Precondition("GRANT_STATE", string(id), "grant %s is already %s", id, st)
		}
		return string(g.Dataset), shares.Ended{Grant: id, Reason: strings.TrimSpace(reason)}, nil
	})
	if err != nil {
		return shares.Grant{}, 0, err
	}
	g, err := cp.Grant(id)
	cp.publishEvent(g.Grantee, shares.KindGrantRevoked, g.ID)
	return g, seq, err
}

// expireGrant appends grant.expired for a grant past its expiry. Several
// nodes may try at once; expected-last-sequence lets one append it and the
// others find it no longer active when they re-validate.
func (cp *ControlPlane) expireGrant(ctx context.Context, id shares.GrantID) (uint64, error) {
	return cp.submit(ctx, ExpiryPolicy, shares.KindGrantExpired, func(txn *store.Txn, now time.Time) (string, any, error) {
		g, err := shares.GetGrant(txn, id)
		if err != nil {
			return "", nil, err
		}
		if g.Status != shares.GrantActive {
			return "", nil, errAlreadyEnded
		}
		if now.Before(g.ExpiresAt) {
			return "", nil, errNotDue
		}
		return string(g.Dataset), shares.Ended{Grant: id}, nil
	})
}

// Outcomes of expireGrant that are not failures: another node got there
// first, or the clock of this one is behind.
var (
	errAlreadyEnded = &fault.Error{Kind: fault.KindPrecondition, Msg: "grant already ended"}
	errNotDue       = &fault.Error{Kind: fault.KindPrecondition, Msg: "grant not yet due to expire"}
)

// Event is what officers receive on their department's event subject
// (bus.EventPrefix + dept).
type Event struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
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

// Limits on share input.
const (
	MaxPurposeLen = 2000
	MaxFields     = 512
)

// checkFields checks requested fields against a dataset's fields: each must
// exist, none twice. It returns them sorted.
func checkFields(field string, want []string, ds catalog.Dataset) ([]string, error) {
	if len(want) > MaxFields {
		return nil, fault.Invalid(field, "%d fields, at most %d", len(want), MaxFields)
	}
	have := make(map[string]bool, len(ds.Fields))
	names := make([]string, len(ds.Fields))
	for i, f := range ds.Fields {
		have[f.Name], names[i] = true, f.Name
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(want))
	for _, f := range want {
		if !have[f] {
			return nil, fault.Invalid(field, "field %q is not in dataset %s (its fields: %s)", f, ds.ID, strings.Join(names, ", "))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out, nil
}

func allFields(ds catalog.Dataset) []string {
	out := make([]string, len(ds.Fields))
	for i, f := range ds.Fields {
		out[i] = f.Name
	}
	slices.Sort(out)
	return out
}

// subsetOf reports whether every element of a is in b.
func subsetOf(a, b []string) (string, bool) {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return x, false
		}
	}
	return "", true
}
