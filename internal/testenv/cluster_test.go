package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestClustersApart: a test cluster whose route names a port another
// test's cluster holds (two tests given one port, on a busy machine)
// never routes into that cluster: a message published on it is not seen
// by the other cluster's clients, and the other cluster's server refuses
// the route.
func TestClustersApart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	a := StartNATSCluster(t, 3)
	b := NewNATSCluster(t, 3)
	// b's second server was to have the cluster port a's second server
	// holds; it never starts, and b's others dial a's.
	b.Nodes[1].ClusterPort = a.Nodes[1].ClusterPort
	for _, nd := range b.Nodes {
		if err := os.WriteFile(nd.conf, []byte(b.conf(nd)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := NATSServerBinary(t)
	for _, i := range []int{0, 2} {
		b.Nodes[i].start(t, bin)
		b.Nodes[i].waitListening(t)
	}
	connect := func(c *NATSCluster, nd *NATSNode) *nats.Conn {
		nc, err := nats.Connect(fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", c.User, c.Pass, nd.Port), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	inA, err := connect(a, a.Nodes[0]).SubscribeSync("apart.probe")
	if err != nil {
		t.Fatal(err)
	}
	inB, err := connect(b, b.Nodes[2]).SubscribeSync("apart.probe")
	if err != nil {
		t.Fatal(err)
	}
	pub := connect(b, b.Nodes[0])
	refused := func() bool {
		l := a.Nodes[1].Log() + b.Nodes[0].Log()
		return strings.Contains(l, "Cluster Name Conflict") || strings.Contains(l, "Authorization Violation")
	}
	deadline := time.Now().Add(60 * time.Second)
	for bSaw := false; ; {
		if err := pub.Publish("apart.probe", []byte("b")); err != nil {
			t.Fatal(err)
		}
		if m, err := inA.NextMsg(100 * time.Millisecond); err == nil {
			t.Fatalf("a message published on one test's cluster reached another's (%q): the clusters routed into one another", m.Data)
		}
		if _, err := inB.NextMsg(10 * time.Millisecond); err == nil {
			bSaw = true
		}
		if bSaw && refused() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 60s: b's own servers routed %v; the route to a's server refused (another cluster's name, no route password) %v\na's n2 log:\n%s\nb's n1 log:\n%s", bSaw, refused(), a.Nodes[1].Log(), b.Nodes[0].Log())
		}
	}
	// Once refused, still apart.
	for range 5 {
		_ = pub.Publish("apart.probe", []byte("b"))
	}
	_ = pub.Flush()
	if m, err := inA.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatalf("a message of b reached a: %q", m.Data)
	}
}

// TestFreePortsReserved: ports handed to a test lie below the kernel's
// ephemeral range (no bind to port 0 nor outgoing connection is given
// one) and are not handed to another test (another process choosing at
// the same time) until the first ends.
func TestFreePortsReserved(t *testing.T) {
	low := ephemeralLow()
	held := map[int]bool{}
	for _, p := range FreePorts(t, 50) {
		if p >= low {
			t.Fatalf("port %d is in the ephemeral range (from %d): the kernel may give it to anyone meanwhile", p, low)
		}
		if held[p] {
			t.Fatalf("port %d handed twice", p)
		}
		held[p] = true
	}
	// Another chooser (a lock is per open file, so this stands for another
	// process) never gets a held port.
	for range 20 {
		ports, err := reservePorts(50, func(release func()) { t.Cleanup(release) })
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if held[p] {
				t.Fatalf("port %d, held by this test, handed to another", p)
			}
			held[p] = true
		}
	}
}
