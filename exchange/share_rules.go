package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/fault"
	"github.com/xhub-gov/xhub/internal/store"
)

// Entry kinds of the share workflow.
const (
	KindShareRequested = "share.requested"
	KindShareApproved  = "share.approved" // creates a grant
	KindShareRejected  = "share.rejected"
	KindShareWithdrawn = "share.withdrawn"
	KindGrantCreated   = "grant.created" // by the open-sharing policy
	KindGrantRevoked   = "grant.revoked"
	KindGrantExpired   = "grant.expired"
)

// OpenSharingPolicy is the actor of grants made for open datasets.
var OpenSharingPolicy = vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "open-sharing"}

// ExpiryPolicy is the actor of grant.expired entries.
var ExpiryPolicy = vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "expiry"}

// grantBody is the body of share.approved and grant.created.
type grantBody struct {
	Request   RequestID `json:"request"`
	Grant     GrantID   `json:"grant"`
	Fields    []string  `json:"fields"`
	ExpiresAt time.Time `json:"expires_at"`
	Reason    string    `json:"reason,omitempty"`
}

type requestDecision struct {
	Request RequestID `json:"request"`
	Reason  string    `json:"reason,omitempty"`
}

type grantEnd struct {
	Grant  GrantID `json:"grant"`
	Reason string  `json:"reason,omitempty"`
}

func requestKey(id RequestID) string {
	seq, _ := idSeq(string(id), "r-")
	return fmt.Sprintf("rq/%016x", seq)
}

func grantKey(id GrantID) string {
	seq, _ := idSeq(string(id), "g-")
	return fmt.Sprintf("gr/%016x", seq)
}

func grantByDatasetKey(ds catalog.DatasetID, id GrantID) string {
	seq, _ := idSeq(string(id), "g-")
	return fmt.Sprintf("grd/%s/%016x", ds, seq)
}

func pendingByDatasetKey(ds catalog.DatasetID, id RequestID) string {
	seq, _ := idSeq(string(id), "r-")
	return fmt.Sprintf("rqd/%s/%016x", ds, seq)
}

func getDataset(txn views, id catalog.DatasetID) (catalog.Dataset, error) {
	var d catalog.Dataset
	ok, err := txn.Get(catalog.DatasetKey(id), &d)
	if err == nil && !ok {
		err = fault.NotFound("dataset %s is not in the catalog", id)
	}
	return d, err
}

func getRequest(txn views, id RequestID) (ShareRequest, error) {
	var r ShareRequest
	ok, err := txn.Get(requestKey(id), &r)
	if err == nil && !ok {
		err = fault.NotFound("share request %s does not exist", id)
	}
	return r, err
}

func getGrant(txn views, id GrantID) (Grant, error) {
	var g Grant
	ok, err := txn.Get(grantKey(id), &g)
	if err == nil && !ok {
		err = fault.NotFound("grant %s does not exist", id)
	}
	return g, err
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
func (cp *ControlPlane) RequestShare(ctx context.Context, actor vocab.Identity, in ShareRequestInput) (ShareRequest, *Grant, uint64, error) {
	if actor.Role != vocab.RoleOfficer {
		return ShareRequest{}, nil, 0, fault.Denied("%s: only a data officer requests data", actor.URI())
	}
	if _, err := catalog.ParseDatasetID(string(in.Dataset)); err != nil {
		return ShareRequest{}, nil, 0, err
	}
	purpose := strings.TrimSpace(in.Purpose)
	if purpose == "" {
		return ShareRequest{}, nil, 0, fault.Invalid("purpose", "is required: say what the data is for")
	}
	if len(purpose) > MaxPurposeLen {
		return ShareRequest{}, nil, 0, fault.Invalid("purpose", "is %d bytes, at most %d", len(purpose), MaxPurposeLen)
	}
	days := in.Days
	if days == 0 {
		days = cp.cfg.MaxGrantDays
	}
	if days < 1 || days > cp.cfg.MaxGrantDays {
		return ShareRequest{}, nil, 0, fault.Invalid("days", "%d is not between 1 and %d (the hub's longest grant)", days, cp.cfg.MaxGrantDays)
	}
	var req ShareRequest
	var share catalog.ShareType
	seq, err := cp.submit(ctx, actor, KindShareRequested, func(txn *store.Txn, now time.Time) (string, any, error) {
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
			var id RequestID
			if json.Unmarshal(val, &id) == nil {
				if r, err := getRequest(txn, id); err == nil && r.Requester == actor.Dept {
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
		req = ShareRequest{
			ID: requestID(m.Applied + 1), Requester: actor.Dept, Dataset: ds.ID, Fields: fields, Purpose: purpose, Days: days,
			Status: RequestPending, RequestedBy: actor.URI(), Deadline: now.AddDate(0, 0, cp.cfg.ResponseDays),
		}
		return string(ds.ID), req, nil
	})
	if err != nil {
		return ShareRequest{}, nil, 0, err
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
		cp.publishEvent(req.Dataset.Owner(), KindShareRequested, req.ID)
	}
	r, err := cp.Request(req.ID)
	return r, nil, seq, err
}

// grantOpen grants a pending request on an open dataset, as the policy.
func (cp *ControlPlane) grantOpen(ctx context.Context, id RequestID) (Grant, uint64, error) {
	var gid GrantID
	seq, err := cp.submit(ctx, OpenSharingPolicy, KindGrantCreated, func(txn *store.Txn, now time.Time) (string, any, error) {
		r, err := getRequest(txn, id)
		if err != nil {
			return "", nil, err
		}
		if r.Status != RequestPending {
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
		gid = grantID(m.Applied + 1)
		return string(ds.ID), grantBody{Request: id, Grant: gid, Fields: fields, ExpiresAt: now.AddDate(0, 0, r.Days), Reason: "open sharing"}, nil
	})
	if err != nil {
		return Grant{}, 0, err
	}
	g, err := cp.Grant(gid)
	return g, seq, err
}

// Decision is an owner's answer to a request.
type Decision struct {
	Request RequestID
	Fields  []string // approve: narrow to these (empty: as requested)
	Days    int      // approve: shorten to this (0: as requested)
	Reason  string   // reject: required
}

// Approve grants a pending conditional request, possibly narrowed.
func (cp *ControlPlane) Approve(ctx context.Context, actor vocab.Identity, d Decision) (ShareRequest, Grant, uint64, error) {
	if _, err := ParseRequestID(string(d.Request)); err != nil {
		return ShareRequest{}, Grant{}, 0, err
	}
	if err := checkReason(d.Reason, false); err != nil {
		return ShareRequest{}, Grant{}, 0, err
	}
	var gid GrantID
	seq, err := cp.submit(ctx, actor, KindShareApproved, func(txn *store.Txn, now time.Time) (string, any, error) {
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
		gid = grantID(m.Applied + 1)
		return string(ds.ID), grantBody{Request: r.ID, Grant: gid, Fields: fields, ExpiresAt: now.AddDate(0, 0, days), Reason: strings.TrimSpace(d.Reason)}, nil
	})
	if err != nil {
		return ShareRequest{}, Grant{}, 0, err
	}
	r, _ := cp.Request(d.Request)
	g, err := cp.Grant(gid)
	cp.publishEvent(r.Requester, KindShareApproved, r.ID)
	return r, g, seq, err
}

// pendingFor loads a pending request and its dataset and checks that actor
// may decide it.
func (cp *ControlPlane) pendingFor(txn *store.Txn, actor vocab.Identity, id RequestID, what string) (ShareRequest, catalog.Dataset, error) {
	r, err := getRequest(txn, id)
	if err != nil {
		return r, catalog.Dataset{}, err
	}
	if err := mayDecide(actor, r.Dataset.Owner(), what); err != nil {
		return r, catalog.Dataset{}, err
	}
	if r.Status != RequestPending {
		return r, catalog.Dataset{}, fault.Precondition("REQUEST_STATE", string(id), "request %s is already %s", id, r.Status)
	}
	ds, err := getDataset(txn, r.Dataset)
	return r, ds, err
}

// Reject refuses a pending request; the reason is required.
func (cp *ControlPlane) Reject(ctx context.Context, actor vocab.Identity, d Decision) (ShareRequest, uint64, error) {
	if _, err := ParseRequestID(string(d.Request)); err != nil {
		return ShareRequest{}, 0, err
	}
	if err := checkReason(d.Reason, true); err != nil {
		return ShareRequest{}, 0, err
	}
	seq, err := cp.submit(ctx, actor, KindShareRejected, func(txn *store.Txn, _ time.Time) (string, any, error) {
		r, _, err := cp.pendingFor(txn, actor, d.Request, "reject requests for it")
		if err != nil {
			return "", nil, err
		}
		return string(r.Dataset), requestDecision{Request: r.ID, Reason: strings.TrimSpace(d.Reason)}, nil
	})
	if err != nil {
		return ShareRequest{}, 0, err
	}
	r, err := cp.Request(d.Request)
	cp.publishEvent(r.Requester, KindShareRejected, r.ID)
	return r, seq, err
}

// Withdraw takes back a pending request; only the requester's officer.
func (cp *ControlPlane) Withdraw(ctx context.Context, actor vocab.Identity, id RequestID) (ShareRequest, uint64, error) {
	if _, err := ParseRequestID(string(id)); err != nil {
		return ShareRequest{}, 0, err
	}
	seq, err := cp.submit(ctx, actor, KindShareWithdrawn, func(txn *store.Txn, _ time.Time) (string, any, error) {
		r, err := getRequest(txn, id)
		if err != nil {
			return "", nil, err
		}
		if actor.Role != vocab.RoleOfficer || actor.Dept != r.Requester {
			return "", nil, fault.Denied("%s: only an officer of %s (the requester) may withdraw request %s", actor.URI(), r.Requester, id)
		}
		if r.Status != RequestPending {
			return "", nil, fault.Precondition("REQUEST_STATE", string(id), "request %s is already %s", id, r.Status)
		}
		return string(r.Dataset), requestDecision{Request: id}, nil
	})
	if err != nil {
		return ShareRequest{}, 0, err
	}
	r, err := cp.Request(id)
	return r, seq, err
}

// RevokeGrant ends a grant before its term; the reason is required. Open
// streams of the grantee end at once (the data plane watches the grant
// index).
func (cp *ControlPlane) RevokeGrant(ctx context.Context, actor vocab.Identity, id GrantID, reason string) (Grant, uint64, error) {
	if _, err := ParseGrantID(string(id)); err != nil {
		return Grant{}, 0, err
	}
	if err := checkReason(reason, true); err != nil {
		return Grant{}, 0, err
	}
	seq, err := cp.submit(ctx, actor, KindGrantRevoked, func(txn *store.Txn, now time.Time) (string, any, error) {
		g, err := getGrant(txn, id)
		if err != nil {
			return "", nil, err
		}
		if err := mayDecide(actor, g.Dataset.Owner(), "revoke grants on it"); err != nil {
			return "", nil, err
		}
		if st := g.StatusAt(now); st != GrantActive {
			return "", nil, fault.Precondition("GRANT_STATE", string(id), "grant %s is already %s", id, st)
		}
		return string(g.Dataset), grantEnd{Grant: id, Reason: strings.TrimSpace(reason)}, nil
	})
	if err != nil {
		return Grant{}, 0, err
	}
	g, err := cp.Grant(id)
	cp.publishEvent(g.Grantee, KindGrantRevoked, g.ID)
	return g, seq, err
}

// expireGrant appends grant.expired for a grant past its expiry. Several
// nodes may try at once; expected-last-sequence lets one append it and the
// others find it no longer active when they re-validate.
func (cp *ControlPlane) expireGrant(ctx context.Context, id GrantID) (uint64, error) {
	return cp.submit(ctx, ExpiryPolicy, KindGrantExpired, func(txn *store.Txn, now time.Time) (string, any, error) {
		g, err := getGrant(txn, id)
		if err != nil {
			return "", nil, err
		}
		if g.Status != GrantActive {
			return "", nil, errAlreadyEnded
		}
		if now.Before(g.ExpiresAt) {
			return "", nil, errNotDue
		}
		return string(g.Dataset), grantEnd{Grant: id}, nil
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

// applyShare materialises the share workflow's entries.
func (cp *ControlPlane) applyShare(txn views, e ledger.Entry) (func(), error) {
	switch e.Kind {
	case KindShareRequested:
		var r ShareRequest
		if err := json.Unmarshal(e.Body, &r); err != nil {
			return nil, err
		}
		if r.ID != requestID(e.Seq) {
			return nil, fmt.Errorf("request id %s in entry %d", r.ID, e.Seq)
		}
		r.RequestedAt, r.Seq = e.Time, e.Seq
		if err := txn.Put(requestKey(r.ID), r); err != nil {
			return nil, err
		}
		if err := txn.Put(pendingByDatasetKey(r.Dataset, r.ID), r.ID); err != nil {
			return nil, err
		}
		return func() { cp.pending[r.ID] = r }, nil

	case KindShareApproved, KindGrantCreated:
		var b grantBody
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return nil, err
		}
		if b.Grant != grantID(e.Seq) {
			return nil, fmt.Errorf("grant id %s in entry %d", b.Grant, e.Seq)
		}
		r, err := getRequest(txn, b.Request)
		if err != nil {
			return nil, err
		}
		if r.Status != RequestPending {
			return nil, fmt.Errorf("request %s is %s", r.ID, r.Status)
		}
		g := Grant{
			ID: b.Grant, Grantee: r.Requester, Dataset: r.Dataset, Fields: b.Fields, GrantedAt: e.Time, ExpiresAt: b.ExpiresAt,
			GrantedBy: e.Actor, Status: GrantActive, Request: r.ID, Reason: b.Reason, Seq: e.Seq,
		}
		r.Status, r.DecidedBy, r.DecidedAt, r.Grant, r.Reason, r.Seq = RequestApproved, e.Actor, e.Time, g.ID, b.Reason, e.Seq
		if err := cp.putDecided(txn, r); err != nil {
			return nil, err
		}
		if err := txn.Put(grantKey(g.ID), g); err != nil {
			return nil, err
		}
		if err := txn.Put(grantByDatasetKey(g.Dataset, g.ID), g.ID); err != nil {
			return nil, err
		}
		return func() { delete(cp.pending, r.ID); cp.grants.put(g) }, nil

	case KindShareRejected, KindShareWithdrawn:
		var b requestDecision
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return nil, err
		}
		r, err := getRequest(txn, b.Request)
		if err != nil {
			return nil, err
		}
		if r.Status != RequestPending {
			return nil, fmt.Errorf("request %s is %s", r.ID, r.Status)
		}
		status := RequestRejected
		if e.Kind == KindShareWithdrawn {
			status = RequestWithdrawn
		}
		r.decide(status, e, b.Reason)
		if err := cp.putDecided(txn, r); err != nil {
			return nil, err
		}
		return func() { delete(cp.pending, r.ID) }, nil

	case KindGrantRevoked, KindGrantExpired:
		var b grantEnd
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return nil, err
		}
		g, err := getGrant(txn, b.Grant)
		if err != nil {
			return nil, err
		}
		if g.Status != GrantActive {
			return nil, fmt.Errorf("grant %s is %s", g.ID, g.Status)
		}
		if e.Kind == KindGrantExpired {
			g.end(GrantExpired, e, "")
		} else {
			g.end(GrantRevoked, e, b.Reason)
		}
		if err := txn.Put(grantKey(g.ID), g); err != nil {
			return nil, err
		}
		return func() { cp.grants.put(g) }, nil
	}
	return nil, fmt.Errorf("entry kind %q is not the share workflow's", e.Kind)
}

// putDecided stores a request that is no longer pending.
// decide moves a pending request to status, as entry e records it.
func (r *ShareRequest) decide(status RequestStatus, e ledger.Entry, reason string) {
	r.Status, r.DecidedBy, r.DecidedAt, r.Reason, r.Seq = status, e.Actor, e.Time, reason, e.Seq
}

// end moves an active grant to status, as entry e records it.
func (g *Grant) end(status GrantStatus, e ledger.Entry, reason string) {
	g.Status, g.EndedAt, g.Reason, g.Seq = status, e.Time, reason, e.Seq
}

func (cp *ControlPlane) putDecided(txn views, r ShareRequest) error {
	if err := txn.Put(requestKey(r.ID), r); err != nil {
		return err
	}
	return txn.Delete(pendingByDatasetKey(r.Dataset, r.ID))
}

// endForRetirement ends the active grants of a retired dataset and rejects
// its pending requests, inside the retirement's own transaction.
// applyRetirementToShares ends the grants on a retired dataset and
// rejects its pending requests, in the dataset.retired entry itself.
func (cp *ControlPlane) applyRetirementToShares(txn views, e ledger.Entry) (func(), error) {
	var r catalog.Retirement
	if err := json.Unmarshal(e.Body, &r); err != nil {
		return nil, err
	}
	return cp.endForRetirement(txn, e, r.ID)
}

func (cp *ControlPlane) endForRetirement(txn views, e ledger.Entry, ds catalog.DatasetID) (func(), error) {
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
			g.end(GrantEnded, e, "dataset retired")
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
		r.decide(RequestRejected, e, "dataset retired")
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
