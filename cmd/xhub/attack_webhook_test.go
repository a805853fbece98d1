package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	admin := env.Node.AdminCreds
	dir := t.TempDir()
	creds := map[string]string{}
	for _, d := range []string{"health", "evil", "tax"} {
		creds[d] = filepath.Join(dir, d+".creds")
		mustX(t, env, admin, "dept", "add", d, "--name", d)
		mustX(t, env, admin, "creds", "issue", "--dept", d, "--role", "officer", "--out", creds[d])
	}
	schema := writeFile(t, "s.json", `{"type":"object","properties":{"id":{"type":"integer"}}}`)
	for _, d := range []string{"health", "evil"} {
		mustX(t, env, creds[d], "schema", "register", d+".cond", "--file", schema)
		mustX(t, env, creds[d], "catalog", "publish", d+".cond", "--title", "C", "--share", "conditional", "--schema", d+".cond")
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
	edu := filepath.Join(t.TempDir(), "edu.creds")
	mustX(t, f.env, f.env.Node.AdminCreds, "dept", "add", "edu", "--name", "edu")
	mustX(t, f.env, f.env.Node.AdminCreds, "creds", "issue", "--dept", "edu", "--role", "officer", "--out", edu)

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
