package api

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/webhook"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// WebhookSecret is dept's signing secret for the webhook set by entry seq.
func (s *departments) webhookSecret(dept catalog.DeptID, seq uint64) []byte {
	return WebhookSecret(s.ca, dept, seq)
}

// WebhookSecret derives a department's webhook signing secret: every node
// derives the same from the deployment's CA key; setting the webhook
// again (a new entry) rotates it.
func WebhookSecret(ca interface{ DeriveSecret(string) []byte }, dept catalog.DeptID, seq uint64) []byte {
	return ca.DeriveSecret(fmt.Sprintf("webhook/%s/%d", dept, seq))
}

func (s *departments) SetWebhook(ctx context.Context, r *xhubv1.SetWebhookRequest) (*xhubv1.SetWebhookResponse, error) {
	w, seq, err := s.cp.SetWebhook(ctx, identityFrom(ctx), catalog.DeptID(r.Dept), r.Url)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.SetWebhookResponse{Dept: string(w.Dept), Url: w.URL, Seq: seq}
	if w.URL != "" {
		out.Secret = hex.EncodeToString(s.webhookSecret(w.Dept, w.Seq))
	}
	return out, nil
}

func (s *departments) ListWebhookDeliveries(ctx context.Context, r *xhubv1.ListWebhookDeliveriesRequest) (*xhubv1.ListWebhookDeliveriesResponse, error) {
	id := identityFrom(ctx)
	dept, err := catalog.ParseDeptID(r.Dept)
	if err != nil {
		return nil, toStatus(err)
	}
	if id.Role != vocab.RoleAdmin && id.Dept != dept {
		return nil, toStatus(vocab.Denied("%s: only an officer of %s (or the operator) reads its webhook deliveries", id.URI(), dept))
	}
	n := int(r.Limit)
	switch {
	case n == 0:
		n = 50
	case n < 0 || n > 1000:
		return nil, invalid("limit", "%d is not between 1 and 1000", n)
	}
	if s.js == nil {
		return nil, toStatus(&vocab.Error{Kind: vocab.KindUnavailable, Msg: "this node keeps no webhook records"})
	}
	ds, err := webhook.Deliveries(ctx, s.js, dept, n)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.ListWebhookDeliveriesResponse{}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, &xhubv1.WebhookDelivery{Id: d.ID, Event: d.Event, Subject: d.Subject, Url: d.URL, Status: d.Status,
			Attempts: int32(d.Attempts), Code: int32(d.Code), Error: d.Error, At: ts(d.At), Entry: d.Entry, RedeliveredBy: d.By})
	}
	return out, nil
}

// RedeliverWebhook queues a department's failed deliveries again: only
// its own officers decide that its events are posted again.
func (s *departments) RedeliverWebhook(ctx context.Context, r *xhubv1.RedeliverWebhookRequest) (*xhubv1.RedeliverWebhookResponse, error) {
	id := identityFrom(ctx)
	dept, err := catalog.ParseDeptID(r.Dept)
	if err != nil {
		return nil, toStatus(err)
	}
	if id.Role != vocab.RoleOfficer || id.Dept != dept {
		return nil, toStatus(vocab.Denied("%s: only an officer of %s redelivers its webhook deliveries", id.URI(), dept))
	}
	if len(r.Delivery) > 64 {
		return nil, invalid("delivery", "%d bytes: a delivery id is at most 64", len(r.Delivery))
	}
	if (r.Delivery == "") == (r.Since == nil) {
		return nil, invalid("delivery", "name either a delivery or a time since which to redeliver (not both)")
	}
	var since time.Time
	if r.Since != nil {
		if err := r.Since.CheckValid(); err != nil {
			return nil, invalid("since", "%v", err)
		}
		since = r.Since.AsTime()
	}
	if s.js == nil {
		return nil, toStatus(&vocab.Error{Kind: vocab.KindUnavailable, Msg: "this node keeps no webhook records"})
	}
	// With no webhook there is nowhere to post: say so, not that
	// nothing failed (a redelivery would only be dropped).
	if _, ok := s.cp.Webhook(dept); !ok {
		return nil, toStatus(vocab.Precondition("WEBHOOK_NOT_SET", string(dept), "%s has no webhook: set one first (xhub dept webhook set %s --url URL)", dept, dept))
	}
	got, err := webhook.Redeliver(ctx, s.js, webhook.Redelivery{Dept: dept, ID: r.Delivery, Since: since, By: id.URI(), Max: s.redeliver.Max, Window: s.redeliver.Window})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.RedeliverWebhookResponse{Deliveries: got.IDs, Already: got.Already, Left: int32(got.Left)}
	if !got.Next.IsZero() {
		out.Next = ts(got.Next)
	}
	return out, nil
}
