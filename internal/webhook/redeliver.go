package webhook

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/fault"
)

// Redelivery says which of a department's deliveries to queue again:
// the one with ID, or (ID "") every one recorded at or after Since. Only
// a delivery whose last record is failed or dropped is queued: one
// delivered since is not posted twice.
type Redelivery struct {
	Dept  catalog.DeptID
	ID    string
	Since time.Time
	By    string // who asks (recorded with the outcome)
}

// Redeliver queues the deliveries r names again, as tasks that start a
// new schedule of attempts with the same delivery id (a receiver that
// keeps the ids it has taken sees the same event), and returns their
// ids. Asking twice for the same failure queues it once. A full queue
// stops it: the ids queued so far are returned with a
// fault.KindExhausted error.
func Redeliver(ctx context.Context, js jetstream.JetStream, r Redelivery) ([]string, error) {
	if r.ID == "" && r.Since.IsZero() {
		return nil, fault.Invalid("delivery", "name a delivery, or a time since which to redeliver every failed one")
	}
	ds, err := Deliveries(ctx, js, r.Dept, bus.WebhookKeep)
	if err != nil {
		return nil, err
	}
	// The last record of each delivery is its outcome.
	last := map[string]int{}
	var order []string
	for i, d := range ds {
		if _, ok := last[d.ID]; !ok {
			order = append(order, d.ID)
		}
		last[d.ID] = i
	}
	var want []Delivery
	for _, id := range order {
		d := ds[last[id]]
		switch {
		case r.ID != "" && id != r.ID:
		case r.ID != "" && d.Status == StatusDelivered:
			return nil, fault.Precondition("WEBHOOK_DELIVERED", id, "delivery %s of %s was delivered at %s: it is not posted again", id, r.Dept, d.At.Format(time.RFC3339))
		case d.Status == StatusDelivered:
		case r.ID == "" && d.At.Before(r.Since):
		default:
			want = append(want, d)
		}
	}
	if r.ID != "" && len(want) == 0 {
		return nil, fault.NotFound("no delivery %s of %s is recorded (xhub dept webhook deliveries %s lists the last %d)", r.ID, r.Dept, r.Dept, bus.WebhookKeep)
	}
	var queued []string
	for _, d := range want {
		t := Task{ID: d.ID, Dept: r.Dept, Event: d.Event, Subject: d.Subject, Entry: d.Entry, Time: d.Time, By: r.By}
		if t.Time.IsZero() {
			t.Time = d.At
		}
		// One task per failure record: the same failure asked twice is
		// one message id.
		if err := enqueue(ctx, js, t, d.ID+".re."+strconv.FormatInt(d.At.UnixNano(), 10)); err != nil {
			if ok, why := full(err); ok {
				return queued, fault.Exhausted("dept:"+string(r.Dept), "%d of %d deliveries queued again, then: %s", len(queued), len(want), why)
			}
			return queued, err
		}
		queued = append(queued, d.ID)
	}
	return queued, nil
}
