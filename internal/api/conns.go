package api

import (
	"container/list"
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnLimits bound what a client, authenticated or not, can make the
// node hold: connections, time and bytes before its certificate is
// checked. Zero values are the defaults named.
type ConnLimits struct {
	// MaxConns bounds the connections open at once, all clients
	// together; one over it is closed as soon as it is accepted. Zero:
	// 8192, or half the process's open-file limit if that is lower (the
	// node's own files and NATS need the rest).
	MaxConns int
	// MaxConnsPerAddr bounds the connections open at once from one
	// client address (an IPv6 client by its /64). Zero: 256.
	MaxConnsPerAddr int
	// HandshakeTimeout bounds a connection's TLS handshake with its
	// HTTP/2 preface, the wait for a routed HTTP/2 connection's SETTINGS
	// acknowledgement, and an HTTP/1.1 request's headers. Zero: 10s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection with no request in flight: one
	// that never makes a request (its first one included, over HTTP/2 or
	// HTTP/1.1) and one idle between requests (native gRPC:
	// MaxConnectionIdle; a connection with an open stream is not idle).
	// Zero: 2m.
	IdleTimeout time.Duration
	// ReadTimeout bounds reading one request's body over HTTP (not the
	// bodies of the bidirectional streams, Exchange/Subscribe and
	// Provider/Serve, which stay open). Zero: 1m.
	ReadTimeout time.Duration
	// MaxMessageBytes bounds one request message, over gRPC and HTTP;
	// a body over it is refused before it is read (RESOURCE_EXHAUSTED
	// naming the bound). Zero: DefaultMaxMessageBytes (the hub gives
	// what one NATS message carries plus MessageFraming: the largest
	// batch or provider answer the node can pass on).
	MaxMessageBytes int
}

// DefaultMaxMessageBytes is MaxMessageBytes when neither it nor the hub
// says: an 8 MiB NATS message (the embedded server's) and its framing.
const DefaultMaxMessageBytes = 8<<20 + MessageFraming

// MessageFraming is the room for a message's framing above the records it
// carries (field tags and lengths, call ids, tokens).
const MessageFraming = 64 << 10

func (l *ConnLimits) validate() {
	if l.MaxConns <= 0 {
		l.MaxConns = 8192
		if n := fdLimit(); n > 0 && n/2 < uint64(l.MaxConns) {
			l.MaxConns = max(int(n/2), 64)
		}
	}
	if l.MaxConnsPerAddr <= 0 {
		l.MaxConnsPerAddr = 256
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = 10 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 2 * time.Minute
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = time.Minute
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
}

// connMetrics count what the router refused or closed early.
type connMetrics struct {
	open     prometheus.GaugeFunc
	refused  *prometheus.CounterVec // at accept: over a bound
	accept   prometheus.Counter     // temporary accept errors, retried
	early    *prometheus.CounterVec // closed before routing
	unauthed *prometheus.CounterVec // calls refused before their message was read
}

func newConnMetrics(open func() float64) *connMetrics {
	m := &connMetrics{
		open: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "xhub_connections_open",
			Help: "Client connections open on the API port (gRPC and HTTP).",
		}, open),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xhub_connections_refused_total",
			Help: "Connections closed as soon as accepted, by the bound they were over (total, address).",
		}, []string{"bound"}),
		accept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xhub_accept_errors_total",
			Help: "Temporary errors accepting a connection (too many open files, connection aborted, ...), retried after a pause.",
		}),
		early: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xhub_connections_closed_early_total",
			Help: "HTTP/2 connections closed before their first request was routed, by reason (no_request: none within the idle timeout; header_block: a first header block over the bounds; protocol: not HTTP/2 as it should be).",
		}, []string{"reason"}),
		unauthed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xhub_calls_refused_unauthenticated_total",
			Help: "Calls without a verified client certificate refused before their message was read, by transport (grpc, http).",
		}, []string{"transport"}),
	}
	for _, b := range []string{"total", "address"} {
		m.refused.WithLabelValues(b)
	}
	for _, r := range []string{"no_request", "header_block", "protocol"} {
		m.early.WithLabelValues(r)
	}
	for _, t := range []string{"grpc", "http"} {
		m.unauthed.WithLabelValues(t)
	}
	return m
}

func (m *connMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.open, m.refused, m.accept, m.early, m.unauthed}
}

// addrKey is what MaxConnsPerAddr counts by: the client's IP, an IPv6
// one by its /64 (what one site is usually given).
func addrKey(a net.Addr) string {
	var ip net.IP
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		ip = net.ParseIP(host)
		if ip == nil {
			return host
		}
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// countedConn is an accepted connection that gives back its place under
// the bounds when it is closed, by whichever server holds it then.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
	shaking *list.Element // in router.handshaking until its TLS handshake is done (router.mu)
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// temporaryAccept says whether an Accept error is one to retry, as
// net/http does: the process or system is out of descriptors or buffers
// for the moment, or the client went away before it was accepted.
func temporaryAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ECONNRESET,
		syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// rateLog logs at most one line per HandshakeLogEvery, with the number
// left unlogged, so that a flood of bad clients cannot flood the log.
type rateLog struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *rateLog) warn(msg string, args ...any) {
	l.mu.Lock()
	now := l.now()
	if now.Sub(l.last) < HandshakeLogEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn(msg, append(args, "unlogged_before", suppressed)...)
}
