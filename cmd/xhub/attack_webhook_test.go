package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
	"github.com/xhub-gov/xhub/internal/webhook"
)

// TestAttackSlowReceiverStarvesOtherDepartmentsWebhooks: every node posts
// webhooks from one shared work queue with a fixed pool of workers
// (16), each attempt taking up to --webhook-timeout. One department whose
// receiver never answers (a server that hangs, or a public address that
// drops SYNs: no server of its own needed) holds every worker for the
// whole timeout on each of its tasks' six attempts, and `dept webhook
// redeliver --since` queues all its failures again at will, so the
// deployment's other departments' deliveries wait behind it: the per-
// department bound on the queue's length does not bound a department's
// share of the workers. Here 32 events for evil (each made by a
// colluding department's request, or by redelivery) with a 1 s timeout
// keep health's one event waiting for many seconds.
func TestAttackSlowReceiverStarvesOtherDepartmentsWebhooks(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })
	var mu sync.Mutex
	var healthAt time.Time
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if healthAt.IsZero() {
			healthAt = time.Now()
		}
		mu.Unlock()
	}))
	t.Cleanup(fast.Close)

	timeout := testenv.Option(func(c *hub.Config) { c.WebhookTimeout = time.Second })
	env := testenv.Start(t, testenv.WithWebhooks(50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond), timeout)
	creds := addOfficers(t, env, "health", "evil", "tax")
	for _, d := range []string{"health", "evil"} {
		publishCond(t, env, creds[d], d)
	}
	mustX(t, env, creds["evil"], "dept", "webhook", "set", "evil", "--url", slow.URL)
	mustX(t, env, creds["health"], "dept", "webhook", "set", "health", "--url", fast.URL)

	// 32 events for evil: tax asks for evil.cond and withdraws.
	for range 32 {
		req, _ := ids(mustX(t, env, creds["tax"], "share", "request", "evil.cond", "--purpose", "p"))
		mustX(t, env, creds["tax"], "share", "withdraw", req)
	}
	time.Sleep(500 * time.Millisecond) // the workers are all on evil's tasks
	start := time.Now()
	mustX(t, env, creds["tax"], "share", "request", "health.cond", "--purpose", "real business")
	const bound = 4 * time.Second
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		at := healthAt
		mu.Unlock()
		if !at.IsZero() {
			if d := at.Sub(start); d > bound {
				t.Fatalf("health's webhook waited %s behind evil's hanging receiver (want at most %s): one department's receiver holds every worker", d.Round(time.Millisecond), bound)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("health's webhook not delivered within 30s: evil's hanging receiver holds every worker")
}

// TestAttackOtherDepartmentFillsWebhookQueue: the queue bound is per
// receiving department, but any department fills it: each share request
// for a conditional dataset is an event for its owner, and a request can
// be withdrawn and made again at once (only one pending at a time, no
// other bound than the requester's ledger bytes). While health's receiver
// is down (a maintenance window), tax requests and withdraws health's
// dataset PerSource times and health's queue is full of tax's events:
// edu's genuine request, made next, is recorded dropped ("webhook queue
// is full") and never posted, even after health's receiver is back.
func TestAttackOtherDepartmentFillsWebhookQueue(t *testing.T) {
	rc := newReceiver(t, func(int) bool { return true }) // health's receiver is down
	const per = 5
	f := newDurableFixture(t, rc, testenv.WithWebhooks(time.Hour), testenv.WithWebhookQueue(bus.WebhookQueueLimits{PerSource: per}))
	edu := addOfficers(t, f.env, "edu")["edu"]

	f.events(t, per) // tax: request, withdraw, per times
	genuine, _ := ids(mustX(t, f.env, edu, "share", "request", "health.cond", "--purpose", "school meals"))
	var rec webhook.Delivery
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && rec.Status == ""; time.Sleep(200 * time.Millisecond) {
		for _, d := range f.records(t) {
			if d.Subject == genuine {
				rec = webhook.Delivery{Status: d.Status, Error: d.Error}
			}
		}
	}
	if rec.Status == webhook.StatusDropped && strings.Contains(rec.Error, "queue is full") {
		t.Fatalf("edu's genuine request %s for health was dropped (%q): tax's %d request/withdraw pairs filled health's webhook queue", genuine, rec.Error, per)
	}
	// Not dropped, and posted: health's receiver had its first attempt.
	testenv.WaitFor(t, 30*time.Second, "edu's request posted to health's receiver", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, e := range rc.events {
			if e == "share.requested "+genuine {
				return true
			}
		}
		return false
	})
	// tax's next one is refused from tax's own share, and says so.
	more := f.events(t, 1)[0]
	testenv.WaitFor(t, 30*time.Second, "tax's event past its share dropped", func() bool {
		for _, d := range f.records(t) {
			if d.Subject == more && d.Status == webhook.StatusDropped && strings.Contains(d.Error, "events tax caused") {
				return true
			}
		}
		return false
	})
}

// TestAttackRedeliverRequeuesWithoutBound: `dept webhook redeliver
// --since` queued every failure of the department again at each call,
// so a department with a receiver that hangs could keep a node's
// workers on its tasks at will. A department queues at most
// --webhook-redeliver-max in each --webhook-redeliver-window: the rest
// is said (how many, from when), and a call with none left in the
// window is refused, naming when to ask again.
func TestAttackRedeliverRequeuesWithoutBound(t *testing.T) {
	rc := newReceiver(t, func(int) bool { return true }) // down
	bound := testenv.Option(func(c *hub.Config) { c.WebhookRedeliverMax, c.WebhookRedeliverWindow = 2, time.Hour })
	f := newDurableFixture(t, rc, testenv.WithWebhooks(10*time.Millisecond, 10*time.Millisecond), bound)
	reqs := f.events(t, 3)
	testenv.WaitFor(t, 30*time.Second, "three deliveries failed", func() bool {
		n := 0
		for _, d := range f.records(t) {
			if d.Status == webhook.StatusFailed && d.Attempts == 3 {
				n++
			}
		}
		return n == len(reqs)
	})
	out := mustX(t, f.env, f.health, "dept", "webhook", "redeliver", "health", "--since", "1h")
	if !strings.Contains(out, "2 deliveries") || !strings.Contains(out, "1 more not queued") {
		t.Fatalf("redeliver --since with a bound of 2 says %q: want 2 queued and 1 left", out)
	}
	_, err := xhub(t, f.env, f.health, "dept", "webhook", "redeliver", "health", "--since", "1h")
	wantRefused(t, err, codes.ResourceExhausted, "ask again after")
}

// TestReviewRedeliverSameFailureTwice: asking twice in a row to
// redeliver one failure queued it once (the queue dedupes by message
// id), yet spent the department's bound twice and said "queued" both
// times, as "1 deliveries"; and redeliver for a department with no
// webhook said "no failed delivery". Found by the second outside
// review. The repeat says the delivery is already queued and spends
// nothing (with a bound of 2, the other failure is still taken), and a
// department with no webhook is refused naming xhub dept webhook set.
func TestReviewRedeliverSameFailureTwice(t *testing.T) {
	rc := newReceiver(t, func(int) bool { return true }) // down
	bound := testenv.Option(func(c *hub.Config) { c.WebhookRedeliverMax, c.WebhookRedeliverWindow = 2, time.Hour })
	f := newDurableFixture(t, rc, testenv.WithWebhooks(10*time.Millisecond, 10*time.Millisecond), bound)
	reqs := f.events(t, 2)
	failed := map[string]string{} // request → delivery id
	testenv.WaitFor(t, 30*time.Second, "two deliveries failed", func() bool {
		for _, d := range f.records(t) {
			if d.Status == webhook.StatusFailed && d.Attempts == 3 {
				failed[d.Subject] = d.ID
			}
		}
		return len(failed) == 2
	})
	first, second := failed[reqs[0]], failed[reqs[1]]
	// No node posts from here on: what is queued again stays queued, and
	// its failure record stays the last.
	f.env.Config.NoWebhookDispatch = true
	f.env.Restart()

	redeliver := func(id string) string {
		return strings.TrimSpace(mustX(t, f.env, f.health, "dept", "webhook", "redeliver", "health", "--id", id))
	}
	if out, want := redeliver(first), "1 delivery of health queued again: "+first; out != want {
		t.Fatalf("the first ask says %q, want %q", out, want)
	}
	if out := redeliver(first); !strings.Contains(out, "already queued") || strings.Contains(out, "queued again: ") {
		t.Fatalf("the same failure asked for again says %q: want it already queued, not queued again", out)
	}
	var got adapters.Redelivered
	if err := json.Unmarshal([]byte(mustX(t, f.env, f.health, "dept", "webhook", "redeliver", "health", "--id", first, "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.IDs) != 0 || len(got.Already) != 1 || got.Already[0] != first {
		t.Fatalf("a third ask as JSON: %+v, want %s already queued and nothing queued", got, first)
	}
	if n := queued(t, f.env, "health"); n != 1 {
		t.Fatalf("%d tasks queued after asking three times for one failure, want 1", n)
	}
	// The repeats spent nothing: the bound of 2 still takes the second.
	if out, want := redeliver(second), "1 delivery of health queued again: "+second; out != want {
		t.Fatalf("the second failure after a repeat: %q, want %q", out, want)
	}
	if n := queued(t, f.env, "health"); n != 2 {
		t.Fatalf("%d tasks queued, want 2", n)
	}
	// tax has no webhook: nowhere to post, and said so.
	_, err := xhub(t, f.env, f.tax, "dept", "webhook", "redeliver", "tax", "--since", "1h")
	wantRefused(t, err, codes.FailedPrecondition, "tax has no webhook: set one first (xhub dept webhook set tax")
}

// TestWebhookTasksQueuedBeforeSourcesDelivered: a deployment upgraded
// with tasks waiting in the queue's first form (xhub.whq.<dept>, taken
// by the one consumer of every department's tasks) has them delivered
// by the department's consumer, the old consumer removed.
func TestWebhookTasksQueuedBeforeSourcesDelivered(t *testing.T) {
	rc := newReceiver(t, func(int) bool { return false })
	f := newDurableFixture(t, rc, testenv.WithWebhooks(20*time.Millisecond), testenv.WithoutWebhookDispatch())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := f.env.Node.JS
	s, err := js.Stream(ctx, bus.WebhookQueueStream)
	if err != nil {
		t.Fatal(err)
	}
	old := jetstream.ConsumerConfig{Durable: bus.LegacyWebhookDispatchConsumer, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy, MaxDeliver: 7}
	if _, err := s.CreateOrUpdateConsumer(ctx, old); err != nil {
		t.Fatal(err)
	}
	task := webhook.Task{ID: "99-health", Dept: "health", Event: "share.requested", Subject: "r-99", Entry: 99, Time: time.Now().UTC()}
	b, _ := json.Marshal(task)
	if _, err := js.Publish(ctx, bus.WebhookTaskPrefix+"health", b); err != nil {
		t.Fatal(err)
	}
	f.env.Config.NoWebhookDispatch = false
	f.env.Restart()
	testenv.WaitFor(t, 30*time.Second, "the task of before sources delivered", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.ok["99-health"] == 1
	})
	testenv.WaitFor(t, 30*time.Second, "its record read with the others", func() bool {
		for _, d := range f.records(t) {
			if d.ID == "99-health" && d.Status == webhook.StatusDelivered {
				return true
			}
		}
		return false
	})
	s, err = f.env.Node.JS.Stream(ctx, bus.WebhookQueueStream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consumer(ctx, bus.LegacyWebhookDispatchConsumer); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the consumer of every department's tasks: %v, want it removed", err)
	}
}
