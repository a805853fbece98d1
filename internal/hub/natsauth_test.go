package hub_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/natsauth"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// natsClient is a department system on the hub's NATS port, as any
// language's NATS client connects: TLS with the hub-issued certificate.
type natsClient struct {
	nc           *nats.Conn
	mu           sync.Mutex
	errs         []string
	disconnected chan time.Time
}

func dialNATS(t *testing.T, env *testenv.Env, credsFile string) (*natsClient, error) {
	t.Helper()
	c, err := vocab.LoadCreds(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := env.Node.Embedded.Addr
	nc := &natsClient{disconnected: make(chan time.Time, 16)}
	conn, err := nats.Connect("tls://"+addr, nats.Secure(c.ClientTLS(addr)), nats.Timeout(5*time.Second),
		nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			nc.mu.Lock()
			nc.errs = append(nc.errs, err.Error())
			nc.mu.Unlock()
		}),
		nats.DisconnectErrHandler(func(*nats.Conn, error) {
			select {
			case nc.disconnected <- time.Now():
			default:
			}
		}))
	if err != nil {
		return nil, err
	}
	nc.nc = conn
	t.Cleanup(conn.Close)
	return nc, nil
}

// violation waits for a permissions violation naming subject.
func (c *natsClient) violation(t *testing.T, subject string) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, "permissions violation for "+subject, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.errs {
			if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, subject) {
				return true
			}
		}
		return false
	})
}

// TestNATSIntegrators: a department's system reads its granted records
// straight from NATS, cut to the grant, and nothing else; revoking the
// grant or the credential cuts it off within a second.
func TestNATSIntegrators(t *testing.T) {
	f := newDataFixture(t, testenv.WithNATSListen())
	env := f.env
	ctx := context.Background()

	tax, err := dialNATS(t, env, f.consumerCreds)
	if err != nil {
		t.Fatalf("a granted system could not connect: %v", err)
	}
	own := bus.OutSubject("tax", "health.cases")
	sub, err := tax.nc.SubscribeSync(own)
	if err != nil {
		t.Fatal(err)
	}
	if err := tax.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The feed starts with the grant (records from then on).
	testenv.WaitFor(t, 10*time.Second, "the NATS delivery's subscription", func() bool {
		_, err := env.Node.JS.Consumer(ctx, bus.DataStream, bus.SubscriptionConsumerName("tax", "health.cases", bus.OutSubscription))
		return err == nil
	})
	if _, err := f.provider.Publish(ctx, "health.cases", [][]byte{[]byte(casesRecords[0]), []byte(casesRecords[2])}, ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id":1`, `"id":3`} {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no record over NATS: %v", err)
		}
		if !strings.Contains(string(m.Data), want) || strings.Contains(string(m.Data), "name") || strings.Contains(string(m.Data), "Ana") {
			t.Fatalf("record %s: want %s, cut to id, ward, age", m.Data, want)
		}
		if m.Header.Get("Xhub-Published-At") == "" {
			t.Errorf("no publication time: %v", m.Header)
		}
	}

	// Nothing else: not the raw data, not another department's subject,
	// no publishing, no JetStream API.
	for _, s := range []string{bus.DataPrefix + "health.cases", bus.OutSubject("edu", "health.cases"), "xhub.>", ">"} {
		if _, err := tax.nc.SubscribeSync(s); err != nil {
			t.Fatal(err)
		}
		tax.violation(t, s)
	}
	_ = tax.nc.Publish(bus.DataPrefix+"health.cases", []byte(`{"id":666,"ward":"x"}`))
	tax.violation(t, bus.DataPrefix+"health.cases")
	if _, err := tax.nc.Request("$JS.API.INFO", nil, time.Second); err == nil {
		t.Fatal("the JetStream API answered an integrator")
	}

	// A department without a grant connects and may read nothing.
	edu, err := dialNATS(t, env, env.Creds("edu", vocab.RoleSystem, "reader"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := edu.nc.SubscribeSync(own); err != nil {
		t.Fatal(err)
	}
	edu.violation(t, own)

	// An officer's certificate, no certificate, another CA: refused.
	if _, err := dialNATS(t, env, env.Creds("tax", vocab.RoleOfficer, "clerk")); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("an officer's certificate: %v", err)
	}
	if nc, err := nats.Connect("nats://"+env.Node.Embedded.Addr, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a plain connection without credentials was accepted")
	}

	// One department cannot use up the server's connections.
	var many []*natsClient
	for range natsauth.DefaultMaxConnsPerDept - 1 { // edu holds one already
		c, err := dialNATS(t, env, env.Creds("edu", vocab.RoleSystem, "reader"))
		if err != nil {
			t.Fatalf("connection %d: %v", len(many)+2, err)
		}
		many = append(many, c)
	}
	if _, err := dialNATS(t, env, env.Creds("edu", vocab.RoleSystem, "reader")); err == nil {
		t.Fatal("a department opened more NATS connections than the bound")
	}
	if _, err := dialNATS(t, env, env.Creds("fin", vocab.RoleSystem, "reader")); err != nil {
		t.Fatalf("another department was refused while edu is at its bound: %v", err)
	}
	for _, c := range many {
		c.nc.Close()
	}

	// Revoking the grant cuts tax off within a second; reconnected, it
	// may no longer read the subject, and receives nothing more.
	start := time.Now()
	if _, err := testenv.RPC(f.owner).Shares.RevokeGrant(ctx, &xhubv1.RevokeGrantRequest{GrantId: f.grant, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-tax.disconnected:
		t.Logf("cut off %v after the revocation call began", at.Sub(start))
		if at.Sub(start) > time.Second {
			t.Errorf("cut off after %v, more than a second", at.Sub(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the integrator was not cut off after its grant was revoked")
	}
	tax.violation(t, own)
	if _, err := f.provider.Publish(ctx, "health.cases", [][]byte{[]byte(casesRecords[0])}, ""); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatalf("a record after revocation: %s", m.Data)
	}

	// Revoking the credential cuts the connection and refuses it after.
	fin := env.Creds("fin", vocab.RoleSystem, "etl")
	c, err := dialNATS(t, env, fin)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, _, err := env.Admin.RevokeCredential(ctx, mustSerial(t, fin), "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-c.disconnected:
		if at.Sub(start) > time.Second {
			t.Errorf("cut off after %v, more than a second", at.Sub(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a revoked credential stayed connected")
	}
	if _, err := dialNATS(t, env, fin); err == nil {
		t.Fatal("a revoked credential connected again")
	}
}

// TestNATSIntegratorsExternalCluster: the same, with the hub as the auth
// callout of an external three-server cluster (processes), the servers
// configured with TLS on the hub's CA; the integrator connects to a
// server the hub is not connected to.
func TestNATSIntegratorsExternalCluster(t *testing.T) {
	dir := t.TempDir()
	callout, keyFile := testenv.CalloutFor(t, dir, t.TempDir())
	cluster := testenv.NewNATSCluster(t, 3)
	cluster.EnableCallout(t, callout)
	cluster.Start(t)
	// The hub talks to the first server only.
	first := fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", cluster.User, cluster.Pass, cluster.Nodes[0].Port)
	env := testenv.StartIn(t, dir, testenv.WithNATSURL(first), testenv.WithReplicas(3),
		testenv.WithNATSCallout(keyFile, fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", cluster.SysUser, cluster.SysPass, cluster.Nodes[0].Port)))
	f := grantOn(t, env)
	ctx := context.Background()

	c, err := vocab.LoadCreds(f.consumerCreds)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", cluster.Nodes[2].Port)
	disconnected := make(chan time.Time, 4)
	nc, err := nats.Connect("tls://"+addr, nats.Secure(c.ClientTLS(addr)), nats.Timeout(10*time.Second),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnected <- time.Now() }), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("a granted system on another server of the cluster: %v", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(bus.OutSubject("tax", "health.cases"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the NATS delivery's subscription", func() bool {
		_, err := env.Node.JS.Consumer(ctx, bus.DataStream, bus.SubscriptionConsumerName("tax", "health.cases", bus.OutSubscription))
		return err == nil
	})
	// A clustered consumer made with "deliver new" starts where its
	// leader says: publish until the feed is past that point.
	var m *nats.Msg
	for i := 0; m == nil; i++ {
		if i == 30 {
			for _, nd := range cluster.Nodes {
				t.Log(nd.Name, nd.Log())
			}
			t.Fatal("no record over the cluster")
		}
		if _, err := f.provider.Publish(ctx, "health.cases", [][]byte{[]byte(casesRecords[0])}, ""); err != nil {
			t.Fatal(err)
		}
		m, _ = sub.NextMsg(500 * time.Millisecond)
	}
	if strings.Contains(string(m.Data), "Ana") {
		t.Fatalf("a field outside the grant: %s", m.Data)
	}
	start := time.Now()
	if _, err := testenv.RPC(f.owner).Shares.RevokeGrant(ctx, &xhubv1.RevokeGrantRequest{GrantId: f.grant, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-disconnected:
		t.Logf("cut off %v after the revocation call began", at.Sub(start))
		if at.Sub(start) > time.Second {
			t.Errorf("cut off after %v, more than a second", at.Sub(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the integrator on another server was not cut off")
	}
}

type syncBuffer = testenv.Buffer

// TestNATSRefusalsBounded: an unauthenticated client hammering the NATS
// port costs at most one log line a second; every refusal is counted in
// xhub_nats_connections_refused_total by its reason.
func TestNATSRefusalsBounded(t *testing.T) {
	var logs syncBuffer
	env := testenv.Start(t, testenv.WithNATSListen(), testenv.WithMetrics(), func(c *hub.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	addr := env.Node.Embedded.Addr
	const attempts = 300
	start := time.Now()
	refused := 0
	for i := 0; i < attempts && time.Since(start) < 30*time.Second; i++ {
		nc, err := nats.Connect("nats://"+addr, nats.NoReconnect(), nats.Timeout(5*time.Second))
		if err == nil {
			nc.Close()
			t.Fatal("a client with no certificate was let in")
		}
		refused++
	}
	elapsed := time.Since(start)
	if refused < 50 {
		t.Fatalf("only %d attempts in %s", refused, elapsed)
	}
	want := fmt.Sprintf(`xhub_nats_connections_refused_total{reason="no_certificate"} %d`, refused)
	testenv.WaitFor(t, 10*time.Second, want, func() bool { return strings.Contains(metricsText(t, env), want) })
	calloutLine := `msg="NATS connection refused" `
	lines := strings.Count(logs.String(), calloutLine)
	if limit := int(elapsed/natsauth.RefusalLogEvery) + 2; lines > limit {
		t.Fatalf("%d refusals in %s wrote %d log lines, want at most %d", refused, elapsed.Round(time.Millisecond), lines, limit)
	}
	if lines == 0 || !strings.Contains(logs.String(), "unlogged_before") {
		t.Fatalf("the refusals are not sampled in the log: %q", logs.String())
	}

	// Refused by the server itself, before any callout: a TLS handshake
	// without a client certificate, a wrong password. Counted, sampled.
	ca, err := vocab.LoadCreds(env.Node.AdminCreds)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.CA)
	const each = 100
	serverLines := strings.Count(logs.String(), bus.ServerRefusalLine)
	start = time.Now()
	for range each {
		if nc, err := nats.Connect("tls://"+addr, nats.Secure(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}), nats.NoReconnect(), nats.Timeout(5*time.Second)); err == nil {
			nc.Close()
			t.Fatal("a TLS client without a certificate was let in")
		}
		if nc, err := nats.Connect("nats://xhub:wrong@"+addr, nats.NoReconnect(), nats.Timeout(5*time.Second)); err == nil {
			nc.Close()
			t.Fatal("a wrong password was let in")
		}
	}
	elapsed = time.Since(start)
	for _, reason := range []string{"tls_handshake", "authorization"} {
		prefix := fmt.Sprintf(`xhub_nats_handshakes_refused_total{reason=%q} `, reason)
		testenv.WaitFor(t, 10*time.Second, prefix+">= 100", func() bool {
			for _, l := range strings.Split(metricsText(t, env), "\n") {
				if v, ok := strings.CutPrefix(l, prefix); ok {
					n, _ := strconv.Atoi(v)
					return n >= each
				}
			}
			return false
		})
	}
	lines = strings.Count(logs.String(), bus.ServerRefusalLine) - serverLines
	if limit := int(elapsed/time.Second) + 3; lines > limit {
		t.Fatalf("%d refused handshakes in %s wrote %d log lines, want at most %d", 2*each, elapsed.Round(time.Millisecond), lines, limit)
	}
}
