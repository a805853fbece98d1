package exchange

import (
	"context"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/fault"
	"github.com/xhub-gov/xhub/internal/store"
)

// SetWebhook sets (url "" removes) where the hub posts dept's events: by
// the operator or an officer of dept.
func (cp *ControlPlane) SetWebhook(ctx context.Context, actor vocab.Identity, dept catalog.DeptID, url string) (catalog.Webhook, uint64, error) {
	if _, err := catalog.ParseDeptID(string(dept)); err != nil {
		return catalog.Webhook{}, 0, err
	}
	if actor.Role != vocab.RoleAdmin && !(actor.Role == vocab.RoleOfficer && actor.Dept == dept) {
		return catalog.Webhook{}, 0, fault.Denied("%s: only an officer of %s (or the operator) sets its webhook", actor.URI(), dept)
	}
	if err := catalog.CheckWebhookURL(url); err != nil {
		return catalog.Webhook{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, catalog.KindDeptWebhook, func(txn *store.Txn, _ time.Time) (string, any, error) {
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
