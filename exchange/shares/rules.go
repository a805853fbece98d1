package shares

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// The rules of the share workflow: each function checks one command
// against the state (the Views as of the last applied entry) and returns
// the body of the entry that would carry it out, or the refusal. They read
// no clock (now is given) and write nothing; package exchange appends what
// they return, and Apply (shares.go) applies it.

// Limits on share input.
const (
	MaxPurposeLen = 2000
	MaxFields     = 512
)

// Rules are the hub's settings the rules depend on.
type Rules struct {
	ResponseDays       int // an owner's time to answer before a request is overdue
	MaxGrantDays       int // the longest grant
	MaxPendingRequests int // requests one department may have pending
}

// Input is a share request as an officer files it.
type Input struct {
	Dataset catalog.DatasetID
	Fields  []string
	Purpose string
	Days    int // 0: the hub's longest grant
}

// NewRequest checks a request and makes it, as entry id would record it.
// pending is how many requests actor's department has pending.
func NewRequest(v Views, rules Rules, actor vocab.Identity, in Input, pending int, id RequestID, now time.Time) (Request, error) {
	if actor.Role != vocab.RoleOfficer {
		return Request{}, vocab.Denied("%s: only a data officer requests data", actor.URI())
	}
	if _, err := catalog.ParseDatasetID(string(in.Dataset)); err != nil {
		return Request{}, err
	}
	purpose := strings.TrimSpace(in.Purpose)
	if purpose == "" {
		return Request{}, vocab.Invalid("purpose", "is required: say what the data is for")
	}
	if err := catalog.CheckLine("purpose", purpose); err != nil {
		return Request{}, err
	}
	if len(purpose) > MaxPurposeLen {
		return Request{}, vocab.Invalid("purpose", "is %d bytes, at most %d", len(purpose), MaxPurposeLen)
	}
	days := in.Days
	if days == 0 {
		days = rules.MaxGrantDays
	}
	if days < 1 || days > rules.MaxGrantDays {
		return Request{}, vocab.Invalid("days", "%d is not between 1 and %d (the hub's longest grant)", days, rules.MaxGrantDays)
	}
	ds, err := dataset(v, in.Dataset)
	if err != nil {
		return Request{}, err
	}
	if ds.Status != catalog.StatusPublished {
		return Request{}, vocab.Precondition("DATASET_RETIRED", string(ds.ID), "dataset %s is retired", ds.ID)
	}
	if ds.Owner() == actor.Dept {
		return Request{}, vocab.Precondition("OWN_DATASET", string(ds.ID), "dataset %s belongs to your own department", ds.ID)
	}
	if ds.ShareType == catalog.ShareNone {
		return Request{}, vocab.Precondition("SHARE_TYPE_NONE", string(ds.ID), "dataset %s is not shared (share type none): its owner %s lists it in the catalog but shares it with no department", ds.ID, ds.Owner())
	}
	fields, err := checkFields("fields", in.Fields, ds)
	if err != nil {
		return Request{}, err
	}
	var dup error
	_ = v.Scan(PendingByDatasetPrefix(ds.ID), "", func(_ string, val []byte) (bool, error) {
		var other RequestID
		if json.Unmarshal(val, &other) == nil {
			if r, err := GetRequest(v, other); err == nil && r.Requester == actor.Dept {
				dup = vocab.Precondition("REQUEST_PENDING", string(other), "request %s of %s for %s is already pending", other, actor.Dept, ds.ID)
				return false, nil
			}
		}
		return true, nil
	})
	if dup != nil {
		return Request{}, dup
	}
	if pending >= rules.MaxPendingRequests {
		return Request{}, vocab.Exhausted("dept:"+string(actor.Dept), "department %s has %d share requests pending, the most the hub allows (%d): wait for decisions or withdraw some", actor.Dept, pending, rules.MaxPendingRequests)
	}
	return Request{
		ID: id, Requester: actor.Dept, Dataset: ds.ID, Fields: fields, Purpose: purpose, Days: days,
		Status: RequestPending, RequestedBy: actor.URI(), Deadline: now.AddDate(0, 0, rules.ResponseDays),
	}, nil
}

// OpenGrant checks that a pending request for an open dataset may be
// granted by the open-sharing policy, as grant gid.
func OpenGrant(v Views, id RequestID, gid GrantID, now time.Time) (GrantBody, catalog.DatasetID, error) {
	r, err := GetRequest(v, id)
	if err != nil {
		return GrantBody{}, "", err
	}
	if r.Status != RequestPending {
		return GrantBody{}, "", vocab.Precondition("REQUEST_STATE", string(id), "request %s is %s, not pending", id, r.Status)
	}
	ds, err := dataset(v, r.Dataset)
	if err != nil {
		return GrantBody{}, "", err
	}
	if ds.ShareType != catalog.ShareOpen || ds.Status != catalog.StatusPublished {
		return GrantBody{}, "", vocab.Precondition("SHARE_TYPE", string(ds.ID), "dataset %s is no longer open", ds.ID)
	}
	fields := r.Fields
	if len(fields) == 0 {
		fields = allFields(ds)
	}
	return GrantBody{Request: id, Grant: gid, Fields: fields, ExpiresAt: now.AddDate(0, 0, r.Days), Reason: "open sharing"}, ds.ID, nil
}

// Decision is an owner's answer to a request.
type Decision struct {
	Request RequestID
	Fields  []string // approve: narrow to these (empty: as requested)
	Days    int      // approve: shorten to this (0: as requested)
	Reason  string   // reject: required
}

// Approval checks that actor may approve d, narrowing at most, and makes
// the grant gid.
func Approval(v Views, actor vocab.Identity, d Decision, gid GrantID, now time.Time) (GrantBody, catalog.DatasetID, error) {
	r, ds, err := pendingFor(v, actor, d.Request, "approve requests for it")
	if err != nil {
		return GrantBody{}, "", err
	}
	requested := r.Fields
	if len(requested) == 0 {
		requested = allFields(ds)
	}
	fields := requested
	if len(d.Fields) > 0 {
		if fields, err = checkFields("fields", d.Fields, ds); err != nil {
			return GrantBody{}, "", err
		}
		if f, ok := subsetOf(fields, requested); !ok {
			return GrantBody{}, "", vocab.Invalid("fields", "field %q was not requested; an approval may only narrow the request (%s)", f, strings.Join(requested, ", "))
		}
	}
	days := r.Days
	if d.Days != 0 {
		if d.Days < 1 || d.Days > r.Days {
			return GrantBody{}, "", vocab.Invalid("days", "%d is not between 1 and the %d days requested", d.Days, r.Days)
		}
		days = d.Days
	}
	return GrantBody{Request: r.ID, Grant: gid, Fields: fields, ExpiresAt: now.AddDate(0, 0, days), Reason: strings.TrimSpace(d.Reason)}, ds.ID, nil
}

// Rejection checks that actor may reject d.
func Rejection(v Views, actor vocab.Identity, d Decision) (Decided, catalog.DatasetID, error) {
	r, _, err := pendingFor(v, actor, d.Request, "reject requests for it")
	if err != nil {
		return Decided{}, "", err
	}
	return Decided{Request: r.ID, Reason: strings.TrimSpace(d.Reason)}, r.Dataset, nil
}

// Withdrawal checks that actor may withdraw request id: its requester's
// officer, while it is pending.
func Withdrawal(v Views, actor vocab.Identity, id RequestID) (Decided, catalog.DatasetID, error) {
	r, err := GetRequest(v, id)
	if err != nil {
		return Decided{}, "", err
	}
	if actor.Role != vocab.RoleOfficer || actor.Dept != r.Requester {
		return Decided{}, "", vocab.Denied("%s: only an officer of %s (the requester) may withdraw request %s", actor.URI(), r.Requester, id)
	}
	if r.Status != RequestPending {
		return Decided{}, "", vocab.Precondition("REQUEST_STATE", string(id), "request %s is already %s", id, r.Status)
	}
	return Decided{Request: id}, r.Dataset, nil
}

// Revocation checks that actor may revoke grant id now.
func Revocation(v Views, actor vocab.Identity, id GrantID, reason string, now time.Time) (Ended, catalog.DatasetID, error) {
	g, err := GetGrant(v, id)
	if err != nil {
		return Ended{}, "", err
	}
	if err := mayDecide(actor, g.Dataset.Owner(), "revoke grants on it"); err != nil {
		return Ended{}, "", err
	}
	if st := g.StatusAt(now); st != GrantActive {
		return Ended{}, "", vocab.Precondition("GRANT_STATE", string(id), "grant %s is already %s", id, st)
	}
	return Ended{Grant: id, Reason: strings.TrimSpace(reason)}, g.Dataset, nil
}

// Outcomes of Expiry that are not failures: another node got there first,
// or this node's clock is behind.
var (
	ErrAlreadyEnded = &vocab.Error{Kind: vocab.KindPrecondition, Msg: "grant already ended"}
	ErrNotDue       = &vocab.Error{Kind: vocab.KindPrecondition, Msg: "grant not yet due to expire"}
)

// Expiry checks that grant id is due to expire at now.
func Expiry(v Views, id GrantID, now time.Time) (Ended, catalog.DatasetID, error) {
	g, err := GetGrant(v, id)
	if err != nil {
		return Ended{}, "", err
	}
	if g.Status != GrantActive {
		return Ended{}, "", ErrAlreadyEnded
	}
	if now.Before(g.ExpiresAt) {
		return Ended{}, "", ErrNotDue
	}
	return Ended{Grant: id}, g.Dataset, nil
}

func pendingFor(v Views, actor vocab.Identity, id RequestID, what string) (Request, catalog.Dataset, error) {
	r, err := GetRequest(v, id)
	if err != nil {
		return r, catalog.Dataset{}, err
	}
	if err := mayDecide(actor, r.Dataset.Owner(), what); err != nil {
		return r, catalog.Dataset{}, err
	}
	if r.Status != RequestPending {
		return r, catalog.Dataset{}, vocab.Precondition("REQUEST_STATE", string(id), "request %s is already %s", id, r.Status)
	}
	ds, err := dataset(v, r.Dataset)
	return r, ds, err
}

// mayDecide: the owner's officers decide on their datasets; so does the
// operator.
func mayDecide(actor vocab.Identity, owner catalog.DeptID, what string) error {
	switch {
	case actor.Role == vocab.RoleAdmin:
		return nil
	case actor.Role == vocab.RoleOfficer && actor.Dept == owner:
		return nil
	case actor.Role == vocab.RoleOfficer:
		return vocab.Denied("%s: only an officer of %s (the owner) may %s", actor.URI(), owner, what)
	}
	return vocab.Denied("%s: role %s may not %s", actor.URI(), actor.Role, what)
}

func dataset(v Views, id catalog.DatasetID) (catalog.Dataset, error) {
	var d catalog.Dataset
	ok, err := v.Get(catalog.DatasetKey(id), &d)
	if err == nil && !ok {
		err = vocab.NotFound("dataset %s is not in the catalog", id)
	}
	return d, err
}

// checkFields checks requested fields against a dataset's fields: each must
// exist, none twice. It returns them sorted.
func checkFields(field string, want []string, ds catalog.Dataset) ([]string, error) {
	if len(want) > MaxFields {
		return nil, vocab.Invalid(field, "%d fields, at most %d", len(want), MaxFields)
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
			return nil, vocab.Invalid(field, "field %q is not in dataset %s (its fields: %s)", f, ds.ID, strings.Join(names, ", "))
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
