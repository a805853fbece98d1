package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/testenv"
	"github.com/xhub-gov/xhub/internal/testenv/netns"
)

// newWebhookFixture is the webhook fixture on a hub whose webhooks reach
// only public addresses.
func newWebhookFixture(t *testing.T) *webhookFixture {
	t.Helper()
	return startWebhookFixture(t, testenv.WithWebhookBackoff(10*time.Millisecond))
}

// deliver sets health's webhook to url, has tax request, and returns the
// delivery's record once it is final, and the table line showing it.
func (f *webhookFixture) deliver(t *testing.T, url string) (adapters.WebhookDelivery, string) {
	t.Helper()
	mustX(t, f.env, f.health, "dept", "webhook", "set", "health", "--url", url)
	req, _ := ids(mustX(t, f.env, f.tax, "share", "request", "health.cond", "--purpose", "p"))
	var got adapters.WebhookDelivery
	testenv.WaitFor(t, 30*time.Second, "the delivery to "+url+" recorded", func() bool {
		var out struct{ Deliveries []adapters.WebhookDelivery }
		if json.Unmarshal([]byte(mustX(t, f.env, f.health, "dept", "webhook", "deliveries", "health", "-o", "json")), &out) != nil {
			return false
		}
		for _, d := range out.Deliveries {
			if d.Subject == req && d.Event == "share.requested" && d.Status != "" {
				got = d
				return true
			}
		}
		return false
	})
	var shown string
	for _, line := range strings.Split(mustX(t, f.env, f.health, "dept", "webhook", "deliveries", "health"), "\n") {
		if strings.Contains(line, req) {
			shown = line
		}
	}
	if shown == "" {
		t.Fatalf("no line for %s in the deliveries table", req)
	}
	// The next request may be made: this one withdrawn, with no webhook
	// to tell of it.
	mustX(t, f.env, f.health, "dept", "webhook", "remove", "health")
	mustX(t, f.env, f.tax, "share", "withdraw", req)
	return got, shown
}

// TestWebhookGuardInNetNS: a hub in a network namespace with only
// loopback, where every address is routed to loopback, so a connection
// to any address reaches the test's listener. The addresses the second
// attack got through (shared address space with Alibaba Cloud's metadata
// service, benchmarking, IETF protocol assignments, reserved,
// IPv4-compatible, NAT64, site-local, and IPv6 forms carrying internal
// IPv4) are refused by the guard before any connect: the department reads
// the refusal, the listener sees nothing. Public addresses pass the guard
// and are delivered (to the listener, by the namespace's routes).
func TestWebhookGuardInNetNS(t *testing.T) {
	if !netns.Run(t, netns.AllLocal) {
		return
	}
	var mu sync.Mutex
	var reached []string
	ln, err := net.Listen("tcp", "[::]:0") // both families
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached = append(reached, r.Host)
		mu.Unlock()
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	f := newWebhookFixture(t)
	for _, c := range []struct{ host, why string }{
		{"100.100.100.200", "shared address space"},
		{"100.64.0.1", "shared address space"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.254", "benchmarking"},
		{"192.0.0.100", "IETF protocol assignments"},
		{"240.0.0.1", "reserved"},
		{"[::127.0.0.1]", "IPv4-compatible"},
		{"[::100.100.100.200]", "IPv4-compatible"},
		{"[64:ff9b::169.254.169.254]", "NAT64"},
		{"[64:ff9b:1::a00:1]", "NAT64"},
		{"[fec0::1]", "site-local"},
		{"[::ffff:100.100.100.200]", "shared address space"},
		{"[2002:7f00:1::1]", "loopback"},
		{"[2001:0:4136:e378:8000:63bf:80ff:fffe]", "Teredo"},
		{"127.0.0.1", "loopback"},
		{"[::1]", "loopback"},
	} {
		d, line := f.deliver(t, "http://"+c.host+":"+port+"/hook")
		if d.Status != "failed" || d.Attempts != 1 || !strings.Contains(d.Error, "is not a public address") || !strings.Contains(d.Error, c.why) {
			t.Errorf("%s: %+v, want failed at once, not a public address (%s)", c.host, d, c.why)
		}
		if !strings.Contains(line, d.Error) {
			t.Errorf("%s: the table shows %q, not %q", c.host, line, d.Error)
		}
	}
	// A name: the namespace's resolver cannot be reached, and the
	// department reads which name, not where the hub asked.
	if d, _ := f.deliver(t, "http://health.invalid:"+port+"/hook"); d.Status != "failed" || !strings.HasPrefix(d.Error, "could not resolve health.invalid") || strings.Contains(d.Error, ":53") {
		t.Errorf("health.invalid: %+v, want could not resolve health.invalid, no resolver", d)
	}
	mu.Lock()
	if len(reached) != 0 {
		t.Errorf("the hub connected to %v", reached)
	}
	mu.Unlock()
	for _, host := range []string{"8.8.8.8", "[2001:4860:4860::8888]"} {
		if d, _ := f.deliver(t, "http://"+host+":"+port+"/hook"); d.Status != "delivered" {
			t.Errorf("%s: %+v, want delivered (the guard lets a public address by)", host, d)
		}
	}
	mu.Lock()
	if len(reached) != 2 {
		t.Errorf("the listener was reached as %v, want by 8.8.8.8 and 2001:4860:4860::8888", reached)
	}
	mu.Unlock()
}

// TestWebhookFailureWording: a delivery to a name that does not resolve
// tells the department which name (and, in the namespace, why), not the
// hub's resolver: no nameserver of /etc/resolv.conf and no port 53 in
// the table or the API's answer.
func TestWebhookFailureWording(t *testing.T) {
	f := newWebhookFixture(t)
	d, line := f.deliver(t, "http://health.invalid/hook")
	if d.Status != "failed" || !strings.HasPrefix(d.Error, "could not resolve health.invalid") {
		t.Errorf("%+v, want failed: could not resolve health.invalid", d)
	}
	leaks := []string{":53", " on "}
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		for _, m := range regexp.MustCompile(`(?m)^\s*nameserver\s+(\S+)`).FindAllStringSubmatch(string(b), -1) {
			leaks = append(leaks, m[1])
		}
	}
	// The table's first column is a time (05:42:53): judge what follows it.
	if f := strings.Fields(line); len(f) > 2 {
		line = strings.Join(f[2:], " ")
	}
	for _, shown := range []string{d.Error, line} {
		for _, l := range leaks {
			if strings.Contains(shown, l) {
				t.Errorf("the department reads %q, which names the hub's resolver (%q)", shown, l)
			}
		}
	}
}
