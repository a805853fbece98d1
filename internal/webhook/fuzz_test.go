package webhook

import (
	"errors"
	"net"
	"net/netip"
	"testing"
)

// The oracle: the non-global ranges written out again, by other hands
// than the guard's table, and judged with package net rather than netip.
var (
	oracle4 = cidrs("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4")
	oracle6 = cidrs("::/8", "100::/64", "100:0:0:1::/64", "64:ff9b::/96", "64:ff9b:1::/48", "2001::/23",
		"2001:db8::/32", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8")
)

func cidrs(ss ...string) []*net.IPNet {
	var out []*net.IPNet
	for _, s := range ss {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			panic(err)
		}
		out = append(out, n)
	}
	return out
}

func inAny(ns []*net.IPNet, ip net.IP) *net.IPNet {
	for _, n := range ns {
		if n.Contains(ip) {
			return n
		}
	}
	return nil
}

// oracleFault says why the oracle would refuse ip16 (16 bytes), or "".
func oracleFault(ip16 []byte) string {
	ip := net.IP(ip16)
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return "a net.IP predicate"
	}
	if v4 := ip.To4(); v4 != nil { // IPv4, or IPv4-mapped: the socket talks IPv4
		if n := inAny(oracle4, v4); n != nil {
			return "IPv4 in " + n.String()
		}
		return ""
	}
	if ip16[0]&0xe0 != 0x20 {
		return "IPv6 outside 2000::/3"
	}
	if n := inAny(oracle6, ip); n != nil {
		return "IPv6 in " + n.String()
	}
	// What a 6to4 address carries (Teredo is inside 2001::/23 already).
	if ip16[0] == 0x20 && ip16[1] == 0x02 {
		if n := inAny(oracle4, net.IPv4(ip16[2], ip16[3], ip16[4], ip16[5])); n != nil {
			return "6to4 carrying IPv4 in " + n.String()
		}
	}
	return ""
}

// checkOne is the differential: the guard never allows what the oracle
// refuses, and every refusal is ErrNotPublic.
func checkOne(t *testing.T, a netip.Addr, err error) {
	if err != nil {
		if !errors.Is(err, ErrNotPublic) {
			t.Fatalf("%s: %v is not ErrNotPublic", a, err)
		}
		return
	}
	if !a.IsValid() {
		t.Fatal("the zero address allowed")
	}
	b := a.As16()
	if why := oracleFault(b[:]); why != "" {
		t.Fatalf("%s allowed, but it is %s", a, why)
	}
}

// FuzzCheckPublic: for any 4 or 16 bytes, CheckPublic allows nothing the
// oracle refuses.
func FuzzCheckPublic(f *testing.F) {
	for _, c := range guardCases {
		f.Add(netip.MustParseAddr(c.addr).AsSlice())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		checkOne(t, a, CheckPublic(a))
	})
}

// FuzzControl: for any text the dialer could hand the guard, it allows
// only an address and port whose address the oracle allows.
func FuzzControl(f *testing.F) {
	for _, c := range guardCases {
		f.Add(netip.AddrPortFrom(netip.MustParseAddr(c.addr), 443).String())
	}
	for _, s := range []string{"", ":", "8.8.8.8", "8.8.8.8:", "[::1]", "[fe80::1%eth0]:80", "localhost:80", "[::ffff:127.0.0.1]:80", "0x7f.1:80", "127.1:80", "017700000001:80"} {
		f.Add(s)
	}
	d := &Dispatcher{}
	f.Fuzz(func(t *testing.T, address string) {
		err := d.control("tcp", address, nil)
		ap, perr := netip.ParseAddrPort(address)
		if err == nil && perr != nil {
			t.Fatalf("%q allowed, but it is no address and port", address)
		}
		if perr == nil {
			checkOne(t, ap.Addr(), err)
		} else if !errors.Is(err, ErrNotPublic) {
			t.Fatalf("%q: %v is not ErrNotPublic", address, err)
		}
	})
}
