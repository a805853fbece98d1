package exchange

import (
	"context"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// This file runs data disputes (shares.NewDispute, shares.Resolve): a
// grantee's officer opens one, the owner's officer is told on its events
// subject and answers within DisputeDays working days.

// OpenDispute opens a dispute on a dataset the actor's department holds
// a grant for.
func (cp *ControlPlane) OpenDispute(ctx context.Context, actor vocab.Identity, in shares.DisputeInput) (shares.Dispute, uint64, error) {
	if _, err := catalog.ParseDatasetID(string(in.Dataset)); err != nil {
		return shares.Dispute{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindDisputeOpened, func(txn *store.Txn, now time.Time) (string, any, error) {
		m, err := readMeta(txn)
		if err != nil {
			return "", nil, err
		}
		open, err := shares.OpenDisputes(txn, actor.Dept)
		if err != nil {
			return "", nil, err
		}
		body, err := shares.NewDispute(txn, actor, in, cp.cfg.DisputeDays, open, shares.DisputeIDAt(m.Applied+1), now)
		return string(in.Dataset), body, err
	}))
	if err != nil {
		return shares.Dispute{}, 0, err
	}
	d, err := cp.Dispute(shares.DisputeIDAt(seq))
	if err == nil {
		cp.publishEvent(d.Dataset.Owner(), ledger.KindDisputeOpened, d.ID)
	}
	return d, seq, err
}

// ResolveDispute answers a dispute, by an officer of the dataset's owner.
func (cp *ControlPlane) ResolveDispute(ctx context.Context, actor vocab.Identity, id shares.DisputeID, outcome shares.DisputeStatus, reason string) (shares.Dispute, uint64, error) {
	if _, err := shares.ParseDisputeID(string(id)); err != nil {
		return shares.Dispute{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindDisputeResolved, func(txn *store.Txn, _ time.Time) (string, any, error) {
		body, ds, err := shares.Resolve(txn, actor, id, outcome, reason)
		return string(ds), body, err
	}))
	if err != nil {
		return shares.Dispute{}, 0, err
	}
	d, err := cp.Dispute(id)
	if err == nil {
		cp.publishEvent(d.Opener, ledger.KindDisputeResolved, d.ID)
	}
	return d, seq, err
}

// Dispute reads one dispute.
func (cp *ControlPlane) Dispute(id shares.DisputeID) (shares.Dispute, error) {
	var d shares.Dispute
	err := cp.st.View(func(txn *store.Txn) error {
		var err error
		d, err = shares.GetDispute(txn, id)
		return err
	})
	return d, err
}

// DisputeFilter selects disputes; Viewer limits them to what it may see:
// an officer sees the disputes its department opened and those on its
// datasets; the operator sees all.
type DisputeFilter struct {
	Dataset catalog.DatasetID
	Status  string // open, corrected, rejected, overdue; "" all
	Viewer  vocab.Identity
}

var disputeStatuses = []string{string(shares.DisputeOpen), string(shares.DisputeCorrected), string(shares.DisputeRejected), "overdue"}

// Disputes returns one page of disputes in id order after the given id,
// and the id to continue from ("" at the end).
func (cp *ControlPlane) Disputes(f DisputeFilter, after shares.DisputeID, limit int, now time.Time) ([]shares.Dispute, shares.DisputeID, error) {
	if err := checkStatus(f.Status, disputeStatuses); err != nil {
		return nil, "", err
	}
	start := ""
	if after != "" {
		if _, err := shares.ParseDisputeID(string(after)); err != nil {
			return nil, "", err
		}
		start = shares.DisputeKey(after)
	}
	if f.Viewer.Role != vocab.RoleAdmin && f.Viewer.Dept == "" {
		return nil, "", vocab.Denied("no identity")
	}
	var out []shares.Dispute
	err := cp.st.View(func(txn *store.Txn) error {
		return txn.Scan(shares.DisputePrefix, start, func(_ string, val []byte) (bool, error) {
			var d shares.Dispute
			if err := jsonUnmarshal(val, &d); err != nil {
				return false, err
			}
			if f.Viewer.Role != vocab.RoleAdmin && d.Opener != f.Viewer.Dept && d.Dataset.Owner() != f.Viewer.Dept {
				return true, nil
			}
			if f.Dataset != "" && d.Dataset != f.Dataset {
				return true, nil
			}
			switch f.Status {
			case "":
			case "overdue":
				if !d.Overdue(now) {
					return true, nil
				}
			default:
				if string(d.Status) != f.Status {
					return true, nil
				}
			}
			out = append(out, d)
			return len(out) <= limit, nil
		})
	})
	var next shares.DisputeID
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, err
}

// applyDispute applies a dispute entry (shares.ApplyDispute).
func (cp *ControlPlane) applyDispute(txn views, e ledger.Entry) (func(), error) {
	_, err := shares.ApplyDispute(txn, e)
	return func() {}, err
}
