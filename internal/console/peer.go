package console

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// The console serves one user. A session cookie is a bearer secret: a
// browser sends it to every server on the cookie's host name, and another
// user who got hold of it could replay it. So every connection is also
// checked for who made it: on loopback the kernel knows the user that
// owns the other end, and a connection from any other user of the machine
// is refused, cookie or not, token or not.

// maxProcLine bounds one line of a socket table (the kernel's are about
// 150 bytes).
const maxProcLine = 4096

// socketUID finds, in a Linux socket table (/proc/net/tcp or tcp6), the
// socket whose local address is local and whose remote address is remote,
// and returns the user that owns it. found is false when no line has that
// pair; err names a malformed table.
func socketUID(table io.Reader, local, remote netip.AddrPort) (uid int, found bool, err error) {
	sc := bufio.NewScanner(table)
	sc.Buffer(make([]byte, 0, 512), maxProcLine)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if first { // the heading
			first = false
			continue
		}
		f := strings.Fields(line)
		if len(f) < 8 {
			return 0, false, fmt.Errorf("socket table: a line has %d fields, want at least 8: %.80q", len(f), line)
		}
		l, err := procAddr(f[1])
		if err != nil {
			return 0, false, fmt.Errorf("socket table: local address: %w", err)
		}
		r, err := procAddr(f[2])
		if err != nil {
			return 0, false, fmt.Errorf("socket table: remote address: %w", err)
		}
		if l != local || r != remote {
			continue
		}
		u, err := strconv.ParseUint(f[7], 10, 32)
		if err != nil {
			return 0, false, fmt.Errorf("socket table: uid %.20q: not a number", f[7])
		}
		return int(u), true, nil
	}
	if err := sc.Err(); err != nil {
		return 0, false, fmt.Errorf("socket table: %w", err)
	}
	return 0, false, nil
}

// procAddr decodes an address of a socket table: hex of the address in
// 32-bit words of the host's byte order, a colon, the port in hex
// ("0100007F:1F90" is 127.0.0.1:8080 on a little-endian host).
func procAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || (len(a) != 8 && len(a) != 32) || len(p) != 4 {
		return netip.AddrPort{}, fmt.Errorf("%.60q: want 8 or 32 hex digits, a colon and 4", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%.60q: %w", s, err)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%.60q: port: %w", s, err)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// errPeerUnknown: this system does not say who owns a connection's other
// end; the check is skipped there.
var errPeerUnknown = errors.New("the connecting user is not known on this system")
