package hub_test

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/buildinfo"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
)

func withHeartbeat(d time.Duration) testenv.Option {
	return func(c *hub.Config) { c.HeartbeatInterval = d }
}

func withAdvertise(a ...string) testenv.Option {
	return func(c *hub.Config) { c.Advertise = a }
}

// TestNodeList: node list shows every node of the deployment, up while
// its heartbeats come (within three intervals), with the sequence it has
// applied and its version; a node stopped shows down after a few
// intervals, and up again once restarted.
func TestNodeList(t *testing.T) {
	const beat = 200 * time.Millisecond
	a := testenv.Start(t, testenv.WithNATSListen(), testenv.WithName("hub-a"), withHeartbeat(beat))
	ctx := context.Background()
	tok, _, err := a.Admin.CreateJoinToken(ctx, "hub-b", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := testenv.Start(t, testenv.WithJoin(tok), testenv.WithName("hub-b"), withHeartbeat(beat))
	d, err := a.Admin.AddDepartment(ctx, "health", "Health")
	if err != nil {
		t.Fatal(err)
	}
	byName := func(c *adapters.Client) map[string]adapters.NodeInfo {
		ns, err := c.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]adapters.NodeInfo{}
		for _, n := range ns {
			m[n.Name] = n
		}
		return m
	}
	testenv.WaitFor(t, time.Minute, "both nodes up, each past the department's entry", func() bool {
		m := byName(b.Admin)
		return len(m) == 2 && m["hub-a"].Up && m["hub-b"].Up && m["hub-a"].Applied >= d.Seq && m["hub-b"].Applied >= d.Seq
	})
	m := byName(a.Admin)
	if v := buildinfo.Get().Version; m["hub-a"].Version != v || m["hub-b"].Version != v {
		t.Fatalf("versions %q %q, want %q", m["hub-a"].Version, m["hub-b"].Version, v)
	}
	// Several intervals pass: still up (each beat renews it).
	seen := m["hub-b"].LastSeen
	testenv.WaitFor(t, time.Minute, "hub-b's later beats", func() bool {
		n := byName(a.Admin)["hub-b"]
		return n.Up && n.LastSeen.Sub(seen) >= 4*beat
	})

	b.Stop()
	testenv.WaitFor(t, time.Minute, "hub-b shown down", func() bool {
		m := byName(a.Admin)
		return !m["hub-b"].Up && m["hub-a"].Up
	})
	b.Restart()
	testenv.WaitFor(t, time.Minute, "hub-b up again", func() bool { return byName(a.Admin)["hub-b"].Up })
}

// TestAdvertise: --advertise puts its names and addresses in the node's
// server certificate (beside localhost and loopback), and every creds
// file, issued on any node, lists every node's advertised addresses, the
// issuing node's first.
func TestAdvertise(t *testing.T) {
	const beat = 200 * time.Millisecond
	a := testenv.Start(t, testenv.WithNATSListen(), testenv.WithName("hub-a"), withHeartbeat(beat),
		withAdvertise("hub-a.example.org:7443", "10.20.30.40:7443"))
	ctx := context.Background()
	tok, _, err := a.Admin.CreateJoinToken(ctx, "hub-b", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := testenv.Start(t, testenv.WithJoin(tok), testenv.WithName("hub-b"), withHeartbeat(beat), withAdvertise("hub-b.example.org:7444", "[fd00::7]:7444"))

	conn, err := tls.Dial("tcp", a.Addr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	cert := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	for _, h := range []string{"hub-a.example.org", "localhost"} {
		if cert.VerifyHostname(h) != nil {
			t.Errorf("a's server certificate does not name %s: DNS %v", h, cert.DNSNames)
		}
	}
	for _, ip := range []string{"10.20.30.40", "127.0.0.1"} {
		if !slices.ContainsFunc(cert.IPAddresses, func(x net.IP) bool { return x.Equal(net.ParseIP(ip)) }) {
			t.Errorf("a's server certificate does not hold %s: %v", ip, cert.IPAddresses)
		}
	}

	admin, err := vocab.LoadCreds(a.Node.AdminCreds)
	if err != nil {
		t.Fatal(err)
	}
	if admin.Hub != "hub-a.example.org:7443,10.20.30.40:7443" {
		t.Errorf("a's admin.creds: hub %q", admin.Hub)
	}
	want := "hub-b.example.org:7444,[fd00::7]:7444,hub-a.example.org:7443,10.20.30.40:7443"
	testenv.WaitFor(t, time.Minute, "a creds file issued on b listing both nodes", func() bool {
		_, file, err := b.Admin.IssueCredential(ctx, vocab.Identity{Dept: "hub", Role: vocab.RoleAdmin, Name: "ops-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")}, 1)
		if err != nil {
			t.Fatal(err)
		}
		c, err := vocab.ParseCreds(file)
		if err != nil {
			t.Fatal(err)
		}
		return c.Hub == want
	})
}

func TestParseAdvertise(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"hub-1.example.org:7443", []string{"hub-1.example.org:7443"}, ""},
		{" a.example:1 , 10.0.0.1:7443,[::1]:7443,a.example:1", []string{"a.example:1", "10.0.0.1:7443", "[::1]:7443"}, ""},
		{"hub-1", nil, "want host:port"},
		{"hub-1:0", nil, "not a number from 1 to 65535"},
		{"hub-1:99999", nil, "not a number from 1 to 65535"},
		{"hub-1:+80", nil, "not a number from 1 to 65535"},
		{"0.0.0.0:7443", nil, "no address a client can dial"},
		{"[::]:7443", nil, "no address a client can dial"},
		{"hub_1:7443", nil, "neither an IP address nor a DNS name"},
		{"-hub:7443", nil, "neither an IP address nor a DNS name"},
		{"a..b:7443", nil, "neither an IP address nor a DNS name"},
		{"a:1,", nil, "want host:port"},
		{strings.Repeat("a:1,", 0) + strings.Join(func() []string {
			var s []string
			for i := range 17 {
				s = append(s, "h"+strings.Repeat("x", i)+":1")
			}
			return s
		}(), ","), nil, "more than 16"},
	}
	for _, tt := range tests {
		got, err := hub.ParseAdvertise(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseAdvertise(%q): %v, want an error with %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseAdvertise(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseAdvertise: any input is refused with an error or gives
// addresses that each parse again alone, at most 16 of them.
func FuzzParseAdvertise(f *testing.F) {
	for _, s := range []string{"", "a:1", "hub-1.example.org:7443,10.0.0.1:7443", "[fd00::1]:7443", "[::]:1", "a:65536", "\xff:1", "a:1,,b:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := hub.ParseAdvertise(s)
		if err != nil {
			return
		}
		if len(got) > hub.MaxAdvertise {
			t.Fatalf("%d addresses", len(got))
		}
		for _, a := range got {
			if again, err := hub.ParseAdvertise(a); err != nil || len(again) != 1 || again[0] != a {
				t.Fatalf("%q parsed from %q does not parse alone: %v %v", a, s, again, err)
			}
		}
	})
}

// publishBeat stores a heartbeat as a node named name would have, last
// seen ago.
func publishBeat(t *testing.T, env *testenv.Env, name string, ago time.Duration, addrs ...string) {
	t.Helper()
	b := bus.NodeBeat{Name: name, Instance: "i-" + name, Addrs: addrs, Version: "v0", SeenAt: time.Now().UTC().Add(-ago), StartedAt: time.Now().UTC().Add(-ago - time.Hour), Interval: 10 * time.Second}
	if err := bus.PublishBeat(context.Background(), env.Node.JS, b); err != nil {
		t.Fatal(err)
	}
}

// issuedHubs issues a credential and returns the addresses its creds
// file lists.
func issuedHubs(t *testing.T, env *testenv.Env) string {
	t.Helper()
	_, file, err := env.Admin.IssueCredential(context.Background(), vocab.Identity{Dept: "hub", Role: vocab.RoleAdmin, Name: "ops-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := vocab.ParseCreds(file)
	if err != nil {
		t.Fatal(err)
	}
	return c.Hub
}

// TestCredsListRecentNodes: a creds file lists the nodes heard from
// within CredsNodesWithin (an hour by default), not a node whose last
// heartbeat is older (removed, its heartbeat kept for a week).
func TestCredsListRecentNodes(t *testing.T) {
	env := testenv.Start(t)
	publishBeat(t, env, "gone", 2*time.Hour, "gone.example.org:7443")
	publishBeat(t, env, "resting", 10*time.Minute, "resting.example.org:7443")
	got := issuedHubs(t, env)
	if !strings.Contains(got, "resting.example.org:7443") {
		t.Errorf("a node heard from 10 minutes ago is not in the creds file: %q", got)
	}
	if strings.Contains(got, "gone.example.org") {
		t.Errorf("a node last heard from 2 hours ago is still in the creds file: %q", got)
	}
	if !strings.HasPrefix(got, env.Addr()) {
		t.Errorf("creds file's hubs %q do not start with the issuing node's %s", got, env.Addr())
	}
	// A shorter window: the 10-minute-old node goes too.
	short := testenv.Start(t, func(c *hub.Config) { c.CredsNodesWithin = 5 * time.Minute })
	publishBeat(t, short, "resting", 10*time.Minute, "resting.example.org:7443")
	if got := issuedHubs(t, short); strings.Contains(got, "resting") {
		t.Errorf("--creds-nodes-within 5m lists a node heard from 10 minutes ago: %q", got)
	}
	if _, err := hub.Start(context.Background(), hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", HeartbeatInterval: time.Minute, CredsNodesWithin: time.Minute}); err == nil || !strings.Contains(err.Error(), "--creds-nodes-within") {
		t.Errorf("a window shorter than three heartbeat intervals: %v", err)
	}
}

// TestNodeForget: node forget removes a node's heartbeat (node list no
// longer shows it, new creds files no longer list it); a node that is up
// is refused unless force; an unknown or malformed name, or a caller
// that is not the operator, is refused and forgets nothing.
func TestNodeForget(t *testing.T) {
	env := testenv.Start(t, withHeartbeat(200*time.Millisecond))
	ctx := context.Background()
	publishBeat(t, env, "hub-old", 20*time.Minute, "hub-old.example.org:7443")
	publishBeat(t, env, "hub-other", 20*time.Minute, "hub-other.example.org:7443")
	names := func() []string {
		ns, err := env.Admin.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		return out
	}
	testenv.WaitFor(t, time.Minute, "this node's own heartbeat", func() bool { return slices.Contains(names(), "xhub") })
	if got := issuedHubs(t, env); !strings.Contains(got, "hub-old.example.org") {
		t.Fatalf("before forget, creds list %q", got)
	}

	nd, err := env.Admin.ForgetNode(ctx, "hub-old", false)
	if err != nil {
		t.Fatal(err)
	}
	if nd.Name != "hub-old" || !slices.Equal(nd.Addrs, []string{"hub-old.example.org:7443"}) {
		t.Errorf("forgotten: %+v", nd)
	}
	if n := names(); slices.Contains(n, "hub-old") || !slices.Contains(n, "hub-other") {
		t.Errorf("after forget hub-old, node list: %v", n)
	}
	if got := issuedHubs(t, env); strings.Contains(got, "hub-old") || !strings.Contains(got, "hub-other") {
		t.Errorf("after forget hub-old, creds list %q", got)
	}

	for _, tt := range []struct {
		name, code string
	}{
		{"xhub", "FailedPrecondition"}, // up
		{"hub-old", "NotFound"},        // already forgotten
		{"*", "InvalidArgument"},
		{">", "InvalidArgument"},
		{"a..b", "InvalidArgument"},
		{"", "InvalidArgument"},
	} {
		if _, err := env.Admin.ForgetNode(ctx, tt.name, false); err == nil || !strings.Contains(err.Error(), tt.code) {
			t.Errorf("forget %q: %v, want %s", tt.name, err, tt.code)
		}
	}
	if n := names(); !slices.Contains(n, "hub-other") || !slices.Contains(n, "xhub") {
		t.Errorf("a refused forget removed a heartbeat: %v", n)
	}
	if _, err := env.Admin.ForgetNode(ctx, "xhub", true); err != nil {
		t.Fatalf("forget --force of a node that is up: %v", err)
	}
	// Its next heartbeat brings it back.
	testenv.WaitFor(t, time.Minute, "the forced node beating again", func() bool { return slices.Contains(names(), "xhub") })

	env.Dept("tax")
	officer := env.Officer("tax")
	if _, err := officer.ForgetNode(ctx, "hub-other", true); err == nil || !strings.Contains(err.Error(), "PermissionDenied") {
		t.Errorf("an officer forgets a node: %v", err)
	}
	if !slices.Contains(names(), "hub-other") {
		t.Error("an officer's refused forget removed the heartbeat")
	}
}
