package exchange

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/internal/fault"
)

// RequestID identifies a share request: "r-<seq>", the sequence of the
// ledger entry that made it.
type RequestID string

// GrantID identifies a grant: "g-<seq>", the sequence of the ledger entry
// that created it.
type GrantID string

func requestID(seq uint64) RequestID { return RequestID("r-" + strconv.FormatUint(seq, 10)) }
func grantID(seq uint64) GrantID     { return GrantID("g-" + strconv.FormatUint(seq, 10)) }

// ParseRequestID checks s.
func ParseRequestID(s string) (RequestID, error) {
	if _, err := idSeq(s, "r-"); err != nil {
		return "", fault.Invalid("request", "%q is not a request id (r-<number>)", s)
	}
	return RequestID(s), nil
}

// ParseGrantID checks s.
func ParseGrantID(s string) (GrantID, error) {
	if _, err := idSeq(s, "g-"); err != nil {
		return "", fault.Invalid("grant", "%q is not a grant id (g-<number>)", s)
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

// ShareRequest is one department's request for another's dataset.
type ShareRequest struct {
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
func (r *ShareRequest) Overdue(now time.Time) bool {
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
