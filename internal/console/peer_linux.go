package console

import (
	"fmt"
	"net"
	"net/netip"
	"os"
)

// peerUID is the user owning the other end of c, a loopback TCP
// connection: the socket whose local address is c's remote one and whose
// remote address is c's local one, in /proc/net/tcp or /proc/net/tcp6 (an
// IPv4 client on a dual-stack socket is listed in tcp6 under its mapped
// address).
func peerUID(c net.Conn) (int, error) {
	la, lok := c.LocalAddr().(*net.TCPAddr)
	ra, rok := c.RemoteAddr().(*net.TCPAddr)
	if !lok || !rok {
		return 0, fmt.Errorf("not a TCP connection (%s)", c.RemoteAddr())
	}
	local, remote := ra.AddrPort(), la.AddrPort() // as the peer sees them
	local, remote = netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	type look struct {
		file          string
		local, remote netip.AddrPort
	}
	var looks []look
	if local.Addr().Is4() && remote.Addr().Is4() {
		looks = append(looks, look{"/proc/net/tcp", local, remote})
		m := func(a netip.AddrPort) netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
		}
		looks = append(looks, look{"/proc/net/tcp6", m(local), m(remote)})
	} else {
		looks = append(looks, look{"/proc/net/tcp6", local, remote})
	}
	for _, l := range looks {
		f, err := os.Open(l.file)
		if err != nil {
			return 0, fmt.Errorf("who connected: %w", err)
		}
		uid, found, err := socketUID(f, l.local, l.remote)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("who connected: %s: %w", l.file, err)
		}
		if found {
			return uid, nil
		}
	}
	return 0, fmt.Errorf("who connected: no socket %s → %s on this machine (not a local connection?)", local, remote)
}
