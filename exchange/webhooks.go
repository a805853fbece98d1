package exchange

import (
	"context"
	"encoding/json"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// SetWebhook sets (url "" removes) where the hub posts dept's events: by
// the operator or an officer of dept.
func (cp *ControlPlane) SetWebhook(ctx context.Context, actor vocab.Identity, dept catalog.DeptID, url string) (catalog.Webhook, uint64, error) {
	if _, err := catalog.ParseDeptID(string(dept)); err != nil {
		return catalog.Webhook{}, 0, err
	}
	if actor.Role != vocab.RoleAdmin && !(actor.Role == vocab.RoleOfficer && actor.Dept == dept) {
		return catalog.Webhook{}, 0, vocab.Denied("%s: only an officer of %s (or the operator) sets its webhook", actor.URI(), dept)
	}
	if err := catalog.CheckWebhookURL(url); err != nil {
		return catalog.Webhook{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindDeptWebhook, func(txn *store.Txn, _ time.Time) (string, any, error) {
		body, err := catalog.NewWebhook(txn, dept, url)
		return string(dept), body, err
	}))
	if err != nil {
		return catalog.Webhook{}, 0, err
	}
	w, _ := cp.Webhook(dept)
	return w, seq, nil
}

// Webhook is dept's webhook as this node has applied it (URL "": none).
func (cp *ControlPlane) Webhook(dept catalog.DeptID) (catalog.Webhook, bool) {
	var w catalog.Webhook
	var ok bool
	_ = cp.st.View(func(txn *store.Txn) error {
		var err error
		ok, err = txn.Get(catalog.WebhookKey(dept), &w)
		return err
	})
	return w, ok && w.URL != ""
}

func (cp *ControlPlane) applyDeptWebhook(txn views, e ledger.Entry) (func(), error) {
	_, err := catalog.ApplyDeptWebhook(txn, e.Body, e.Time, e.Seq)
	return func() {}, err
}

// DeptEvent is an event a ledger entry holds for one department: what
// its webhook is posted (Event's kind and id), with the entry's sequence
// and time, and Source: the department whose officers' act it is (the
// requester of a request, the owner deciding it, revoking a grant or
// resolving a dispute, the opener of a dispute), by which the hub bounds
// what one department can make another's webhook queue hold. Derived
// from the log, not from the node that appended the entry, so every node
// finds the same events in the same entry.
type DeptEvent struct {
	Dept   catalog.DeptID
	Source catalog.DeptID
	Kind   string
	ID     string
	Seq    uint64
	Time   time.Time
}

// EntryEvents are the events entry seq holds, once this node has applied
// it (waited for, at most the configured ReadWait): share.requested to
// the owner of a conditional dataset, share.approved and share.rejected
// to the requester, grant.revoked to the grantee, dispute.opened to the
// dataset's owner, dispute.resolved to the department that opened it.
// Other entries, and an entry its state machines refused (void), hold
// none.
func (cp *ControlPlane) EntryEvents(ctx context.Context, seq uint64) ([]DeptEvent, error) {
	if err := cp.WaitApplied(ctx, seq); err != nil {
		return nil, err
	}
	es, _, err := cp.Entries(seq-1, 1)
	if err != nil || len(es) == 0 || es[0].Seq != seq {
		return nil, err
	}
	e := es[0]
	ev := func(dept, source catalog.DeptID, id string) []DeptEvent {
		return []DeptEvent{{Dept: dept, Source: source, Kind: e.Kind, ID: id, Seq: e.Seq, Time: e.Time}}
	}
	switch e.Kind {
	case ledger.KindShareRequested:
		r, err := cp.Request(shares.RequestIDAt(seq))
		if err != nil {
			return nil, nil // void
		}
		if ds, err := cp.Dataset(r.Dataset); err != nil || ds.ShareType != catalog.ShareConditional {
			return nil, nil // an open dataset grants at once: nothing to decide
		}
		return ev(r.Dataset.Owner(), r.Requester, string(r.ID)), nil
	case ledger.KindShareApproved, ledger.KindShareRejected:
		var b shares.Decided
		if json.Unmarshal(e.Body, &b) != nil {
			return nil, nil
		}
		r, err := cp.Request(b.Request)
		if err != nil || r.Seq != seq {
			return nil, nil
		}
		return ev(r.Requester, r.Dataset.Owner(), string(r.ID)), nil
	case ledger.KindGrantRevoked:
		var b shares.Ended
		if json.Unmarshal(e.Body, &b) != nil {
			return nil, nil
		}
		g, err := cp.Grant(b.Grant)
		if err != nil || g.Seq != seq || g.Status != shares.GrantRevoked {
			return nil, nil
		}
		return ev(g.Grantee, g.Dataset.Owner(), string(g.ID)), nil
	case ledger.KindDisputeOpened:
		d, err := cp.Dispute(shares.DisputeIDAt(seq))
		if err != nil {
			return nil, nil
		}
		return ev(d.Dataset.Owner(), d.Opener, string(d.ID)), nil
	case ledger.KindDisputeResolved:
		var b shares.ResolutionBody
		if json.Unmarshal(e.Body, &b) != nil {
			return nil, nil
		}
		d, err := cp.Dispute(b.Dispute)
		if err != nil || d.Seq != seq {
			return nil, nil
		}
		return ev(d.Opener, d.Dataset.Owner(), string(d.ID)), nil
	}
	return nil, nil
}
