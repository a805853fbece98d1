package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
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
// first request — application/grpc (not grpc-web) to the native gRPC
// server, anything else to the HTTP handler. Native gRPC keeps grpc-go's
// own transport (nothing of net/http on its path); the only cost to it is
// reading its first request's headers once per connection.

const (
	// HandshakeTimeout bounds a connection's TLS handshake.
	HandshakeTimeout = 10 * time.Second
	// PeekTimeout is how long an HTTP/2 connection may wait before its
	// first request; one that sends none (a gRPC client connecting ahead
	// of its first call) is then given to the gRPC server.
	PeekTimeout = 5 * time.Second
	// peekLimit bounds what is read from a connection before routing.
	peekLimit = 1 << 20
)

var clientPreface = []byte(http2.ClientPreface)

// router accepts the hub's connections and hands each to its server.
type router struct {
	tlsCfg *tls.Config
	watch  *handshakeWatch
	grpc   *connListener // native gRPC
	http1  *connListener // HTTP/1.1, served by httpSrv
	httpH  http.Handler
	http   *http.Server
	h2     *http2.Server

	mu     sync.Mutex
	lis    net.Listener
	conns  map[net.Conn]struct{} // being routed, or served by h2
	closed bool
}

func newRouter(tlsCfg *tls.Config, watch *handshakeWatch, h http.Handler) *router {
	r := &router{tlsCfg: tlsCfg, watch: watch, httpH: h, conns: map[net.Conn]struct{}{}}
	r.http = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: HandshakeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	r.h2 = &http2.Server{IdleTimeout: 2 * time.Minute}
	_ = http2.ConfigureServer(r.http, r.h2) // Shutdown also ends h2 connections gracefully
	return r
}

// serve accepts on lis until it is closed.
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
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tempDelay = min(max(tempDelay*2, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			r.mu.Lock()
			closed := r.closed
			r.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		tempDelay = 0
		if !r.track(conn) {
			conn.Close()
			continue
		}
		go r.route(conn)
	}
}

func (r *router) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
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
			r.untrack(raw)
		}
	}()
	_ = raw.SetDeadline(time.Now().Add(HandshakeTimeout))
	tc := tls.Server(raw, r.tlsCfg)
	if err := tc.Handshake(); err != nil {
		if !errors.Is(err, io.EOF) {
			r.watch.refused(raw.RemoteAddr(), err)
		}
		return
	}
	if tc.ConnectionState().NegotiatedProtocol != http2.NextProtoTLS {
		_ = raw.SetDeadline(time.Time{})
		r.untrack(raw) // http.Server tracks it from here
		handed = r.http1.push(tc)
		if !handed {
			tc.Close()
			handed = true
		}
		return
	}
	_ = raw.SetDeadline(time.Now().Add(PeekTimeout))
	rc, toGRPC, err := peekH2(tc)
	if err != nil {
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

// peekH2 sends the server's connection preface (a SETTINGS frame: gRPC
// clients wait for it before their first request), reads the client's
// preface and frames up to its first request's headers, and says whether
// that request is native gRPC. A connection that sends no request within
// PeekTimeout is a gRPC client connecting ahead of its first call. For the
// HTTP side, the client's acknowledgement of that SETTINGS frame is taken
// out of the stream: the HTTP/2 server that takes over sends its own and
// counts acknowledgements.
func peekH2(tc *tls.Conn) (*routedConn, bool, error) {
	// SETTINGS_NO_RFC7540_PRIORITIES=1, as Go's HTTP/2 server sends it:
	// a client may refuse its change between two SETTINGS frames (curl's
	// nghttp2 does); gRPC's server leaves it out, which changes nothing.
	if _, err := tc.Write([]byte{0, 0, 6, http2FrameSettings, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1}); err != nil {
		return nil, false, err
	}
	p := &peeker{conn: tc, ackAt: -1}
	pre := make([]byte, len(clientPreface))
	if _, err := io.ReadFull(p, pre); err != nil || !bytes.Equal(pre, clientPreface) {
		return nil, false, fmt.Errorf("api: not an HTTP/2 client preface")
	}
	ct, err := p.firstContentType()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &routedConn{Conn: tc, pending: p.buf}, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if strings.HasPrefix(ct, "application/grpc") && !strings.HasPrefix(ct, "application/grpc-web") {
		return &routedConn{Conn: tc, pending: p.buf}, true, nil
	}
	for p.ackAt < 0 {
		if err := p.frame(); err != nil {
			return nil, false, err
		}
	}
	pending := append(p.buf[:p.ackAt:p.ackAt], p.buf[p.ackAt+9:]...)
	return &routedConn{Conn: tc, pending: pending}, false, nil
}

const (
	http2FrameHeaders      = 0x1
	http2FrameSettings     = 0x4
	http2FrameContinuation = 0x9
	http2FlagAck           = 0x1
	http2FlagEndHeaders    = 0x4
	http2FlagPadded        = 0x8
	http2FlagPriority      = 0x20
	http2MaxFrame          = 16384 // the default: our SETTINGS frame changes nothing
)

type peeker struct {
	conn    *tls.Conn
	buf     []byte // every byte read, to be read again by the server routed to
	ackAt   int    // offset in buf of the client's first SETTINGS ack; -1: not yet
	block   []byte // header block of the first request, being gathered
	inBlock bool
	done    bool // the first request's headers are complete
}

func (p *peeker) Read(b []byte) (int, error) {
	if len(p.buf) >= peekLimit {
		return 0, errors.New("api: too much before the first request")
	}
	n, err := p.conn.Read(b)
	p.buf = append(p.buf, b[:n]...)
	return n, err
}

// frame reads one frame, noting where the first SETTINGS ack is, and
// gathers the first header block.
func (p *peeker) frame() error {
	start := len(p.buf)
	var h [9]byte
	if _, err := io.ReadFull(p, h[:]); err != nil {
		return err
	}
	length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	typ, flags := h[3], h[4]
	if length > http2MaxFrame {
		return fmt.Errorf("api: HTTP/2 frame of %d bytes", length)
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(p, payload); err != nil {
		return err
	}
	if typ == http2FrameSettings && flags&http2FlagAck != 0 && p.ackAt < 0 {
		if length != 0 {
			return errors.New("api: SETTINGS ack with a payload")
		}
		p.ackAt = start
		return nil
	}
	if p.done {
		return nil
	}
	switch {
	case typ == http2FrameHeaders && !p.inBlock:
		frag := payload
		if flags&http2FlagPadded != 0 {
			if len(frag) < 1 || int(frag[0]) > len(frag)-1 {
				return errors.New("api: bad HEADERS padding")
			}
			frag = frag[1 : len(frag)-int(frag[0])]
		}
		if flags&http2FlagPriority != 0 {
			if len(frag) < 5 {
				return errors.New("api: bad HEADERS priority")
			}
			frag = frag[5:]
		}
		p.block = append(p.block, frag...)
		p.inBlock = true
	case typ == http2FrameContinuation && p.inBlock:
		p.block = append(p.block, payload...)
	case p.inBlock:
		return errors.New("api: HTTP/2 header block interrupted")
	default:
		return nil
	}
	if flags&http2FlagEndHeaders != 0 {
		p.done = true
	}
	return nil
}

// firstContentType reads frames until the first request's headers are
// complete and returns its content-type.
func (p *peeker) firstContentType() (string, error) {
	for !p.done {
		if err := p.frame(); err != nil {
			return "", err
		}
	}
	dec := hpack.NewDecoder(4096, nil)
	dec.SetMaxStringLength(16 << 10)
	fields, err := dec.DecodeFull(p.block)
	if err != nil {
		return "", err
	}
	for _, f := range fields {
		if f.Name == "content-type" {
			return f.Value, nil
		}
	}
	return "", nil
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
