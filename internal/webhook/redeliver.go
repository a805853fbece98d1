package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
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
	// Max deliveries of the department are queued again in each Window,
	// across the deployment (a redelivery of many failures is taken
	// Max at a time). Zero: DefaultRedeliverMax, DefaultRedeliverWindow.
	Max    int
	Window time.Duration
}

// Defaults of a redelivery's bound.
const (
	DefaultRedeliverMax    = 100
	DefaultRedeliverWindow = time.Minute
)

// Redelivered is what a redelivery queued, and what it left.
type Redelivered struct {
	IDs []string // queued again
	// Already are asked for and already in the queue: the same failure
	// was asked for again within bus.WebhookTaskDuplicates. They are not
	// counted against the bound.
	Already []string
	Left    int       // failed deliveries asked for and not queued: the bound was reached
	Next    time.Time // when the department may queue more (zero: now)
}

// window is a department's redelivery window, kept on
// bus.WebhookRedeliverSubject.
type window struct {
	Start  time.Time `json:"start"`
	Queued int       `json:"queued"`
}

// Redeliver queues the deliveries r names again, as tasks that start a
// new schedule of attempts with the same delivery id (a receiver that
// keeps the ids it has taken sees the same event), and returns their
// ids. Asking twice for the same failure queues it once, and the second
// ask is said (Already) and not counted against the bound (the queue
// says so only when asked to take it: with none of the bound left, a
// repeat is refused like any other ask). The department
// queues at most r.Max in each r.Window: past it, what is left is said
// (Left, Next), and a call with none left in its window is refused with
// a vocab.KindExhausted error naming when to ask again. A full queue
// stops it: the ids queued so far are returned with a vocab.KindExhausted
// error.
func Redeliver(ctx context.Context, js jetstream.JetStream, r Redelivery) (Redelivered, error) {
	if r.ID == "" && r.Since.IsZero() {
		return Redelivered{}, vocab.Invalid("delivery", "name a delivery, or a time since which to redeliver every failed one")
	}
	if r.Max <= 0 {
		r.Max = DefaultRedeliverMax
	}
	if r.Window <= 0 {
		r.Window = DefaultRedeliverWindow
	}
	from := time.Time{}
	if r.ID == "" {
		from = r.Since.Add(-time.Minute) // the record's own time decides; the stream's may be a little earlier
	}
	ds, err := deliveriesSince(ctx, js, r.Dept, from)
	if err != nil {
		return Redelivered{}, err
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
			return Redelivered{}, vocab.Precondition("WEBHOOK_DELIVERED", id, "delivery %s of %s was delivered at %s: it is not posted again", id, r.Dept, d.At.Format(time.RFC3339))
		case d.Status == StatusDelivered:
		case r.ID == "" && d.At.Before(r.Since):
		default:
			want = append(want, d)
		}
	}
	if r.ID != "" && len(want) == 0 {
		return Redelivered{}, vocab.NotFound("no delivery %s of %s is recorded (xhub dept webhook deliveries %s lists the last %d)", r.ID, r.Dept, r.Dept, bus.WebhookKeep)
	}
	if len(want) == 0 {
		return Redelivered{}, nil
	}
	// Each delivery is reserved from the window before it is queued, and
	// given back when the queue answers that it already holds it (the
	// same failure asked for again within bus.WebhookTaskDuplicates): a
	// repeat queues nothing, so it spends none of the bound.
	var out Redelivered
	for len(want) > 0 {
		n, next, err := reserve(ctx, js, r, len(want))
		if err != nil {
			var fe *vocab.Error
			if len(out.IDs)+len(out.Already) > 0 && !next.IsZero() && errors.As(err, &fe) && fe.Kind == vocab.KindExhausted {
				out.Left, out.Next = len(want), next // this call's own queuing reached the bound
				return out, nil
			}
			return out, err
		}
		batch := want[:n]
		want = want[n:]
		dups := 0
		for _, d := range batch {
			t := Task{ID: d.ID, Dept: r.Dept, Source: r.Dept, Event: d.Event, Subject: d.Subject, Entry: d.Entry, Time: d.Time, By: r.By}
			if t.Time.IsZero() {
				t.Time = d.At
			}
			// One task per failure record: the same failure asked twice is
			// one message id.
			dup, err := enqueue(ctx, js, t, d.ID+".re."+strconv.FormatInt(d.At.UnixNano(), 10))
			if err != nil {
				release(ctx, js, r, next, dups)
				if ok, why := full(err, t); ok {
					return out, vocab.Exhausted("dept:"+string(r.Dept), "%s queued again, then: %s", deliveries(len(out.IDs)), why)
				}
				return out, err
			}
			if dup {
				dups++
				out.Already = append(out.Already, d.ID)
				continue
			}
			out.IDs = append(out.IDs, d.ID)
		}
		if dups == 0 && len(want) > 0 {
			out.Left, out.Next = len(want), next // the bound is reached
			break
		}
		release(ctx, js, r, next, dups)
	}
	return out, nil
}

// deliveries is "1 delivery", "n deliveries".
func deliveries(n int) string {
	if n == 1 {
		return "1 delivery"
	}
	return strconv.Itoa(n) + " deliveries"
}

// reserve takes up to want of the department's redeliveries from its
// window (every node reads and writes the same one: a write conditional
// on the window read), and says how many, and when the window ends.
// None left is a vocab.KindExhausted error naming when to ask again.
func reserve(ctx context.Context, js jetstream.JetStream, r Redelivery, want int) (int, time.Time, error) {
	subj := bus.WebhookRedeliverSubject(r.Dept)
	stream, err := js.Stream(ctx, bus.WebhookStream)
	if err != nil {
		return 0, time.Time{}, err
	}
	for range 5 {
		var w window
		var seq uint64
		msg, err := stream.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return 0, time.Time{}, err
		default:
			seq = msg.Sequence
			_ = json.Unmarshal(msg.Data, &w)
		}
		now := time.Now().UTC()
		if w.Start.IsZero() || now.Sub(w.Start) >= r.Window || w.Start.After(now.Add(r.Window)) {
			w = window{Start: now}
		}
		next := w.Start.Add(r.Window)
		n := min(want, r.Max-w.Queued)
		if n <= 0 {
			return 0, next, vocab.Exhausted("dept:"+string(r.Dept), "%s has queued %s again since %s, the most in %s: ask again after %s",
				r.Dept, deliveries(w.Queued), w.Start.Format(time.RFC3339), r.Window, next.Format(time.RFC3339))
		}
		w.Queued += n
		b, _ := json.Marshal(w)
		_, err = js.Publish(ctx, subj, b, jetstream.WithExpectLastSequencePerSubject(seq), jetstream.WithExpectStream(bus.WebhookStream))
		var api *jetstream.APIError
		if errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			continue // another node's redelivery of the department came first
		}
		if err != nil {
			return 0, time.Time{}, err
		}
		return n, next, nil
	}
	return 0, time.Time{}, vocab.Exhausted("dept:"+string(r.Dept), "other redeliveries of %s are under way: ask again in a moment", r.Dept)
}

// release gives back n of the department's redeliveries reserved from
// the window that ends at next: they queued nothing. A window since
// ended gives back nothing (the next starts empty). Best effort: a
// release that loses to other nodes' writes five times leaves the
// window as it is, the bound spent more than it should, never less.
func release(ctx context.Context, js jetstream.JetStream, r Redelivery, next time.Time, n int) {
	if n <= 0 {
		return
	}
	subj := bus.WebhookRedeliverSubject(r.Dept)
	stream, err := js.Stream(ctx, bus.WebhookStream)
	if err != nil {
		return
	}
	for range 5 {
		msg, err := stream.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			return
		}
		var w window
		if json.Unmarshal(msg.Data, &w) != nil || !w.Start.Add(r.Window).Equal(next) {
			return
		}
		w.Queued = max(0, w.Queued-n)
		b, _ := json.Marshal(w)
		_, err = js.Publish(ctx, subj, b, jetstream.WithExpectLastSequencePerSubject(msg.Sequence), jetstream.WithExpectStream(bus.WebhookStream))
		var api *jetstream.APIError
		if errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			continue
		}
		return
	}
}
