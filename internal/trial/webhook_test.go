package trial

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
	"github.com/xhub-gov/xhub/internal/webhook"
)

// TestWebhookRetriesSurviveNodeKill: two `xhub serve` nodes on a NATS
// cluster, a receiver on 127.0.0.1 that fails the first attempts of each
// delivery. During the second attempt of the first event the receiver
// finds the process holding the connection (the node doing the retries)
// and the test kills it with SIGKILL: the other node makes the remaining
// attempts, and every event reaches the receiver with a 2xx exactly once,
// recorded as delivered once.
func TestWebhookRetriesSurviveNodeKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server and xhub processes")
	}
	const failFirst = 3 // attempts answered 503 before a 200
	d := deployWith(t, "--webhook-allow-private", "--webhook-backoff", "200ms,200ms,200ms,200ms,200ms", "--webhook-timeout", "3s")
	ctx := context.Background()
	owner := d.dial(d.creds("health", vocab.RoleOfficer, "officer"))
	if _, _, err := owner.RegisterSchema(ctx, "health.cond", []byte(schema), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.PublishDataset(ctx, adapters.DatasetSpec{ID: "health.cond", Title: "C", ShareType: "conditional", SchemaSubject: "health.cond"}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	attempts := map[string]int{}  // per delivery id
	delivered := map[string]int{} // 2xx answers per event (kind and id)
	victim := ""                  // the delivery whose second attempt is held
	holder := make(chan int, 1)   // the pid that held it
	released := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body webhook.Body
		_ = json.Unmarshal(b, &body)
		id := r.Header.Get(webhook.HeaderDelivery)
		mu.Lock()
		attempts[id]++
		n := attempts[id]
		if victim == "" {
			victim = id
		}
		hold := id == victim && n == 2
		mu.Unlock()
		if hold {
			holder <- pidOfPeer(t, r.RemoteAddr, r.Host, d)
			select {
			case <-r.Context().Done(): // the node died
			case <-released:
			case <-time.After(60 * time.Second):
			}
		}
		if n <= failFirst {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		delivered[body.Event+" "+body.ID]++
		mu.Unlock()
	}))
	defer srv.Close()
	defer close(released)
	if _, err := owner.SetWebhook(ctx, "health", srv.URL); err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, dept := range []string{"tax", "civil", "finance"} { // one pending request per department
		dec, err := d.dial(d.creds(dept, vocab.RoleOfficer, "officer")).RequestShare(ctx, "health.cond", nil, "p", 30)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, "share.requested "+dec.Request.ID)
	}

	var pid int
	select {
	case pid = <-holder:
	case <-time.After(60 * time.Second):
		t.Fatal("no second attempt of the first delivery within 60s")
	}
	killed := ""
	for _, h := range d.hubs {
		h.mu.Lock()
		if h.cmd != nil && h.cmd.Process.Pid == pid {
			killed = h.name
		}
		h.mu.Unlock()
	}
	if killed == "" {
		t.Fatalf("the held attempt came from pid %d, not a hub node", pid)
	}
	for _, h := range d.hubs {
		if h.name == killed {
			h.kill()
		}
	}
	t.Logf("killed %s (pid %d) during the second attempt of delivery %s", killed, pid, victim)

	testenv.WaitFor(t, 120*time.Second, "every event delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if delivered[e] == 0 {
				return false
			}
		}
		return true
	})
	var recs []adapters.WebhookDelivery
	testenv.WaitFor(t, 30*time.Second, "every delivery recorded", func() bool {
		var err error
		recs, err = d.admin.WebhookDeliveries(ctx, "health", 100)
		if err != nil {
			return false
		}
		n := 0
		for _, r := range recs {
			if r.Status == webhook.StatusDelivered {
				n++
			}
		}
		return n >= len(events)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, e := range events {
		if delivered[e] != 1 {
			t.Errorf("%s: %d successful deliveries, want 1", e, delivered[e])
		}
	}
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.Event+" "+r.Subject]++
		if r.Status != webhook.StatusDelivered {
			t.Errorf("record %+v, want delivered", r)
		}
		if r.ID == victim && r.Attempts != failFirst+1 {
			t.Errorf("the victim's record: %d attempts, want %d (the killed one counted)", r.Attempts, failFirst+1)
		}
	}
	for _, e := range events {
		if seen[e] != 1 {
			t.Errorf("%s: %d records, want 1", e, seen[e])
		}
	}
}

// pidOfPeer is the process, among the deployment's hub nodes, whose TCP
// socket is the client end of a connection from remote to the local
// server at host (Linux: /proc/net/tcp and each process's fds).
func pidOfPeer(t *testing.T, remote, host string, d *deployment) int {
	_, rport, _ := net.SplitHostPort(remote)
	_, lport, _ := net.SplitHostPort(host)
	rp, _ := strconv.Atoi(rport)
	lp, _ := strconv.Atoi(lport)
	inode := ""
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || !strings.Contains(fs[1], ":") {
				continue
			}
			local, rem := portOf(fs[1]), portOf(fs[2])
			if local == rp && rem == lp {
				inode = fs[9]
			}
		}
		f.Close()
	}
	if inode == "" {
		t.Errorf("no socket for %s → %s", remote, host)
		return 0
	}
	for _, h := range d.hubs {
		h.mu.Lock()
		pid := 0
		if h.cmd != nil {
			pid = h.cmd.Process.Pid
		}
		h.mu.Unlock()
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && l == "socket:["+inode+"]" {
				return pid
			}
		}
	}
	return 0
}

func portOf(hexAddr string) int {
	i := strings.LastIndexByte(hexAddr, ':')
	p, _ := strconv.ParseUint(hexAddr[i+1:], 16, 16)
	return int(p)
}
