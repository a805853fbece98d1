package api

import (
	"bytes"
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/credentials"
)

// The hub serves gRPC, Connect, gRPC-Web and JSON over HTTP on one TLS
// port. Every connection is routed once, after its TLS handshake: HTTP/1.1
// goes to the HTTP handler; HTTP/2 is routed by the content-type of its
// first request, whenever it comes: application/grpc (not grpc-web) to the
// native gRPC server, anything else to the HTTP handler. Native gRPC keeps
// grpc-go's own transport (nothing of net/http on its path); the only cost
// to it is reading its first request's headers once per connection.
//
// What a client that is not yet known can make the router hold is
// bounded (ConnLimits): connections per address and in total, the time
// to its handshake and first request, and the bytes read before routing;
// its first header block is decoded only up to content-type, within
// bounds on its size, its fields and its strings.

// HandshakeTimeout is ConnLimits.HandshakeTimeout's default.
const HandshakeTimeout = 10 * time.Second

// Bounds on what is read of an HTTP/2 connection before it is routed.
const (
	// peekLimit bounds every byte read before routing: the preface, the
	// client's SETTINGS and WINDOW_UPDATEs, the first header block, and
	// what data the client may send before our SETTINGS ack (at most the
	// initial 64 KiB window).
	peekLimit = 128 << 10
	// MaxFirstHeaderBlock bounds the first request's header block as
	// sent (HPACK-compressed, HEADERS and CONTINUATION frames together).
	MaxFirstHeaderBlock = 16 << 10
	// MaxFirstHeaderList bounds the first request's headers decoded
	// (RFC 7541 sizes: name, value and 32 per field), MaxFirstHeaderFields
	// their number and MaxHeaderString one name or value. Decoding stops
	// at content-type.
	MaxFirstHeaderList   = 32 << 10
	MaxFirstHeaderFields = 100
	MaxHeaderString      = 8 << 10
)

var clientPreface = []byte(http2.ClientPreface)

// router accepts the hub's connections and hands each to its server.
type router struct {
	tlsCfg *tls.Config
	watch  *handshakeWatch
	limits ConnLimits
	m      *connMetrics
	log    *rateLog
	grpc   *connListener // native gRPC
	http1  *connListener // HTTP/1.1, served by httpSrv
	httpH  http.Handler
	http   *http.Server
	h2     *http2.Server

	openCalls *openCalls // calls without a certificate in flight (gate.go)

	mu    sync.Mutex
	lis   net.Listener
	conns map[net.Conn]struct{} // being routed, or served by h2
	open  int                   // connections accepted and not closed
	// handshaking are the connections whose TLS handshake is not done,
	// oldest first: at the total bound the oldest is closed for a new
	// one, so that connections that never start TLS cannot hold every
	// slot (a real client's handshake takes milliseconds).
	handshaking *list.List
	byAddr      map[string]int // the same by addrKey
	closed      bool
}

// newRouter makes a router; its HTTP handler is set (setHandler) before
// it serves.
func newRouter(tlsCfg *tls.Config, watch *handshakeWatch, limits ConnLimits, log *slog.Logger) *router {
	r := &router{tlsCfg: tlsCfg, watch: watch, limits: limits, conns: map[net.Conn]struct{}{}, byAddr: map[string]int{}, openCalls: newOpenCalls(), handshaking: list.New(),
		log: &rateLog{log: log, now: time.Now}}
	r.m = newConnMetrics(func() float64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return float64(r.open)
	})
	r.http = &http.Server{
		ReadHeaderTimeout: limits.HandshakeTimeout,
		// No ReadTimeout here: it would also end the bidirectional
		// streams; the handler bounds each request body (see gate).
		IdleTimeout:    limits.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
	}
	r.h2 = &http2.Server{
		IdleTimeout: limits.IdleTimeout,
		// A connection silent this long is pinged; one that does not
		// answer is closed (a peer gone without a word).
		ReadIdleTimeout: limits.IdleTimeout,
		PingTimeout:     20 * time.Second,
	}
	_ = http2.ConfigureServer(r.http, r.h2) // Shutdown also ends h2 connections gracefully
	return r
}

func (r *router) setHandler(h http.Handler) { r.httpH, r.http.Handler = h, h }

// serve accepts on lis until it is closed. An Accept error that passes
// (out of file descriptors, a connection aborted before it was accepted)
// is retried after a pause that doubles up to a second, as net/http
// does; only another error ends serve.
func (r *router) serve(lis net.Listener, serveGRPC func(net.Listener) error) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("api: server stopped")
	}
	r.lis = lis
	r.grpc = newConnListener(lis.Addr())
	r.http1 = newConnListener(lis.Addr())
	r.mu.Unlock()
	errc := make(chan error, 2)
	go func() { errc <- serveGRPC(r.grpc) }()
	go func() {
		if err := r.http.Serve(r.http1); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errc <- err
			return
		}
		errc <- nil
	}()
	var tempDelay time.Duration
	for {
		conn, err := lis.Accept()
		if err != nil {
			r.mu.Lock()
			closed := r.closed
			r.mu.Unlock()
			if closed {
				return nil
			}
			if temporaryAccept(err) {
				tempDelay = min(max(tempDelay*2, 5*time.Millisecond), time.Second)
				r.m.accept.Inc()
				r.log.warn("accepting a connection failed; retrying", "err", err, "retry_in", tempDelay)
				time.Sleep(tempDelay)
				continue
			}
			return err
		}
		tempDelay = 0
		c, bound := r.admit(conn)
		if c == nil {
			conn.Close()
			if bound != "" {
				r.m.refused.WithLabelValues(bound).Inc()
				r.log.warn("connection refused: over the bound", "remote", conn.RemoteAddr().String(), "bound", bound)
			}
			continue
		}
		go r.route(c)
	}
}

// admit counts conn under the bounds, or says which it is over ("" when
// the router is closed).
func (r *router) admit(conn net.Conn) (net.Conn, string) {
	key := addrKey(conn.RemoteAddr())
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, ""
	case r.byAddr[key] >= r.limits.MaxConnsPerAddr:
		return nil, "address"
	case r.open >= r.limits.MaxConns:
		front := r.handshaking.Front()
		if front == nil {
			return nil, "total"
		}
		// The oldest connection still in its handshake gives way; it is
		// counted until its own goroutine sees it closed.
		old := front.Value.(*countedConn)
		r.handshaking.Remove(front)
		old.shaking = nil
		r.m.refused.WithLabelValues("handshake_evicted").Inc()
		go old.Conn.Close()
	}
	r.open++
	r.byAddr[key]++
	c := &countedConn{Conn: conn}
	c.shaking = r.handshaking.PushBack(c)
	c.release = func() {
		r.mu.Lock()
		r.open--
		if r.byAddr[key]--; r.byAddr[key] <= 0 {
			delete(r.byAddr, key)
		}
		delete(r.conns, c)
		if c.shaking != nil {
			r.handshaking.Remove(c.shaking)
			c.shaking = nil
		}
		r.mu.Unlock()
	}
	r.conns[c] = struct{}{}
	return c, ""
}

// handshook takes c out of the connections in their handshake.
func (r *router) handshook(c net.Conn) {
	cc, ok := c.(*countedConn)
	if !ok {
		return
	}
	r.mu.Lock()
	if cc.shaking != nil {
		r.handshaking.Remove(cc.shaking)
		cc.shaking = nil
	}
	r.mu.Unlock()
}

func (r *router) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
}

// close stops accepting; hard also closes every connection being routed
// or served over HTTP/2.
func (r *router) close(hard bool) {
	r.mu.Lock()
	r.closed = true
	lis := r.lis
	var conns []net.Conn
	if hard {
		for c := range r.conns {
			conns = append(conns, c)
		}
	}
	r.mu.Unlock()
	if lis != nil {
		lis.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	if r.http1 != nil {
		r.http1.Close()
	}
}

// shutdown ends the HTTP side: gracefully (in-flight requests finish,
// bounded by ctx) or at once.
func (r *router) shutdown(ctx context.Context, hard bool) {
	if hard {
		r.http.Close()
		return
	}
	_ = r.http.Shutdown(ctx)
}

func (r *router) route(raw net.Conn) {
	handed := false
	defer func() {
		if !handed {
			raw.Close()
		}
	}()
	_ = raw.SetDeadline(time.Now().Add(r.limits.HandshakeTimeout))
	tc := tls.Server(raw, r.tlsCfg)
	if err := tc.Handshake(); err != nil {
		if !errors.Is(err, io.EOF) {
			r.watch.refused(raw.RemoteAddr(), err)
		}
		return
	}
	r.handshook(raw)
	if tc.ConnectionState().NegotiatedProtocol != http2.NextProtoTLS {
		// http.Server bounds it from here: ReadHeaderTimeout from now,
		// IdleTimeout between requests.
		_ = raw.SetDeadline(time.Time{})
		r.untrack(raw) // http.Server tracks it from here
		handed = r.http1.push(tc)
		if !handed {
			tc.Close()
			handed = true
		}
		return
	}
	rc, toGRPC, err := peekH2(tc, r.limits)
	if err != nil {
		var pe *peekError
		if errors.As(err, &pe) {
			r.m.early.WithLabelValues(pe.reason).Inc()
			if pe.goAway >= 0 {
				writeGoAway(tc, http2.ErrCode(pe.goAway))
			}
		}
		return
	}
	_ = raw.SetDeadline(time.Time{})
	if toGRPC {
		r.untrack(raw) // grpc.Server tracks it from here
		handed = r.grpc.push(rc)
		if !handed {
			rc.Close()
			handed = true
		}
		return
	}
	handed = true
	go func() {
		defer r.untrack(raw)
		r.h2.ServeConn(rc, &http2.ServeConnOpts{BaseConfig: r.http, Handler: r.httpH})
	}()
}

// peekError is why a connection was closed before routing: the metric's
// reason and the GOAWAY code sent first (-1: none).
type peekError struct {
	reason string
	goAway int
	err    error
}

func (e *peekError) Error() string { return e.err.Error() }
func (e *peekError) Unwrap() error { return e.err }

func protocolError(format string, args ...any) error {
	return &peekError{reason: "protocol", goAway: int(http2.ErrCodeProtocol), err: fmt.Errorf(format, args...)}
}

// writeGoAway tells the client, briefly, why its connection ends.
func writeGoAway(c net.Conn, code http2.ErrCode) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	f := []byte{0, 0, 8, http2FrameGoAway, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(code >> 24), byte(code >> 16), byte(code >> 8), byte(code)}
	_, _ = c.Write(f)
}

// frameConn is what the peeker reads and writes (a TLS connection).
type frameConn interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

// peekH2 sends the server's connection preface (a SETTINGS frame: gRPC
// clients wait for it before their first request), reads the client's
// preface and frames up to its first request's headers, and says whether
// that request is native gRPC. The preface is bounded by the handshake
// deadline, the first request by the idle timeout: a connection that
// makes none is closed, whatever it is (a gRPC client that connected
// ahead of its first call reconnects for it). PINGs before the first
// request are answered here. For the HTTP side, the client's
// acknowledgement of our SETTINGS frame is taken out of the stream: the
// HTTP/2 server that takes over sends its own and counts
// acknowledgements.
func peekH2(tc *tls.Conn, limits ConnLimits) (*routedConn, bool, error) {
	p, err := peekFrames(tc, limits)
	if err != nil {
		return nil, false, err
	}
	return &routedConn{Conn: tc, pending: p.buf}, p.toGRPC, nil
}

// peekFrames is peekH2 on any connection (the fuzz target's too).
func peekFrames(c frameConn, limits ConnLimits) (*peeker, error) {
	// SETTINGS_NO_RFC7540_PRIORITIES=1, as Go's HTTP/2 server sends it:
	// a client may refuse its change between two SETTINGS frames (curl's
	// nghttp2 does); gRPC's server leaves it out, which changes nothing.
	if _, err := c.Write([]byte{0, 0, 6, http2FrameSettings, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1}); err != nil {
		return nil, err
	}
	p := &peeker{conn: c, ackAt: -1}
	// Compared as it comes: a client that sends something else is
	// dropped at once, not at the deadline.
	pre := make([]byte, len(clientPreface))
	for n := 0; n < len(pre); {
		m, err := c.Read(pre[n:])
		n += m
		p.read += m
		if !bytes.Equal(pre[:n], clientPreface[:n]) || err != nil {
			return nil, &peekError{reason: "protocol", goAway: -1, err: errors.New("api: not an HTTP/2 client preface")}
		}
	}
	p.buf = append(p.buf, pre...)
	// The first request may come whenever the client makes it, within
	// the idle timeout.
	_ = c.SetReadDeadline(time.Now().Add(limits.IdleTimeout))
	// PING answers are written within the same bound (the handshake's
	// write deadline would cut a client that pings while it waits).
	if wd, ok := c.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = wd.SetWriteDeadline(time.Now().Add(limits.IdleTimeout))
	}
	for !p.done {
		if err := p.frame(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, &peekError{reason: "no_request", goAway: int(http2.ErrCodeNo), err: err}
			}
			return nil, err
		}
	}
	ct, _, err := firstContentType(p.block)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(ct, "application/grpc") && !strings.HasPrefix(ct, "application/grpc-web") {
		p.toGRPC = true
		return p, nil
	}
	// A client acknowledges our SETTINGS at once: the handshake's bound.
	_ = c.SetReadDeadline(time.Now().Add(limits.HandshakeTimeout))
	for p.ackAt < 0 {
		if err := p.frame(); err != nil {
			return nil, err
		}
	}
	p.buf = append(p.buf[:p.ackAt:p.ackAt], p.buf[p.ackAt+9:]...)
	return p, nil
}

const (
	http2FrameHeaders      = 0x1
	http2FrameSettings     = 0x4
	http2FramePing         = 0x6
	http2FrameGoAway       = 0x7
	http2FrameContinuation = 0x9
	http2FlagAck           = 0x1
	http2FlagEndHeaders    = 0x4
	http2FlagPadded        = 0x8
	http2FlagPriority      = 0x20
	http2MaxFrame          = 16384 // the default: our SETTINGS frame changes nothing
)

type peeker struct {
	conn    frameConn
	read    int    // bytes read, all told (peekLimit)
	buf     []byte // the frames to be read again by the server routed to
	ackAt   int    // offset in buf of the client's first SETTINGS ack; -1: not yet
	block   []byte // header block of the first request, being gathered
	inBlock bool
	done    bool // the first request's headers are complete
	toGRPC  bool
}

func (p *peeker) readFull(b []byte) error {
	if p.read+len(b) > peekLimit {
		return protocolError("api: more than %d bytes before the first request", peekLimit)
	}
	n, err := io.ReadFull(p.conn, b)
	p.read += n
	return err
}

// frame reads one frame, noting where the first SETTINGS ack is,
// answering PINGs, and gathering the first header block.
func (p *peeker) frame() error {
	var h [9]byte
	if err := p.readFull(h[:]); err != nil {
		return err
	}
	length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	typ, flags := h[3], h[4]
	if length > http2MaxFrame {
		return &peekError{reason: "protocol", goAway: int(http2.ErrCodeFrameSize), err: fmt.Errorf("api: HTTP/2 frame of %d bytes", length)}
	}
	if (typ == http2FrameHeaders || typ == http2FrameContinuation) && !p.done && len(p.block)+length > MaxFirstHeaderBlock {
		return &peekError{reason: "header_block", goAway: int(http2.ErrCodeEnhanceYourCalm),
			err: fmt.Errorf("api: the first request's header block is over %d bytes", MaxFirstHeaderBlock)}
	}
	payload := make([]byte, length)
	if err := p.readFull(payload); err != nil {
		return err
	}
	switch {
	case typ == http2FramePing:
		// Answered here (a client may check the connection before its
		// first call), and not passed on: the server routed to did not
		// send what is acknowledged, and must not answer twice.
		if length != 8 {
			return protocolError("api: PING of %d bytes", length)
		}
		if flags&http2FlagAck == 0 {
			ack := append([]byte{0, 0, 8, http2FramePing, http2FlagAck, 0, 0, 0, 0}, payload...)
			if _, err := p.conn.Write(ack); err != nil {
				return err
			}
		}
		return nil
	case typ == http2FrameSettings && flags&http2FlagAck != 0 && p.ackAt < 0:
		if length != 0 {
			return protocolError("api: SETTINGS ack with a payload")
		}
		p.ackAt = len(p.buf)
	}
	p.buf = append(p.buf, h[:]...)
	p.buf = append(p.buf, payload...)
	if p.done {
		return nil
	}
	switch {
	case typ == http2FrameHeaders && !p.inBlock:
		frag := payload
		if flags&http2FlagPadded != 0 {
			if len(frag) < 1 || int(frag[0]) > len(frag)-1 {
				return protocolError("api: bad HEADERS padding")
			}
			frag = frag[1 : len(frag)-int(frag[0])]
		}
		if flags&http2FlagPriority != 0 {
			if len(frag) < 5 {
				return protocolError("api: bad HEADERS priority")
			}
			frag = frag[5:]
		}
		p.block = append(p.block, frag...)
		p.inBlock = true
	case typ == http2FrameContinuation && p.inBlock:
		p.block = append(p.block, payload...)
	case p.inBlock:
		return protocolError("api: HTTP/2 header block interrupted")
	default:
		return nil
	}
	if flags&http2FlagEndHeaders != 0 {
		p.done = true
	}
	return nil
}

// firstContentType decodes a header block up to its content-type, with
// nothing kept but that: a block whose fields or decoded size go over the
// bounds before it is refused, as is one with a longer string than
// MaxHeaderString. found says whether it has one (an empty one is one).
func firstContentType(block []byte) (ct string, found bool, err error) {
	var over bool
	var fields, size int
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if found || over {
			return
		}
		fields++
		size += int(f.Size())
		if fields > MaxFirstHeaderFields || size > MaxFirstHeaderList {
			over = true
			return
		}
		if f.Name == "content-type" {
			ct, found = f.Value, true
		}
	})
	dec.SetMaxStringLength(MaxHeaderString)
	// Fed a little at a time, so that decoding stops soon after
	// content-type or a bound.
	for len(block) > 0 && !found && !over {
		chunk := block[:min(len(block), 256)]
		block = block[len(chunk):]
		if _, err := dec.Write(chunk); err != nil {
			return "", false, headerBlockError(err)
		}
	}
	if over {
		return "", false, &peekError{reason: "header_block", goAway: int(http2.ErrCodeEnhanceYourCalm),
			err: fmt.Errorf("api: the first request has more than %d header fields or %d bytes of headers", MaxFirstHeaderFields, MaxFirstHeaderList)}
	}
	if !found {
		if err := dec.Close(); err != nil {
			return "", false, headerBlockError(err)
		}
	}
	return ct, found, nil
}

func headerBlockError(err error) error {
	if errors.Is(err, hpack.ErrStringLength) {
		return &peekError{reason: "header_block", goAway: int(http2.ErrCodeEnhanceYourCalm),
			err: fmt.Errorf("api: a header of the first request is over %d bytes", MaxHeaderString)}
	}
	return &peekError{reason: "header_block", goAway: int(http2.ErrCodeCompression), err: fmt.Errorf("api: first header block: %w", err)}
}

// routedConn is a TLS connection handed on after routing: the bytes read
// to route it are read again first.
type routedConn struct {
	*tls.Conn
	mu      sync.Mutex
	pending []byte
}

func (c *routedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}

// connListener is a net.Listener fed with connections already accepted
// (and routed).
type connListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// routedCreds are the gRPC server's transport credentials: the handshake
// is done before routing, so they only report it.
type routedCreds struct{}

type tlsStater interface{ ConnectionState() tls.ConnectionState }

func (routedCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	ts, ok := c.(tlsStater)
	if !ok {
		return nil, nil, errors.New("api: connection is not TLS")
	}
	return c, credentials.TLSInfo{State: ts.ConnectionState(), CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (routedCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("api: server credentials only")
}

func (routedCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3"}
}

func (c routedCreds) Clone() credentials.TransportCredentials { return c }

func (routedCreds) OverrideServerName(string) error { return nil }
