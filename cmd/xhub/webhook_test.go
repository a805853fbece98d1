package main

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/internal/testenv"
	"github.com/xhub-gov/xhub/internal/webhook"
)

// TestWebhooks: the owner's system learns of a request by a signed POST,
// retried past a failure and recorded; only the department's officers set
// or read its webhook; a hub without --webhook-allow-private does not
// call into its own network.
func TestWebhooks(t *testing.T) {
	env := testenv.Start(t, testenv.WithWebhooks(20*time.Millisecond, 40*time.Millisecond))
	creds := addOfficers(t, env, "health", "tax")
	publishCond(t, env, creds["health"], "health")

	type got struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var calls []got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, got{r.Header.Clone(), b})
		n := len(calls)
		mu.Unlock()
		if n == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable) // the first attempt fails
		}
	}))
	defer srv.Close()

	var set struct{ Secret string }
	if err := json.Unmarshal([]byte(mustX(t, env, creds["health"], "dept", "webhook", "set", "health", "--url", srv.URL, "-o", "json")), &set); err != nil || len(set.Secret) != 64 {
		t.Fatalf("set: %v %+v", err, set)
	}
	req, _ := ids(mustX(t, env, creds["tax"], "share", "request", "health.cond", "--purpose", "p"))
	testenv.WaitFor(t, 10*time.Second, "two attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) >= 2 })
	mu.Lock()
	last := calls[1]
	mu.Unlock()
	secret, _ := hex.DecodeString(set.Secret)
	if want := webhook.Sign(secret, last.header.Get(webhook.HeaderTimestamp), last.body); last.header.Get(webhook.HeaderSignature) != want {
		t.Fatalf("signature %q, want %q", last.header.Get(webhook.HeaderSignature), want)
	}
	var body webhook.Body
	if err := json.Unmarshal(last.body, &body); err != nil || body.Event != "share.requested" || body.ID != req || body.Dept != "health" {
		t.Fatalf("body %s: %v", last.body, err)
	}
	if last.header.Get(webhook.HeaderDelivery) != calls[0].header.Get(webhook.HeaderDelivery) {
		t.Error("a retry has a new delivery id")
	}
	testenv.WaitFor(t, 10*time.Second, "the delivery recorded", func() bool {
		out, _ := xhub(t, env, creds["health"], "dept", "webhook", "deliveries", "health")
		return strings.Contains(out, "share.requested") && strings.Contains(out, "delivered") && strings.Contains(out, req)
	})
	// Only health's officers (and the operator) set or read it.
	_, err := xhub(t, env, creds["tax"], "dept", "webhook", "set", "health", "--url", "https://tax.example/steal")
	wantRefused(t, err, codes.PermissionDenied, "only an officer of health")
	_, err = xhub(t, env, creds["tax"], "dept", "webhook", "deliveries", "health")
	wantRefused(t, err, codes.PermissionDenied, "only an officer of health")
	_, err = xhub(t, env, creds["health"], "dept", "webhook", "set", "health", "--url", "file:///etc/passwd")
	wantRefused(t, err, codes.InvalidArgument, "url")
	_, err = xhub(t, env, creds["health"], "dept", "webhook", "set", "health", "--url", "http://user:pw@example.org/")
	wantRefused(t, err, codes.InvalidArgument, "user information")
	// Rotating gives a new secret.
	var again struct{ Secret string }
	_ = json.Unmarshal([]byte(mustX(t, env, creds["health"], "dept", "webhook", "set", "health", "--url", srv.URL, "-o", "json")), &again)
	if again.Secret == set.Secret || again.Secret == "" {
		t.Fatal("setting the webhook again did not rotate the secret")
	}

	// A hub that keeps webhooks public refuses to call a loopback address.
	f2 := newWebhookFixture(t)
	env2, h2, t2 := f2.env, f2.health, f2.tax
	mustX(t, env2, h2, "dept", "webhook", "set", "health", "--url", srv.URL)
	mu.Lock()
	before := len(calls)
	mu.Unlock()
	mustX(t, env2, t2, "share", "request", "health.cond", "--purpose", "p")
	testenv.WaitFor(t, 10*time.Second, "the refusal recorded", func() bool {
		out, _ := xhub(t, env2, h2, "dept", "webhook", "deliveries", "health")
		return strings.Contains(out, "failed") && strings.Contains(out, "127.0.0.1 is not a public address (loopback)")
	})
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != before {
		t.Fatal("a hub without --webhook-allow-private called a loopback address")
	}
}
