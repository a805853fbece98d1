package exchange

import (
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// Request returns one share request.
func (cp *ControlPlane) Request(id shares.RequestID) (shares.Request, error) {
	var r shares.Request
	err := cp.st.View(func(txn *store.Txn) (err error) {
		r, err = shares.GetRequest(txn, id)
		return err
	})
	return r, err
}

// shares.Grant returns one grant.
func (cp *ControlPlane) Grant(id shares.GrantID) (shares.Grant, error) {
	var g shares.Grant
	err := cp.st.View(func(txn *store.Txn) (err error) {
		g, err = shares.GetGrant(txn, id)
		return err
	})
	return g, err
}

// ShareFilter selects grants or requests. Zero values select all.
type ShareFilter struct {
	Dataset catalog.DatasetID
	Grantee catalog.DeptID // grants to, or requests from, this department
	Status  string         // see ListShares in the API
	// Viewer limits the answer to what the viewer may see: an officer or
	// system sees grants and requests on its department's datasets and
	// those of its department. The admin sees all.
	Viewer vocab.Identity
	// Owner, if set, keeps only datasets of this department (the inbox).
	Owner catalog.DeptID
}

func (f ShareFilter) visible(dataset catalog.DatasetID, grantee catalog.DeptID) bool {
	if f.Viewer.Role == vocab.RoleAdmin {
		return true
	}
	return dataset.Owner() == f.Viewer.Dept || grantee == f.Viewer.Dept
}

func (f ShareFilter) match(dataset catalog.DatasetID, grantee catalog.DeptID) bool {
	return (f.Dataset == "" || f.Dataset == dataset) && (f.Grantee == "" || f.Grantee == grantee) &&
		(f.Owner == "" || dataset.Owner() == f.Owner) && f.visible(dataset, grantee)
}

var grantStatuses = []string{string(shares.GrantActive), string(shares.GrantRevoked), string(shares.GrantExpired), string(shares.GrantEnded)}
var requestStatuses = []string{string(shares.RequestPending), string(shares.RequestApproved), string(shares.RequestRejected), string(shares.RequestWithdrawn), "overdue"}

func checkStatus(s string, allowed []string) error {
	if s == "" {
		return nil
	}
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return vocab.Invalid("status", "%q is not one of %s", s, strings.Join(allowed, ", "))
}

// ListGrants returns one page of grants in id order after the given id,
// with their status as of now, and the id to continue from ("" at the end).
// The list is complete: every page is scanned in full, filtered exactly.
func (cp *ControlPlane) ListGrants(f ShareFilter, after shares.GrantID, limit int, now time.Time) ([]shares.Grant, shares.GrantID, error) {
	if err := checkStatus(f.Status, grantStatuses); err != nil {
		return nil, "", err
	}
	start := ""
	if after != "" {
		if _, err := shares.ParseGrantID(string(after)); err != nil {
			return nil, "", err
		}
		start = shares.GrantKey(after)
	}
	var out []shares.Grant
	prefix := shares.GrantPrefix
	err := cp.st.View(func(txn *store.Txn) error {
		return txn.Scan(prefix, start, func(_ string, val []byte) (bool, error) {
			var g shares.Grant
			if err := jsonUnmarshal(val, &g); err != nil {
				return false, err
			}
			g.Status = g.StatusAt(now)
			if !f.match(g.Dataset, g.Grantee) || f.Status != "" && string(g.Status) != f.Status {
				return true, nil
			}
			out = append(out, g)
			return len(out) <= limit, nil
		})
	})
	var next shares.GrantID
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, err
}

// ListRequests is ListGrants for share requests; status "overdue" selects
// pending requests past their deadline.
func (cp *ControlPlane) ListRequests(f ShareFilter, after shares.RequestID, limit int, now time.Time) ([]shares.Request, shares.RequestID, error) {
	if err := checkStatus(f.Status, requestStatuses); err != nil {
		return nil, "", err
	}
	start := ""
	if after != "" {
		if _, err := shares.ParseRequestID(string(after)); err != nil {
			return nil, "", err
		}
		start = shares.RequestKey(after)
	}
	var out []shares.Request
	err := cp.st.View(func(txn *store.Txn) error {
		return txn.Scan(shares.RequestPrefix, start, func(_ string, val []byte) (bool, error) {
			var r shares.Request
			if err := jsonUnmarshal(val, &r); err != nil {
				return false, err
			}
			if !f.match(r.Dataset, r.Requester) {
				return true, nil
			}
			switch f.Status {
			case "":
			case "overdue":
				if !r.Overdue(now) {
					return true, nil
				}
			default:
				if string(r.Status) != f.Status {
					return true, nil
				}
			}
			out = append(out, r)
			return len(out) <= limit, nil
		})
	})
	var next shares.RequestID
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, err
}
