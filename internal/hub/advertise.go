package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/internal/buildinfo"
	"github.com/xhub-gov/xhub/internal/bus"
)

var osHostname = os.Hostname

// MaxAdvertise bounds the addresses one node advertises.
const MaxAdvertise = 16

// maxHubAddrs bounds the addresses a creds file lists, every node's.
const maxHubAddrs = 64

// ParseAdvertise reads --advertise: comma-separated host:port, each host a
// DNS name or an IP address, at most MaxAdvertise, duplicates dropped.
// These are the names clients dial this node by: they go into its server
// certificate and into the creds files any node issues.
func ParseAdvertise(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		a = strings.TrimSpace(a)
		if err := checkAdvertised(a); err != nil {
			return nil, err
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
		if len(out) > MaxAdvertise {
			return nil, fmt.Errorf("--advertise: more than %d addresses", MaxAdvertise)
		}
	}
	return out, nil
}

// checkAdvertised checks one host:port.
func checkAdvertised(a string) error {
	if len(a) > 260 {
		return fmt.Errorf("--advertise: %.40q…: longer than a host name and port can be", a)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("--advertise %q: want host:port (an IPv6 address in brackets, [::1]:7443)", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || port != strconv.Itoa(p) {
		return fmt.Errorf("--advertise %q: port %q is not a number from 1 to 65535", a, port)
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return fmt.Errorf("--advertise %q: %s is no address a client can dial; give the address or name clients use", a, host)
		}
		return nil
	}
	if !validHostName(host) {
		return fmt.Errorf("--advertise %q: %q is neither an IP address nor a DNS name (letters, digits, '-', labels of 1 to 63 separated by '.')", a, host)
	}
	return nil
}

func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for l := range strings.SplitSeq(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

// ownAddrs are the addresses this node is dialled by: --advertise, or
// else its listen address (an unspecified host as localhost).
func (n *Node) ownAddrs() []string {
	if len(n.cfg.Advertise) > 0 {
		return n.cfg.Advertise
	}
	return []string{n.dialAddr()}
}

// certHosts are the names and addresses in this node's server
// certificate: the listen host, loopback, the machine's name, and every
// advertised host.
func (n *Node) certHosts(listen string) []string {
	host, _, _ := net.SplitHostPort(listen)
	hostname, _ := osHostname()
	hosts := []string{host, "127.0.0.1", "::1", "localhost", hostname, "xhub"}
	for _, a := range n.cfg.Advertise {
		h, _, _ := net.SplitHostPort(a)
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// HubAddrs are the addresses a creds file issued here lists: this node's
// first, then every other node's heard from within CredsNodesWithin (up
// or not: a node down for a while comes back; one removed, or forgotten
// by node forget, is not listed), each checked again, at most
// maxHubAddrs.
func (n *Node) HubAddrs(ctx context.Context) []string {
	out := slices.Clone(n.ownAddrs())
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	beats, err := bus.Beats(ctx, n.JS)
	if err != nil {
		n.cfg.Logger.Warn("creds list only this node's addresses: the nodes' heartbeats are unreadable", "err", err)
		return out
	}
	for _, b := range beats {
		if b.Name == n.cfg.Name || n.cfg.Now().Sub(b.SeenAt) > n.cfg.CredsNodesWithin {
			continue
		}
		for _, a := range b.Addrs {
			if len(out) >= maxHubAddrs {
				return out
			}
			if checkAdvertised(a) == nil && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// Beats are every node's last heartbeat.
func (n *Node) Beats(ctx context.Context) ([]bus.NodeBeat, error) { return bus.Beats(ctx, n.JS) }

// ForgetBeat removes the last heartbeat of the node named name.
func (n *Node) ForgetBeat(ctx context.Context, name string) error {
	return bus.ForgetBeat(ctx, n.JS, name)
}

// heartbeat publishes this node's beat every HeartbeatInterval until the
// node stops. A beat that fails is logged (once until one succeeds
// again), never a reason to stop.
func (n *Node) heartbeat() {
	inst := make([]byte, 8)
	_, _ = rand.Read(inst)
	b := bus.NodeBeat{Name: n.cfg.Name, Instance: hex.EncodeToString(inst), Addrs: n.ownAddrs(), Version: buildinfo.Get().Version,
		StartedAt: n.cfg.Now().UTC(), Interval: n.cfg.HeartbeatInterval}
	log := n.cfg.Logger.With("component", "heartbeat")
	failing := false
	n.supervise("heartbeat", func() error {
		t := time.NewTicker(n.cfg.HeartbeatInterval)
		defer t.Stop()
		warned := false
		for {
			ctx, cancel := context.WithTimeout(context.Background(), min(n.cfg.HeartbeatInterval, 5*time.Second))
			// Someone else's beat under this name since this node's last:
			// two nodes share one --name, and node list shows one of them.
			if last, err := bus.LastBeat(ctx, n.JS, n.cfg.Name); err == nil && !b.SeenAt.IsZero() && last.Instance != b.Instance && !warned {
				log.Warn("another node beats under this node's --name: give each node its own", "name", n.cfg.Name, "other_addrs", last.Addrs)
				warned = true
			}
			b.Applied, b.SeenAt = n.CP.Applied(), n.cfg.Now().UTC()
			err := bus.PublishBeat(ctx, n.JS, b)
			cancel()
			if err != nil && !failing {
				log.Warn("heartbeat not stored; node list shows this node down until one is", "err", err)
			}
			failing = err != nil
			select {
			case <-n.stopping:
				return nil
			case <-t.C:
			}
		}
	})
}
