package main

import (
	"context"
	"encoding/json"
	"io"
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
	"github.com/xhub-gov/xhub/internal/testenv"
	"github.com/xhub-gov/xhub/internal/webhook"
)

// receiver is a department's webhook receiver: it answers fail(n) (n:
// the attempt of that delivery) and keeps what it was sent.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	attempts map[string]int // per delivery id
	ok       map[string]int // 2xx answers per delivery id
	events   map[string]string
	fail     func(attempt int) bool
}

func newReceiver(t *testing.T, fail func(int) bool) *receiver {
	rc := &receiver{attempts: map[string]int{}, ok: map[string]int{}, events: map[string]string{}, fail: fail}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body webhook.Body
		_ = json.Unmarshal(b, &body)
		id := r.Header.Get(webhook.HeaderDelivery)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.attempts[id]++
		rc.events[id] = body.Event + " " + body.ID
		if rc.fail(rc.attempts[id]) {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		rc.ok[id]++
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setFail(fail func(int) bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.fail = fail
}

// delivered is how many distinct deliveries were answered 2xx, and the
// most 2xx answers any one got.
func (rc *receiver) delivered() (n, most int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, k := range rc.ok {
		n++
		most = max(most, k)
	}
	return n, most
}

// newDurableFixture is the webhook fixture on a hub started with opts,
// health's webhook posting to rc.
func newDurableFixture(t *testing.T, rc *receiver, opts ...testenv.Option) *webhookFixture {
	t.Helper()
	f := startWebhookFixture(t, opts...)
	mustX(t, f.env, f.health, "dept", "webhook", "set", "health", "--url", rc.srv.URL)
	return f
}

// events has tax request and withdraw n times: n share.requested events
// for health.
func (f *webhookFixture) events(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		req, _ := ids(mustX(t, f.env, f.tax, "share", "request", "health.cond", "--purpose", "p"))
		mustX(t, f.env, f.tax, "share", "withdraw", req)
		out = append(out, req)
	}
	return out
}

func (f *webhookFixture) records(t *testing.T) []adapters.WebhookDelivery {
	t.Helper()
	var out struct{ Deliveries []adapters.WebhookDelivery }
	if err := json.Unmarshal([]byte(mustX(t, f.env, f.health, "dept", "webhook", "deliveries", "health", "--limit", "1000", "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	return out.Deliveries
}

func queued(t *testing.T, env *testenv.Env, dept string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := env.Node.JS.Stream(ctx, bus.WebhookQueueStream)
	if err != nil {
		t.Fatalf("the webhook queue: %v", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.WebhookTaskPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64 // every source's
	for subj, k := range info.State.Subjects {
		if string(bus.WebhookTaskDept(subj)) == dept {
			n += k
		}
	}
	return n
}

// TestWebhookEventsWhileNoDispatcher: events of entries made while no
// node posts webhooks wait in the queue (made from the ledger, not from
// an event nobody heard) and are delivered, once each, when a dispatcher
// comes back.
func TestWebhookEventsWhileNoDispatcher(t *testing.T) {
	rc := newReceiver(t, func(int) bool { return false })
	f := newDurableFixture(t, rc, testenv.WithWebhooks(20*time.Millisecond), testenv.WithoutWebhookDispatch())
	reqs := f.events(t, 3)
	testenv.WaitFor(t, 30*time.Second, "three tasks queued", func() bool { return queued(t, f.env, "health") == 3 })
	if n, _ := rc.delivered(); n != 0 {
		t.Fatalf("%d deliveries posted by a node that does not dispatch", n)
	}
	f.env.Config.NoWebhookDispatch = false
	f.env.Restart()
	testenv.WaitFor(t, 30*time.Second, "the three events delivered", func() bool { n, _ := rc.delivered(); return n == 3 })
	testenv.WaitFor(t, 30*time.Second, "the queue empty", func() bool { return queued(t, f.env, "health") == 0 })
	if _, most := rc.delivered(); most != 1 {
		t.Errorf("a delivery was answered 2xx %d times", most)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, r := range reqs {
		found := false
		for _, e := range rc.events {
			found = found || e == "share.requested "+r
		}
		if !found {
			t.Errorf("no delivery of share.requested %s: %v", r, rc.events)
		}
	}
}

// TestWebhookRedeliver: a delivery that failed every attempt is posted
// again, with its delivery id, when an officer of the department asks
// (by id, or every failed one since a time); another department's
// officer and the operator are refused; a delivered one is not posted
// twice.
func TestWebhookRedeliver(t *testing.T) {
	rc := newReceiver(t, func(int) bool { return true }) // down
	f := newDurableFixture(t, rc, testenv.WithWebhooks(10*time.Millisecond, 10*time.Millisecond))
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
	rc.setFail(func(int) bool { return false }) // fixed

	_, err := xhub(t, f.env, f.tax, "dept", "webhook", "redeliver", "health", "--id", first)
	wantRefused(t, err, codes.PermissionDenied, "only an officer of health redelivers")
	_, err = xhub(t, f.env, f.env.Node.AdminCreds, "dept", "webhook", "redeliver", "health", "--id", first)
	if testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("the operator redelivering: %v, want PermissionDenied", err)
	}
	_, err = xhub(t, f.env, f.health, "dept", "webhook", "redeliver", "health", "--id", "999-health")
	wantRefused(t, err, codes.NotFound, "no delivery 999-health of health")
	if _, err := xhub(t, f.env, f.health, "dept", "webhook", "redeliver", "health"); err == nil || !strings.Contains(err.Error(), "--id DELIVERY or --since TIME") {
		t.Fatalf("neither --id nor --since: %v", err)
	}
	if n, _ := rc.delivered(); n != 0 {
		t.Fatalf("refused redeliveries posted %d", n)
	}

	out := mustX(t, f.env, f.health, "dept", "webhook", "redeliver", "health", "--id", first)
	if !strings.Contains(out, first) {
		t.Fatalf("redeliver says %q, not %s", out, first)
	}
	testenv.WaitFor(t, 30*time.Second, "the redelivery delivered", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.ok[first] == 1
	})
	testenv.WaitFor(t, 30*time.Second, "the redelivery recorded", func() bool {
		for _, d := range f.records(t) {
			if d.ID == first && d.Status == webhook.StatusDelivered && strings.Contains(d.By, "/dept/health/officer/") {
				return true
			}
		}
		return false
	})
	_, err = xhub(t, f.env, f.health, "dept", "webhook", "redeliver", "health", "--id", first)
	wantRefused(t, err, codes.FailedPrecondition, "was delivered")

	// Every failed one since an hour ago: the second only.
	out = mustX(t, f.env, f.health, "dept", "webhook", "redeliver", "health", "--since", "1h")
	if !strings.Contains(out, "1 delivery of health") || !strings.Contains(out, second) || strings.Contains(out, first) {
		t.Fatalf("redeliver --since says %q, want only %s", out, second)
	}
	testenv.WaitFor(t, 30*time.Second, "the second delivered", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.ok[second] == 1
	})
	if n, most := rc.delivered(); n != 2 || most != 1 {
		t.Errorf("%d deliveries, one answered 2xx %d times; want 2, once each", n, most)
	}
}

// TestWebhookQueueBounded: a receiver that never answers 2xx holds at
// most --webhook-queue-per-source tasks of one source in the queue; the events past it
// are recorded as dropped, saying why.
func TestWebhookQueueBounded(t *testing.T) {
	rc := newReceiver(t, func(int) bool { return true })
	const per = 3
	f := newDurableFixture(t, rc, testenv.WithWebhooks(time.Hour), testenv.WithWebhookQueue(bus.WebhookQueueLimits{PerSource: per}))
	f.events(t, 2*per)
	testenv.WaitFor(t, 30*time.Second, "the events past the bound dropped", func() bool {
		n := 0
		for _, d := range f.records(t) {
			if d.Status == webhook.StatusDropped && strings.Contains(d.Error, "webhook queue is full") {
				n++
			}
		}
		return n == per
	})
	if n := queued(t, f.env, "health"); n != per {
		t.Errorf("%d tasks of health queued, want the bound %d", n, per)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := f.env.Node.JS.Stream(ctx, bus.WebhookQueueStream)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.MaxMsgsPerSubject != per || !c.DiscardNewPerSubject || c.MaxBytes <= 0 || c.MaxAge <= 0 {
		t.Errorf("queue bounds: per subject %d (new refused: %v), bytes %d, age %s", c.MaxMsgsPerSubject, c.DiscardNewPerSubject, c.MaxBytes, c.MaxAge)
	}
}
