package webhook

import (
	"errors"
	"fmt"
	"net/netip"
)

// The guard allows a webhook to reach only globally routable unicast
// addresses: an allow-list, not a list of the ranges someone thought of.
// An IPv4 address is allowed when it lies in none of the non-global
// special-purpose prefixes below; an IPv6 address when it lies in global
// unicast 2000::/3 and in none of them. IPv6 forms that carry an IPv4
// address (mapped, compatible, NAT64, 6to4, Teredo) have the IPv4 address
// judged too. The table is the IANA special-purpose address registries
// (iana-ipv4-special-registry, iana-ipv6-special-registry, as of 2025),
// with a few ranges from the address-space registries that the
// special-purpose ones leave out (multicast, site-local, IPv4-compatible).

// A special is one special-purpose prefix: its name and whether the
// registry calls it globally reachable. Only the non-global ones refuse;
// a global one inside a larger non-global prefix (192.0.0.9/32 inside
// 192.0.0.0/24) is listed for the record but does not make its address
// allowed: no webhook lives on an anycast relay.
type special struct {
	Prefix netip.Prefix
	Name   string
	Global bool
}

func sp(prefix, name string, global bool) special {
	return special{netip.MustParsePrefix(prefix), name, global}
}

// specials4 is the IPv4 table.
var specials4 = []special{
	sp("0.0.0.0/8", `"this network"`, false),
	sp("10.0.0.0/8", "private-use", false),
	sp("100.64.0.0/10", "shared address space (carrier-grade NAT, cloud metadata)", false),
	sp("127.0.0.0/8", "loopback", false),
	sp("169.254.0.0/16", "link-local", false),
	sp("172.16.0.0/12", "private-use", false),
	sp("192.0.0.0/24", "IETF protocol assignments", false),
	sp("192.0.0.0/29", "IPv4 service continuity", false),
	sp("192.0.0.8/32", "IPv4 dummy address", false),
	sp("192.0.0.9/32", "port control protocol anycast", true),
	sp("192.0.0.10/32", "TURN anycast", true),
	sp("192.0.0.170/31", "NAT64/DNS64 discovery", false),
	sp("192.0.2.0/24", "documentation (TEST-NET-1)", false),
	sp("192.31.196.0/24", "AS112", true),
	sp("192.52.193.0/24", "AMT", true),
	sp("192.88.99.0/24", "6to4 relay anycast (deprecated)", false),
	sp("192.168.0.0/16", "private-use", false),
	sp("192.175.48.0/24", "AS112 direct delegation", true),
	sp("198.18.0.0/15", "benchmarking", false),
	sp("198.51.100.0/24", "documentation (TEST-NET-2)", false),
	sp("203.0.113.0/24", "documentation (TEST-NET-3)", false),
	sp("224.0.0.0/4", "multicast", false), // the IPv4 address space registry
	sp("240.0.0.0/4", "reserved", false),
	sp("255.255.255.255/32", "limited broadcast", false),
}

// specials6 is the IPv6 table. Whatever lies outside 2000::/3 is refused
// anyway; the entries there name the reason.
var specials6 = []special{
	sp("::/128", "unspecified", false),
	sp("::1/128", "loopback", false),
	sp("::/96", "IPv4-compatible (deprecated)", false), // RFC 4291 2.5.5.1
	sp("::ffff:0:0/96", "IPv4-mapped", false),
	sp("64:ff9b::/96", "NAT64 translation", false),
	sp("64:ff9b:1::/48", "local-use NAT64 translation", false),
	sp("100::/64", "discard-only", false),
	sp("100:0:0:1::/64", "dummy prefix", false),
	sp("2001::/23", "IETF protocol assignments", false),
	sp("2001::/32", "Teredo", false),
	sp("2001:1::1/128", "port control protocol anycast", true),
	sp("2001:1::2/128", "TURN anycast", true),
	sp("2001:1::3/128", "DNS-SD service registration anycast", true),
	sp("2001:2::/48", "benchmarking", false),
	sp("2001:3::/32", "AMT", true),
	sp("2001:4:112::/48", "AS112", true),
	sp("2001:10::/28", "ORCHID (deprecated)", false),
	sp("2001:20::/28", "ORCHIDv2", true),
	sp("2001:30::/28", "drone remote ID entity tags", true),
	sp("2001:db8::/32", "documentation", false),
	sp("2002::/16", "6to4", true), // N/A in the registry: judged by the IPv4 address it carries
	sp("2620:4f:8000::/48", "AS112 direct delegation", true),
	sp("3fff::/20", "documentation", false),
	sp("5f00::/16", "segment routing SIDs", false),
	sp("fc00::/7", "unique-local", false),
	sp("fe80::/10", "link-local", false),
	sp("fec0::/10", "site-local (deprecated)", false), // the IPv6 address space registry
	sp("ff00::/8", "multicast", false),
}

// globalUnicast6 is where the IPv6 address space registry puts global
// unicast: nothing outside it is allowed.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// ErrNotPublic is what the guard's refusals are (errors.Is).
var ErrNotPublic = errors.New("not a public address")

// AddrError is a refusal: Addr is not a globally routable unicast address.
type AddrError struct {
	Addr  netip.Addr
	Range string // the special-purpose range Addr lies in, named
	// Embedded is the IPv4 address Addr carries, if it carries one, and
	// EmbeddedRange the range that one lies in ("" if it is public).
	Embedded      netip.Addr
	EmbeddedRange string
}

func (e *AddrError) Error() string {
	switch {
	case !e.Addr.IsValid():
		return "not a public address: " + e.Range
	case e.Embedded.IsValid() && e.EmbeddedRange != "":
		return fmt.Sprintf("%s is not a public address (%s, carrying %s: %s)", e.Addr, e.Range, e.Embedded, e.EmbeddedRange)
	case e.Embedded.IsValid():
		return fmt.Sprintf("%s is not a public address (%s, carrying %s)", e.Addr, e.Range, e.Embedded)
	}
	return fmt.Sprintf("%s is not a public address (%s)", e.Addr, e.Range)
}

// Is makes errors.Is(err, ErrNotPublic) hold.
func (e *AddrError) Is(target error) bool { return target == ErrNotPublic }

// CheckPublic refuses (with an *AddrError) any address but a globally
// routable unicast one.
func CheckPublic(a netip.Addr) error {
	if !a.IsValid() {
		return &AddrError{Range: "no address"}
	}
	a = a.WithZone("")
	if a.Is4() {
		if s, ok := nonGlobal(specials4, a); ok {
			return &AddrError{Addr: a, Range: s.Name}
		}
		return nil
	}
	e, carries := embedded4(a)
	var eRange string
	if carries {
		if s, ok := nonGlobal(specials4, e); ok {
			eRange = s.Name
		}
	}
	if a.Is4In6() {
		// A socket given ::ffff:a.b.c.d talks to a.b.c.d: judged as that.
		if eRange != "" {
			return &AddrError{Addr: a, Range: "IPv4-mapped", Embedded: e, EmbeddedRange: eRange}
		}
		return nil
	}
	s, refused := nonGlobal(specials6, a)
	if refused {
		err := &AddrError{Addr: a, Range: s.Name}
		if carries && s.Prefix.Bits() <= 96 {
			err.Embedded, err.EmbeddedRange = e, eRange
		}
		return err
	}
	if !globalUnicast6.Contains(a) {
		return &AddrError{Addr: a, Range: "outside global unicast 2000::/3"}
	}
	if eRange != "" {
		name := "carries IPv4"
		if s, ok := within(specials6, a); ok {
			name = s.Name
		}
		return &AddrError{Addr: a, Range: name, Embedded: e, EmbeddedRange: eRange}
	}
	return nil
}

// nonGlobal is the most specific non-global prefix of table holding a.
func nonGlobal(table []special, a netip.Addr) (special, bool) {
	var best special
	found := false
	for _, s := range table {
		if !s.Global && s.Prefix.Contains(a) && (!found || s.Prefix.Bits() > best.Prefix.Bits()) {
			best, found = s, true
		}
	}
	return best, found
}

// within is the most specific prefix of table holding a.
func within(table []special, a netip.Addr) (special, bool) {
	var best special
	found := false
	for _, s := range table {
		if s.Prefix.Contains(a) && (!found || s.Prefix.Bits() > best.Prefix.Bits()) {
			best, found = s, true
		}
	}
	return best, found
}

var (
	compat6 = netip.MustParsePrefix("::/96")
	mapped6 = netip.MustParsePrefix("::ffff:0:0/96")
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	teredo  = netip.MustParsePrefix("2001::/32")
)

// embedded4 is the IPv4 address an IPv6 address carries by one of the
// transition mechanisms, if it does. For Teredo it is the client's
// (RFC 4380: bits inverted in the last 32); the local-use NAT64 prefix
// 64:ff9b:1::/48 has no fixed layout and is refused whole.
func embedded4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case compat6.Contains(a), mapped6.Contains(a), nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case teredo.Contains(a):
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	}
	return netip.Addr{}, false
}
