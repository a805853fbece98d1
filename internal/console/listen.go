package console

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
)

// Listen listens on addr, a loopback address ("127.0.0.1:0" for any free
// port), and holds the same port on the other loopback family too (::1
// for 127.0.0.1, and back), serving both. Browsers resolve the console's
// name, <random>.localhost, to both ::1 and 127.0.0.1 and try ::1 first:
// left free, the port on the other family would let another user's
// server answer for the console, session cookie and login token
// included. With port 0 a port free on both is chosen; a port given that
// is taken on the other family is an error. Where the system has no
// loopback on the other family, nobody can take it, and one listener
// serves.
func Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%q: the console serves on loopback only (127.0.0.1 or ::1)", addr)
	}
	network, otherNet, other := "tcp4", "tcp6", "::1"
	if ip.To4() == nil {
		network, otherNet, other = "tcp6", "tcp4", "127.0.0.1"
	}
	const attempts = 32
	for range attempts {
		first, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		p := first.Addr().(*net.TCPAddr).Port
		second, err := net.Listen(otherNet, net.JoinHostPort(other, strconv.Itoa(p)))
		switch {
		case err == nil:
			return &pair{Listener: first, other: second, conns: make(chan accepted), done: make(chan struct{})}, nil
		case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT):
			return first, nil // no such loopback here: nobody can serve it
		}
		first.Close()
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%q: the same port on %s: %w (another program there would answer for the console)", addr, other, err)
		}
	}
	return nil, fmt.Errorf("%q: no port free on both 127.0.0.1 and ::1 in %d tries", addr, attempts)
}

// pair serves two listeners as one; its address is the first's.
type pair struct {
	net.Listener
	other net.Listener
	once  sync.Once
	conns chan accepted
	done  chan struct{}
	shut  sync.Once
}

type accepted struct {
	c   net.Conn
	err error
}

func (p *pair) Accept() (net.Conn, error) {
	p.once.Do(func() {
		for _, l := range []net.Listener{p.Listener, p.other} {
			go func() {
				for {
					c, err := l.Accept()
					select {
					case p.conns <- accepted{c, err}:
					case <-p.done:
						if c != nil {
							c.Close()
						}
						return
					}
					if err != nil && errors.Is(err, net.ErrClosed) {
						return
					}
				}
			}()
		}
	})
	select {
	case a := <-p.conns:
		return a.c, a.err
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pair) Close() error {
	p.shut.Do(func() { close(p.done) })
	return errors.Join(p.Listener.Close(), p.other.Close())
}
