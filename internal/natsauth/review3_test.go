package natsauth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/ratelog"
)

// slowHeadCP is a node whose head read takes a while (a loaded JetStream,
// a stream leader moving): every CatchUp costs wait. Its credential is
// revoked: no entry can undo that.
type slowHeadCP struct {
	serial, identity string
	revoked          bool
	wait             time.Duration
	mu               sync.Mutex
	calls            int
}

func (c *slowHeadCP) Credential(serial string) (exchange.Credential, bool) {
	return exchange.Credential{Serial: serial, Identity: c.identity, Revoked: c.revoked}, serial == c.serial
}
func (c *slowHeadCP) ActiveGrantPairs(time.Time) []exchange.GrantPair { return nil }
func (c *slowHeadCP) Advanced() <-chan struct{}                       { return make(chan struct{}) }
func (c *slowHeadCP) CatchUp(ctx context.Context) error {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	select {
	case <-time.After(c.wait):
	case <-ctx.Done():
	}
	return nil
}

func reviewService(t *testing.T, cp ControlPlane) *Service {
	t.Helper()
	issuer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	return &Service{cfg: Config{CP: cp, Issuer: issuer, Now: time.Now, MaxConnsPerDept: DefaultMaxConnsPerDept},
		clients: map[clientKey]client{}, lines: ratelog.New(time.Second),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused"}, []string{"reason"})}
}

// TestReview3CalloutReadsHeadForFinalRefusals: the auth callout is one
// sequential NATS handler, and it now reads the log's head (two
// JetStream STREAM.INFO calls, up to HeadWait) before every decision —
// also for a revoked credential, an officer's certificate, or a
// department over its connection bound, refusals no newer entry can
// undo. Any holder of a certificate the hub's CA signed, revoked ones
// included, can so queue connects that each cost the handler a head
// read; with the head slow, each costs it up to 2 s, and every other
// department's connect waits behind them (the server's auth timeout is
// 5 s).
func TestReview3CalloutReadsHeadForFinalRefusals(t *testing.T) {
	for _, c := range []struct {
		name    string
		id      vocab.Identity
		revoked bool
	}{
		{"revoked credential", vocab.Identity{Dept: "evil", Role: vocab.RoleSystem, Name: "etl"}, true},
		{"officer's certificate", vocab.Identity{Dept: "evil", Role: vocab.RoleOfficer, Name: "o"}, false},
	} {
		req, serial := authRequest(t, c.id)
		cp := &slowHeadCP{serial: serial, identity: c.id.URI(), revoked: c.revoked, wait: 200 * time.Millisecond}
		s := reviewService(t, cp)
		start := time.Now()
		_, _, err := s.authorize(req)
		if err == nil {
			t.Fatalf("%s: allowed", c.name)
		}
		if cp.calls > 0 {
			t.Errorf("%s: refused (%v) after %d head reads taking %s of the one callout handler; a refusal no entry can undo needs none",
				c.name, err, cp.calls, time.Since(start).Round(time.Millisecond))
		}
	}
}

// TestReview3CalloutJudgesRequestsTheServerGaveUpOn: a request whose
// claim has expired (the server has already timed its client out) is
// still judged, head read included: a burst of connects leaves a backlog
// the sequential handler works through long after each client is gone,
// while fresh requests of other departments wait behind it.
func TestReview3CalloutJudgesRequestsTheServerGaveUpOn(t *testing.T) {
	id := vocab.Identity{Dept: "evil", Role: vocab.RoleSystem, Name: "etl"}
	req, serial := authRequest(t, id)
	cp := &slowHeadCP{serial: serial, identity: id.URI(), wait: 100 * time.Millisecond}
	s := reviewService(t, cp)
	srv, err := nkeys.CreateServer()
	if err != nil {
		t.Fatal(err)
	}
	req.Expires = time.Now().Add(-expiredSlack - time.Second).Unix() // the server gave up long ago (clocks may disagree by expiredSlack)
	tok, err := req.Encode(srv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.DecodeAuthorizationRequestClaims(tok); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 5 {
		s.handle(&nats.Msg{Data: []byte(tok)})
	}
	if cp.calls > 0 {
		t.Errorf("5 expired requests cost the handler %d head reads and %s", cp.calls, time.Since(start).Round(time.Millisecond))
	}
}
