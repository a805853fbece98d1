// Package shares owns the share workflow's state machine: share requests
// and grants, their ids and states, the entry kinds that change them, the
// keys of their views, and how each entry changes them. Apply functions
// read and write only the Views they are given and take time from the
// entry: every node that applies the same entries holds the same views.
// Package exchange checks commands, appends them to the log and keeps the
// in-memory grant index from the Changes these functions report.
package shares

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// Views are JSON values by key, in one transaction.
type Views interface {
	Get(key string, v any) (bool, error)
	Put(key string, v any) error
	Delete(key string) error
	Scan(prefix, after string, fn func(key string, val []byte) (bool, error)) error
}

// Change is what an entry changed: the requests and grants as they are
// now (a request no longer pending, a grant no longer active, are among
// them too).
type Change struct {
	Requests []Request
	Grants   []Grant
}

// The entry kinds of the share workflow are named in exchange/ledger (kinds.go).

// RequestID identifies a share request: "r-<seq>", the sequence of the
// ledger entry that made it.
type RequestID string

// GrantID identifies a grant: "g-<seq>", the sequence of the ledger entry
// that created it.
type GrantID string

func RequestIDAt(seq uint64) RequestID { return RequestID("r-" + strconv.FormatUint(seq, 10)) }

func GrantIDAt(seq uint64) GrantID { return GrantID("g-" + strconv.FormatUint(seq, 10)) }

// ParseRequestID checks s.
func ParseRequestID(s string) (RequestID, error) {
	if _, err := idSeq(s, "r-"); err != nil {
		return "", vocab.Invalid("request", "%q is not a request id (r-<number>)", s)
	}
	return RequestID(s), nil
}

// ParseGrantID checks s.
func ParseGrantID(s string) (GrantID, error) {
	if _, err := idSeq(s, "g-"); err != nil {
		return "", vocab.Invalid("grant", "%q is not a grant id (g-<number>)", s)
	}
	return GrantID(s), nil
}

func idSeq(s, prefix string) (uint64, error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || rest == "" || len(rest) > 20 || rest[0] == '0' {
		return 0, fmt.Errorf("bad id")
	}
	return strconv.ParseUint(rest, 10, 64)
}

// RequestStatus is a share request's state.
type RequestStatus string

const (
	RequestPending   RequestStatus = "pending"
	RequestApproved  RequestStatus = "approved"
	RequestRejected  RequestStatus = "rejected"
	RequestWithdrawn RequestStatus = "withdrawn"
)

// GrantStatus is a grant's state.
type GrantStatus string

const (
	GrantActive  GrantStatus = "active"
	GrantRevoked GrantStatus = "revoked"
	GrantExpired GrantStatus = "expired"
	GrantEnded   GrantStatus = "ended" // the dataset was retired
)

// Request is one department's request for another's dataset.
// Requested is the body of a share.requested entry: the request as the
// command made it. Its status (pending), when it was made and by which
// entry (Request.Status, RequestedAt, Seq) are the log's, set by the
// apply. (Bodies appended before this type carry "status":"pending" and
// the others as zero values; the apply ignores them.)
type Requested struct {
	ID          RequestID         `json:"id"`
	Requester   catalog.DeptID    `json:"requester"`
	Dataset     catalog.DatasetID `json:"dataset"`
	Fields      []string          `json:"fields,omitempty"` // empty: all fields
	Purpose     string            `json:"purpose"`
	Days        int               `json:"days"`
	RequestedBy string            `json:"requested_by"`
	Deadline    time.Time         `json:"deadline"`
}

// Body is the share.requested body of a request NewRequest made.
func (r Request) Body() Requested {
	return Requested{ID: r.ID, Requester: r.Requester, Dataset: r.Dataset, Fields: r.Fields, Purpose: r.Purpose, Days: r.Days, RequestedBy: r.RequestedBy, Deadline: r.Deadline}
}

type Request struct {
	ID          RequestID         `json:"id"`
	Requester   catalog.DeptID    `json:"requester"`
	Dataset     catalog.DatasetID `json:"dataset"`
	Fields      []string          `json:"fields,omitempty"` // empty: all fields
	Purpose     string            `json:"purpose"`
	Days        int               `json:"days"`
	Status      RequestStatus     `json:"status"`
	Reason      string            `json:"reason,omitempty"`
	RequestedBy string            `json:"requested_by"`
	RequestedAt time.Time         `json:"requested_at"`
	Deadline    time.Time         `json:"deadline"`
	DecidedBy   string            `json:"decided_by,omitempty"`
	DecidedAt   time.Time         `json:"decided_at,omitzero"`
	Grant       GrantID           `json:"grant,omitempty"`
	Seq         uint64            `json:"seq"`
}

// Overdue reports a pending request past its response deadline.
func (r *Request) Overdue(now time.Time) bool {
	return r.Status == RequestPending && now.After(r.Deadline)
}

// Grant is the right of one department to read given fields of one dataset
// until ExpiresAt.
type Grant struct {
	ID        GrantID           `json:"id"`
	Grantee   catalog.DeptID    `json:"grantee"`
	Dataset   catalog.DatasetID `json:"dataset"`
	Fields    []string          `json:"fields"` // always explicit
	GrantedAt time.Time         `json:"granted_at"`
	ExpiresAt time.Time         `json:"expires_at"`
	GrantedBy string            `json:"granted_by"`
	Status    GrantStatus       `json:"status"`
	Request   RequestID         `json:"request"`
	Reason    string            `json:"reason,omitempty"`
	EndedAt   time.Time         `json:"ended_at,omitzero"`
	Seq       uint64            `json:"seq"`
}

// ActiveAt reports whether the grant allows reading at now. Expiry is
// decided by the clock on every call, never by whether the expiry entry has
// been written yet.
func (g *Grant) ActiveAt(now time.Time) bool {
	return g.Status == GrantActive && now.Before(g.ExpiresAt)
}

// StatusAt is the status as of now: an active grant past its expiry is
// expired even before its grant.expired entry is appended.
func (g *Grant) StatusAt(now time.Time) GrantStatus {
	if g.Status == GrantActive && !now.Before(g.ExpiresAt) {
		return GrantExpired
	}
	return g.Status
}

// GrantBody is the body of share.approved and grant.created.
type GrantBody struct {
	Request   RequestID `json:"request"`
	Grant     GrantID   `json:"grant"`
	Fields    []string  `json:"fields"`
	ExpiresAt time.Time `json:"expires_at"`
	Reason    string    `json:"reason,omitempty"`
}

type Decided struct {
	Request RequestID `json:"request"`
	Reason  string    `json:"reason,omitempty"`
}

type Ended struct {
	Grant  GrantID `json:"grant"`
	Reason string  `json:"reason,omitempty"`
}

func RequestKey(id RequestID) string {
	seq, _ := idSeq(string(id), "r-")
	return keyspace.ShareRequests.Key(fmt.Sprintf("%016x", seq))
}

func GrantKey(id GrantID) string {
	seq, _ := idSeq(string(id), "g-")
	return keyspace.Grants.Key(fmt.Sprintf("%016x", seq))
}

func GrantByDatasetKey(ds catalog.DatasetID, id GrantID) string {
	seq, _ := idSeq(string(id), "g-")
	return GrantsByDatasetPrefix(ds) + fmt.Sprintf("%016x", seq)
}

// GrantsByDatasetPrefix starts the keys of the grant index of ds.
func GrantsByDatasetPrefix(ds catalog.DatasetID) string {
	return keyspace.GrantsByDataset.Key(string(ds) + "/")
}

func PendingByDatasetKey(ds catalog.DatasetID, id RequestID) string {
	seq, _ := idSeq(string(id), "r-")
	return PendingByDatasetPrefix(ds) + fmt.Sprintf("%016x", seq)
}

// PendingByDatasetPrefix starts the keys of the pending requests of ds.
func PendingByDatasetPrefix(ds catalog.DatasetID) string {
	return keyspace.PendingByDataset.Key(string(ds) + "/")
}

// RequestPrefix and GrantPrefix start every request's and every grant's
// key.
const (
	RequestPrefix = string(keyspace.ShareRequests)
	GrantPrefix   = string(keyspace.Grants)
)

func GetRequest(txn Views, id RequestID) (Request, error) {
	var r Request
	ok, err := txn.Get(RequestKey(id), &r)
	if err == nil && !ok {
		err = vocab.NotFound("share request %s does not exist", id)
	}
	return r, err
}

func GetGrant(txn Views, id GrantID) (Grant, error) {
	var g Grant
	ok, err := txn.Get(GrantKey(id), &g)
	if err == nil && !ok {
		err = vocab.NotFound("grant %s does not exist", id)
	}
	return g, err
}

// Apply applies an entry of the share workflow and says what changed.
func Apply(txn Views, e ledger.Entry) (Change, error) {
	switch e.Kind {
	case ledger.KindShareRequested:
		var b Requested
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return Change{}, err
		}
		r := Request{ID: b.ID, Requester: b.Requester, Dataset: b.Dataset, Fields: b.Fields, Purpose: b.Purpose, Days: b.Days, Status: RequestPending, RequestedBy: b.RequestedBy, Deadline: b.Deadline}
		if r.ID != RequestIDAt(e.Seq) {
			return Change{}, fmt.Errorf("request id %s in entry %d", r.ID, e.Seq)
		}
		r.RequestedAt, r.Seq = e.Time, e.Seq
		if err := txn.Put(RequestKey(r.ID), r); err != nil {
			return Change{}, err
		}
		if err := txn.Put(PendingByDatasetKey(r.Dataset, r.ID), r.ID); err != nil {
			return Change{}, err
		}
		return Change{Requests: []Request{r}}, nil

	case ledger.KindShareApproved, ledger.KindGrantCreated:
		var b GrantBody
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return Change{}, err
		}
		if b.Grant != GrantIDAt(e.Seq) {
			return Change{}, fmt.Errorf("grant id %s in entry %d", b.Grant, e.Seq)
		}
		r, err := GetRequest(txn, b.Request)
		if err != nil {
			return Change{}, err
		}
		if r.Status != RequestPending {
			return Change{}, fmt.Errorf("request %s is %s", r.ID, r.Status)
		}
		g := Grant{
			ID: b.Grant, Grantee: r.Requester, Dataset: r.Dataset, Fields: b.Fields, GrantedAt: e.Time, ExpiresAt: b.ExpiresAt,
			GrantedBy: e.Actor, Status: GrantActive, Request: r.ID, Reason: b.Reason, Seq: e.Seq,
		}
		r.Status, r.DecidedBy, r.DecidedAt, r.Grant, r.Reason, r.Seq = RequestApproved, e.Actor, e.Time, g.ID, b.Reason, e.Seq
		if err := putDecided(txn, r); err != nil {
			return Change{}, err
		}
		if err := txn.Put(GrantKey(g.ID), g); err != nil {
			return Change{}, err
		}
		if err := txn.Put(GrantByDatasetKey(g.Dataset, g.ID), g.ID); err != nil {
			return Change{}, err
		}
		return Change{Requests: []Request{r}, Grants: []Grant{g}}, nil

	case ledger.KindShareRejected, ledger.KindShareWithdrawn:
		var b Decided
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return Change{}, err
		}
		r, err := GetRequest(txn, b.Request)
		if err != nil {
			return Change{}, err
		}
		if r.Status != RequestPending {
			return Change{}, fmt.Errorf("request %s is %s", r.ID, r.Status)
		}
		status := RequestRejected
		if e.Kind == ledger.KindShareWithdrawn {
			status = RequestWithdrawn
		}
		r.decide(status, e, b.Reason)
		if err := putDecided(txn, r); err != nil {
			return Change{}, err
		}
		return Change{Requests: []Request{r}}, nil

	case ledger.KindGrantRevoked, ledger.KindGrantExpired:
		var b Ended
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return Change{}, err
		}
		g, err := GetGrant(txn, b.Grant)
		if err != nil {
			return Change{}, err
		}
		if g.Status != GrantActive {
			return Change{}, fmt.Errorf("grant %s is %s", g.ID, g.Status)
		}
		if e.Kind == ledger.KindGrantExpired {
			g.end(GrantExpired, e, "")
		} else {
			g.end(GrantRevoked, e, b.Reason)
		}
		if err := txn.Put(GrantKey(g.ID), g); err != nil {
			return Change{}, err
		}
		return Change{Grants: []Grant{g}}, nil
	}
	return Change{}, fmt.Errorf("entry kind %q is not the share workflow's", e.Kind)
}

// putDecided stores a request that is no longer pending.
// decide moves a pending request to status, as entry e records it.
func (r *Request) decide(status RequestStatus, e ledger.Entry, reason string) {
	r.Status, r.DecidedBy, r.DecidedAt, r.Reason, r.Seq = status, e.Actor, e.Time, reason, e.Seq
}

// end moves an active grant to status, as entry e records it.
func (g *Grant) end(status GrantStatus, e ledger.Entry, reason string) {
	g.Status, g.EndedAt, g.Reason, g.Seq = status, e.Time, reason, e.Seq
}

func putDecided(txn Views, r Request) error {
	if err := txn.Put(RequestKey(r.ID), r); err != nil {
		return err
	}
	return txn.Delete(PendingByDatasetKey(r.Dataset, r.ID))
}

// ApplyRetirement ends the active grants on a retired dataset and rejects
// its pending requests, as part of the dataset.retired entry e.
func ApplyRetirement(txn Views, e ledger.Entry, ds catalog.DatasetID) (Change, error) {
	var ended []Grant
	var rejected []Request
	err := txn.Scan(GrantsByDatasetPrefix(ds), "", func(_ string, val []byte) (bool, error) {
		var id GrantID
		if err := json.Unmarshal(val, &id); err != nil {
			return false, err
		}
		g, err := GetGrant(txn, id)
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
		return Change{}, err
	}
	var pend []Request
	err = txn.Scan(PendingByDatasetPrefix(ds), "", func(_ string, val []byte) (bool, error) {
		var id RequestID
		if err := json.Unmarshal(val, &id); err != nil {
			return false, err
		}
		r, err := GetRequest(txn, id)
		if err != nil {
			return false, err
		}
		pend = append(pend, r)
		return true, nil
	})
	if err != nil {
		return Change{}, err
	}
	for _, g := range ended {
		if err := txn.Put(GrantKey(g.ID), g); err != nil {
			return Change{}, err
		}
	}
	for _, r := range pend {
		r.decide(RequestRejected, e, "dataset retired")
		if err := putDecided(txn, r); err != nil {
			return Change{}, err
		}
		rejected = append(rejected, r)
	}
	return Change{Requests: rejected, Grants: ended}, nil
}
