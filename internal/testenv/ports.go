package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Ports for processes that must know each other's ports before they
// start (a NATS cluster's routes, a hub's --listen) are chosen so that
// nothing else is handed them while the test runs:
//
//   - below the kernel's ephemeral range, so no bind to port 0 and no
//     outgoing connection, of this or any process, is given one (a port
//     from a closed listener on port 0 goes back to the pool at once,
//     and a busy machine takes seconds to start the process meant for it);
//   - reserved across processes by a lock on a file named after the port
//     (test binaries of several packages run at once, each choosing),
//     held until the test ends; a process that dies releases its locks.
//
// Two test clusters that were given the same port used to route into one
// another (one cluster name, no route authorisation), and a hub of one
// test then found another test's ledger: "this node's certificate
// authority is not the hub's"; a nats-server that lost its port left an
// R3 stream "no suitable peers for placement".

// portFloor is the lowest port chosen.
const portFloor = 10000

// ephemeralLow is the kernel's first ephemeral port (Linux
// net.ipv4.ip_local_port_range; 32768 elsewhere, or where unreadable).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768
}

// FreePorts returns n distinct ports free on 127.0.0.1, reserved for the
// test (see above): each stays this test's until it ends.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := reservePorts(n, func(release func()) { t.Cleanup(release) })
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

func reservePorts(n int, cleanup func(func())) ([]int, error) {
	hi := ephemeralLow()
	if hi-portFloor < 1000 {
		return nil, fmt.Errorf("testenv: the ephemeral port range starts at %d: no room below it for reserved ports", hi)
	}
	dir := filepath.Join(os.TempDir(), "xhub-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("testenv: no free port below %d after %d tries", hi, tries)
		}
		p := portFloor + rand.IntN(hi-portFloor)
		release, ok := lockPort(filepath.Join(dir, strconv.Itoa(p)))
		if !ok {
			continue // another test holds it
		}
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err != nil {
			release() // something outside the tests listens there
			continue
		} else {
			l.Close()
		}
		cleanup(release)
		ports = append(ports, p)
	}
	return ports, nil
}

// ReservePorts reserves the given ports for the test (a document's fixed
// ports), waiting up to two minutes while another test holds one or
// something listens there.
func ReservePorts(t testing.TB, ports ...int) {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "xhub-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for _, p := range ports {
		for {
			release, ok := lockPort(filepath.Join(dir, strconv.Itoa(p)))
			if ok {
				l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
				if err == nil {
					l.Close()
					t.Cleanup(release)
					break
				}
				release()
			}
			if time.Now().After(deadline) {
				t.Fatalf("port %d: held by another test or in use for 2 minutes", p)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
