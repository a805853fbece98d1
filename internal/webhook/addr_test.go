package webhook

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/internal/testenv/netns"
)

// guardCases are addresses and whether the guard lets a webhook reach
// them: every range issue 20 found let through, the ones the first guard
// already refused, IPv6 forms carrying IPv4, and public addresses.
var guardCases = []struct {
	addr    string
	allowed bool
	why     string // a word the refusal names
}{
	// Public.
	{"8.8.8.8", true, ""},
	{"1.1.1.1", true, ""},
	{"93.184.215.14", true, ""},
	{"2001:4860:4860::8888", true, ""},
	{"2606:4700:4700::1111", true, ""},
	{"::ffff:8.8.8.8", true, ""},  // mapped: the socket talks to 8.8.8.8
	{"2002:808:808::1", true, ""}, // 6to4 carrying 8.8.8.8
	{"192.31.196.1", true, ""},    // AS112, global
	{"2620:4f:8000::1", true, ""}, // AS112 direct delegation, global
	{"100.63.255.255", true, ""},  // just below shared address space
	{"100.128.0.0", true, ""},     // just above it
	{"198.17.255.255", true, ""},  // just below benchmarking
	{"198.20.0.0", true, ""},      // just above it
	{"223.255.255.255", true, ""}, // the last unicast /8
	{"3fff:1000::1", true, ""},    // above the documentation /20
	{"2001:200::1", true, ""},     // above IETF protocol assignments
	{"1.0.0.0", true, ""},         // just above "this network"
	{"192.0.1.0", true, ""},       // just above IETF protocol assignments
	{"2a00:1450:4001:82a::200e", true, ""},

	// The holes issue 20 found.
	{"100.64.0.0", false, "shared address space"},
	{"100.100.100.200", false, "shared address space"}, // Alibaba Cloud's metadata service
	{"100.127.255.255", false, "shared address space"},
	{"198.18.0.1", false, "benchmarking"},
	{"198.19.255.255", false, "benchmarking"},
	{"192.0.0.1", false, "IPv4 service continuity"},
	{"192.0.0.100", false, "IETF protocol assignments"},
	{"192.0.0.9", false, "IETF protocol assignments"}, // a global /32 inside a non-global /24
	{"192.0.0.170", false, "NAT64/DNS64"},
	{"192.0.0.255", false, "IETF protocol assignments"},
	{"240.0.0.1", false, "reserved"},
	{"255.255.255.254", false, "reserved"},
	{"255.255.255.255", false, "limited broadcast"},
	{"::127.0.0.1", false, "IPv4-compatible"},
	{"::169.254.169.254", false, "IPv4-compatible"},
	{"::8.8.8.8", false, "IPv4-compatible"}, // deprecated whatever it carries
	{"64:ff9b::169.254.169.254", false, "NAT64"},
	{"64:ff9b::100.100.100.200", false, "NAT64"},
	{"64:ff9b::8.8.8.8", false, "NAT64"}, // would leave through the hub's own translator
	{"64:ff9b:1::1", false, "local-use NAT64"},
	{"64:ff9b:1:ffff::a00:1", false, "local-use NAT64"},
	{"fec0::1", false, "site-local"},
	{"feff:ffff::1", false, "site-local"},

	// IPv6 forms carrying an internal IPv4 address.
	{"::ffff:127.0.0.1", false, "loopback"},
	{"::ffff:100.100.100.200", false, "shared address space"},
	{"::ffff:169.254.169.254", false, "link-local"},
	{"2002:7f00:1::1", false, "loopback"},                     // 6to4 carrying 127.0.0.1
	{"2002:a9fe:a9fe::1", false, "link-local"},                // 6to4 carrying 169.254.169.254
	{"2002:6464:64c8::1", false, "shared address"},            // 6to4 carrying 100.100.100.200
	{"2002:c0a8:1::1", false, "private-use"},                  // 6to4 carrying 192.168.0.1
	{"2001:0:4136:e378:8000:63bf:80ff:fffe", false, "Teredo"}, // client 127.0.0.1
	{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false, "Teredo"}, // client 192.0.2.45

	// What the first guard refused already.
	{"127.0.0.1", false, "loopback"},
	{"127.255.255.254", false, "loopback"},
	{"10.0.0.1", false, "private-use"},
	{"172.16.0.1", false, "private-use"},
	{"192.168.1.1", false, "private-use"},
	{"169.254.169.254", false, "link-local"},
	{"0.0.0.0", false, "this network"},
	{"0.1.2.3", false, "this network"},
	{"224.0.0.1", false, "multicast"},
	{"239.255.255.255", false, "multicast"},
	{"::", false, "unspecified"},
	{"::1", false, "loopback"},
	{"fe80::1", false, "link-local"},
	{"fe80::1%lo", false, "link-local"},
	{"fd00::1", false, "unique-local"},
	{"fc00::1", false, "unique-local"},
	{"ff02::1", false, "multicast"},

	// The rest of the registries.
	{"192.0.2.1", false, "TEST-NET-1"},
	{"198.51.100.1", false, "TEST-NET-2"},
	{"203.0.113.5", false, "TEST-NET-3"},
	{"192.88.99.1", false, "6to4 relay"},
	{"100::1", false, "discard-only"},
	{"100:0:0:1::1", false, "dummy"},
	{"2001:2::1", false, "benchmarking"},
	{"2001:db8::1", false, "documentation"},
	{"2001:10::1", false, "ORCHID"},
	{"2001:20::1", false, "IETF protocol assignments"}, // ORCHIDv2 is global, inside the /23
	{"2001:1::1", false, "IETF protocol assignments"},
	{"3fff::1", false, "documentation"},
	{"5f00::1", false, "segment routing"},
	{"4000::1", false, "outside global unicast"},
	{"1::1", false, "outside global unicast"},
	{"e000::1", false, "outside global unicast"},
}

// TestGuardTable: the guard allows exactly the globally routable unicast
// addresses of the table, and names why it refuses the others.
func TestGuardTable(t *testing.T) {
	d := &Dispatcher{}
	for _, c := range guardCases {
		a := netip.MustParseAddr(c.addr)
		err := d.control("tcp", netip.AddrPortFrom(a, 443).String(), nil)
		if c.allowed {
			if err != nil {
				t.Errorf("%s refused: %v", c.addr, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s allowed, want refused (%s)", c.addr, c.why)
			continue
		}
		if !errors.Is(err, ErrNotPublic) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: %v, want ErrNotPublic naming %q", c.addr, err, c.why)
		}
	}
}

// TestGuardTableComplete: the first and last address of every non-global
// prefix of the tables is refused (the table is what the guard does).
func TestGuardTableComplete(t *testing.T) {
	for _, s := range append(append([]special{}, specials4...), specials6...) {
		if s.Global {
			continue
		}
		first, last := s.Prefix.Masked().Addr(), lastAddr(s.Prefix)
		for _, a := range []netip.Addr{first, last} {
			if err := CheckPublic(a); !errors.Is(err, ErrNotPublic) {
				t.Errorf("%s in %s (%s) allowed", a, s.Prefix, s.Name)
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestGuardInNetNS dials every address of the table through the client
// deliveries use, in a network namespace holding only loopback, as the
// attack did: the refused ones are refused by the guard before any
// connect (ErrNotPublic, not a network error); the allowed ones pass it
// and then find no route.
func TestGuardInNetNS(t *testing.T) {
	if !netns.Run(t, netns.LoopbackOnly) {
		return
	}
	d := &Dispatcher{cfg: Config{Timeout: 5 * time.Second}}
	c := d.newClient()
	for _, tc := range guardCases {
		a := netip.MustParseAddr(tc.addr).WithZone("")
		url := "http://" + netip.AddrPortFrom(a, 80).String() + "/hook"
		res, err := c.Post(url, "application/json", strings.NewReader("{}"))
		if err == nil {
			res.Body.Close()
			t.Errorf("%s: delivered, in a namespace with only loopback", tc.addr)
			continue
		}
		switch {
		case !tc.allowed && !errors.Is(err, ErrNotPublic):
			t.Errorf("%s: %v, want the guard's refusal", tc.addr, err)
		case tc.allowed && errors.Is(err, ErrNotPublic):
			t.Errorf("%s: refused by the guard: %v", tc.addr, err)
		case tc.allowed && !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EHOSTUNREACH):
			t.Errorf("%s: %v, want no route (the guard let it by)", tc.addr, err)
		}
		var op *net.OpError
		if !tc.allowed && errors.As(err, &op) && op.Op != "dial" {
			t.Errorf("%s: refused at %s, want at dial", tc.addr, op.Op)
		}
	}
}
