package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/api"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
	"github.com/xhub-gov/xhub/proto/xhub/v1/xhubv1connect"
)

// clientTLS is the TLS config of a client of env: the admin's certificate,
// or none (the hub's CA only), offering protos.
func clientTLS(t *testing.T, env *testenv.Env, cert bool, protos ...string) *tls.Config {
	t.Helper()
	c, err := vocab.LoadCreds(env.Node.AdminCreds)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.ClientTLS(env.Addr())
	if !cert {
		cfg.Certificates = nil
	}
	cfg.NextProtos = protos
	return cfg
}

// dialFrom opens a TCP connection to env from a loopback address of its
// own (127.0.0.x), so that bounds per address are tried without touching
// the tests' own client address.
func dialFrom(t *testing.T, env *testenv.Env, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", env.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// closedSoon says whether the hub closes c (EOF or reset) within d,
// sending nothing.
func closedSoon(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func metricValue(t *testing.T, env *testenv.Env, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(metricsText(t, env))
	if m == nil {
		t.Fatalf("metric %s not served", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestConnectionBounds: connections beyond the bound per address and the
// bound in total are closed as soon as they are accepted and counted;
// the ones within stay; the hub goes on serving, and a place given back
// is taken again. (Before: nothing was bounded, and ~21,000 idle
// connections stopped the node.)
func TestConnectionBounds(t *testing.T) {
	const perAddr, total, each = 8, 12, 20
	env := testenv.Start(t, testenv.WithMetrics(), testenv.WithConn(api.ConnLimits{
		MaxConns: total, MaxConnsPerAddr: perAddr, HandshakeTimeout: 5 * time.Minute}))
	var conns = map[string][]net.Conn{}
	defer func() {
		for _, cs := range conns {
			for _, c := range cs {
				c.Close()
			}
		}
	}()
	metric := func(series string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(metricsText(t, env))
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	closed := func(cs []net.Conn, d time.Duration) int {
		var n atomic.Int32
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() {
				if closedSoon(c, d) {
					n.Add(1)
				}
			})
		}
		wg.Wait()
		return int(n.Load())
	}
	// 127.0.0.2 gets its 8 and 12 are refused (address).
	for range each {
		conns["127.0.0.2"] = append(conns["127.0.0.2"], dialFrom(t, env, "127.0.0.2"))
	}
	testenv.WaitFor(t, 10*time.Second, "127.0.0.2 at its bound", func() bool {
		return metric(`xhub_connections_refused_total{bound="address"}`) == each-perAddr && metric(`xhub_connections_open`) == perAddr
	})
	if n := closed(conns["127.0.0.2"][perAddr:], 5*time.Second); n != each-perAddr {
		t.Errorf("127.0.0.2: %d of its %d connections over the bound closed", n, each-perAddr)
	}
	// 127.0.0.3 takes the 4 left of the 12 in total.
	for range total - perAddr {
		conns["127.0.0.3"] = append(conns["127.0.0.3"], dialFrom(t, env, "127.0.0.3"))
	}
	testenv.WaitFor(t, 10*time.Second, "the node at its total bound", func() bool { return metric(`xhub_connections_open`) == total })
	// At the total, a new connection takes the place of the oldest one
	// still in its TLS handshake (they never start it): connections that
	// send nothing cannot lock every client out.
	conns["127.0.0.3"] = append(conns["127.0.0.3"], dialFrom(t, env, "127.0.0.3"))
	testenv.WaitFor(t, 10*time.Second, "the oldest connection in its handshake evicted", func() bool {
		return metric(`xhub_connections_refused_total{bound="handshake_evicted"}`) == 1
	})
	if !closedSoon(conns["127.0.0.2"][0], 5*time.Second) {
		t.Error("the oldest connection in its handshake was not closed")
	}
	if closedSoon(conns["127.0.0.3"][total-perAddr], time.Second) {
		t.Error("the new connection was closed instead of the oldest")
	}
	admin := env.HTTP(env.Node.AdminCreds, true)
	res, err := admin.Post(env.URL()+"/xhub.v1.Catalog/ListDatasets", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatalf("an authenticated call while idle connections fill the bound: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("an authenticated call while idle connections fill the bound: %d", res.StatusCode)
	}
	// 127.0.0.2 leaves: its places come back, and the hub serves.
	for _, c := range conns["127.0.0.2"] {
		c.Close()
	}
	testenv.WaitFor(t, 30*time.Second, "a call served after the idle connections left", func() bool {
		res, err := admin.Post(env.URL()+"/xhub.v1.Catalog/ListDatasets", "application/json", strings.NewReader(`{}`))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	select {
	case <-env.Node.Done():
		t.Fatalf("the node stopped: %v", env.Node.Err())
	default:
	}
}

// faultyListener fails Accept with EMFILE (the connection it got is
// closed) as many times as fail says.
type faultyListener struct {
	net.Listener
	fail atomic.Int32
}

func (l *faultyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil && l.fail.Add(-1) >= 0 {
		c.Close()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return c, err
}

// TestAcceptErrorsDoNotStopTheNode: "too many open files" from Accept is
// retried after a pause, counted, and the node goes on serving. (Before,
// the first one stopped the node: "a part failed … accept4: too many open
// files".)
func TestAcceptErrorsDoNotStopTheNode(t *testing.T) {
	fl := &faultyListener{}
	env := testenv.Start(t, testenv.WithMetrics(), testenv.WithListener(func(l net.Listener) net.Listener {
		fl.Listener = l
		return fl
	}))
	const n = 5
	fl.fail.Store(n)
	for range n {
		c, err := net.Dial("tcp", env.Addr())
		if err != nil {
			select {
			case <-env.Node.Done():
				t.Fatalf("the node stopped on an accept error: %v", env.Node.Err())
			default:
				t.Fatal(err)
			}
		}
		closedSoon(c, 30*time.Second)
		c.Close()
	}
	st, body, _ := post(t, env.HTTP(env.Node.AdminCreds, false), env.URL(), "Catalog/ListDatasets", `{}`)
	if st != 200 {
		t.Fatalf("after %d accept errors: %d %s", n, st, body)
	}
	select {
	case <-env.Node.Done():
		t.Fatalf("the node stopped: %v", env.Node.Err())
	default:
	}
	if v := metricValue(t, env, "xhub_accept_errors_total"); v != n {
		t.Errorf("accept errors counted: %v, want %d", v, n)
	}
}

// TestIdleConnectionsClosed: with an idle timeout of 2 s, an HTTP/2
// connection that sends only its preface is closed (told with a GOAWAY),
// as are a native gRPC connection and an HTTP/2 one idle after a call;
// an HTTP/1.1 body sent a byte at a time is cut off by the read timeout
// and its connection closed. (Before: the preface-only connection went to
// gRPC after 5 s and stayed; the slow body was still open at 160 s.)
func TestIdleConnectionsClosed(t *testing.T) {
	env := testenv.Start(t, testenv.WithMetrics(), testenv.WithConn(api.ConnLimits{
		IdleTimeout: 2 * time.Second, ReadTimeout: time.Second}))
	const within = 30 * time.Second

	t.Run("preface only", func(t *testing.T) {
		c, err := tls.Dial("tcp", env.Addr(), clientTLS(t, env, false, "h2"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(append([]byte(http2.ClientPreface), 0, 0, 0, 4, 0, 0, 0, 0, 0)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(within))
		fr := http2.NewFramer(io.Discard, c)
		goAway := false
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("a connection that sent only its preface was still open after %s", within)
				}
				break
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok && ga.ErrCode == http2.ErrCodeNo {
				goAway = true
			}
		}
		if !goAway {
			t.Error("closed without a GOAWAY")
		}
		if v := metricValue(t, env, `xhub_connections_closed_early_total{reason="no_request"}`); v < 1 {
			t.Errorf("not counted: %v", v)
		}
	})

	t.Run("gRPC idle after a call", func(t *testing.T) {
		conn, err := grpc.NewClient(env.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, env, true))))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		if _, err := xhubv1.NewCatalogClient(conn).ListDatasets(ctx, &xhubv1.ListDatasetsRequest{}); err != nil {
			t.Fatal(err)
		}
		for s := conn.GetState(); s == connectivity.Ready; s = conn.GetState() {
			if !conn.WaitForStateChange(ctx, s) {
				t.Fatalf("a gRPC connection idle after its call was still %v after %s", s, within)
			}
		}
		// And it reconnects for the next call.
		if _, err := xhubv1.NewCatalogClient(conn).ListDatasets(ctx, &xhubv1.ListDatasetsRequest{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("HTTP/2 idle after a request", func(t *testing.T) {
		tc, err := tls.Dial("tcp", env.Addr(), clientTLS(t, env, true, "h2"))
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		cc, err := (&http2.Transport{}).NewClientConn(tc)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, env.URL()+"/xhub.v1.Catalog/ListDatasets", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		res, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%d", res.StatusCode)
		}
		testenv.WaitFor(t, within, "the idle HTTP/2 connection closed by the hub", func() bool {
			s := cc.State()
			return s.Closed || s.Closing
		})
	})

	t.Run("streams stay open", func(t *testing.T) {
		// An inbox watch over native gRPC and over Connect on HTTP/1.1
		// outlives the idle and read timeouts: it ends only when its
		// client does.
		off := env.Creds("health", vocab.RoleOfficer, "watcher")
		const open = 5 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), open)
		defer cancel()
		var wg sync.WaitGroup
		wg.Go(func() {
			s, err := xhubv1connect.NewSharesClient(env.HTTP(off, false), env.URL(), connect.WithProtoJSON()).WatchInbox(ctx, &xhubv1.WatchInboxRequest{})
			if err != nil {
				t.Error(err)
				return
			}
			for s.Receive() {
			}
			if ctx.Err() == nil {
				t.Errorf("an inbox watch over HTTP/1.1 ended before its client: %v", s.Err())
			}
		})
		wg.Go(func() {
			s, err := testenv.RPC(env.Dial(off)).Shares.WatchInbox(ctx, &xhubv1.WatchInboxRequest{})
			if err != nil {
				t.Error(err)
				return
			}
			for err == nil {
				_, err = s.Recv()
			}
			// The server holds the client's deadline too and may end the
			// stream at it a moment before the client's context says so.
			if ctx.Err() == nil && status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("an inbox watch over gRPC ended before its client: %v", err)
			}
		})
		wg.Wait()
	})

	t.Run("HTTP/1.1 slow body", func(t *testing.T) {
		c, err := tls.Dial("tcp", env.Addr(), clientTLS(t, env, true, "http/1.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /xhub.v1.Catalog/ListDatasets HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", env.Addr())
		stop := make(chan struct{})
		defer close(stop)
		go func() { // a byte every half second: 500 s for the body
			for {
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(within))
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to a body sent a byte at a time within %s: %v", within, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 200 || !strings.Contains(string(b), "--read-timeout") {
			t.Errorf("slow body: %d %s", res.StatusCode, b)
		}
		if _, err := br.ReadByte(); err == nil || errors.As(err, new(net.Error)) && err.(net.Error).Timeout() {
			t.Errorf("the connection stayed open: %v", err)
		}
	})
}

// TestUnauthenticatedRefusedBeforeTheBody: a call without a client
// certificate is answered before its message is sent at all, over
// HTTP/1.1, HTTP/2 and native gRPC; the HTTP/1.1 connection is then
// closed. (Before: a 60 MiB body was read and decoded whole, 1.5 GB of
// RSS, before the 401.)
func TestUnauthenticatedRefusedBeforeTheBody(t *testing.T) {
	env := testenv.Start(t, testenv.WithMetrics())
	const declared = 60 << 20
	const within = 20 * time.Second

	t.Run("HTTP/1.1", func(t *testing.T) {
		c, err := tls.Dial("tcp", env.Addr(), clientTLS(t, env, false, "http/1.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /xhub.v1.Exchange/Publish HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"records\":[", env.Addr(), declared)
		_ = c.SetReadDeadline(time.Now().Add(within))
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer before the body was sent: %v", err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		wantError(t, res.StatusCode, string(b), 401, "unauthenticated")
		if _, err := br.ReadByte(); err == nil || errors.As(err, new(net.Error)) && err.(net.Error).Timeout() {
			t.Errorf("the connection stayed open for the body: %v", err)
		}
	})

	t.Run("HTTP/2", func(t *testing.T) {
		tc, err := tls.Dial("tcp", env.Addr(), clientTLS(t, env, false, "h2"))
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		cc, err := (&http2.Transport{}).NewClientConn(tc)
		if err != nil {
			t.Fatal(err)
		}
		body, bw := io.Pipe() // never written: the body is never sent
		defer bw.Close()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.URL()+"/xhub.v1.Exchange/Publish", body)
		req.ContentLength = declared
		req.Header.Set("Content-Type", "application/json")
		res, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatalf("no answer before the body was sent: %v", err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		wantError(t, res.StatusCode, string(b), 401, "unauthenticated")
	})

	t.Run("gRPC", func(t *testing.T) {
		conn, err := grpc.NewClient(env.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, env, false))))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		// The call's headers only: its message is never sent.
		cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/xhub.v1.Exchange/Publish")
		if err != nil {
			t.Fatal(err)
		}
		err = cs.RecvMsg(&xhubv1.PublishResponse{})
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "client certificate") {
			t.Fatalf("a call without a certificate, before its message: %v", err)
		}
	})
	if v := metricValue(t, env, `xhub_calls_refused_unauthenticated_total{transport="http"}`); v != 2 {
		t.Errorf("HTTP refusals counted: %v", v)
	}
	if v := metricValue(t, env, `xhub_calls_refused_unauthenticated_total{transport="grpc"}`); v != 1 {
		t.Errorf("gRPC refusals counted: %v", v)
	}
}

// TestMessageBound: a message over the bound (what one NATS message
// carries plus framing: 8 MiB + 64 KiB on the embedded server, no longer
// 64 MiB) is refused with RESOURCE_EXHAUSTED naming the bound, over native
// gRPC and over HTTP, where a body declared larger is refused before it
// is read.
func TestMessageBound(t *testing.T) {
	env := testenv.Start(t)
	const max = 8<<20 + api.MessageFraming
	big := bytes.Repeat([]byte("1"), max+1)

	conn, err := grpc.NewClient(env.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, env, true))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = xhubv1.NewExchangeClient(conn).Publish(ctx, &xhubv1.PublishRequest{Dataset: "health.cases", Records: [][]byte{big}})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), strconv.Itoa(max)) {
		t.Fatalf("a gRPC message over the bound: %v", err)
	}

	tc, err := tls.Dial("tcp", env.Addr(), clientTLS(t, env, true, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	fmt.Fprintf(tc, "POST /xhub.v1.Exchange/Publish HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", env.Addr(), max+100)
	_ = tc.SetReadDeadline(time.Now().Add(20 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("no answer before a body over the bound was sent: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	e := wantError(t, res.StatusCode, string(b), 429, "resource_exhausted")
	if !strings.Contains(e.Message, strconv.Itoa(max)) || !strings.Contains(e.Message, "--max-message-bytes") {
		t.Errorf("the error does not name the bound: %s", e.Message)
	}
}

// countingListener counts the bytes the hub reads from its connections.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, n: &l.read}, nil
}

// hpackBomb is a first header block of about size bytes that decodes to
// thousands of times as much: one 4,000-byte header put in the dynamic
// table, then one-byte references to it.
func hpackBomb(size int) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	_ = enc.WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
	_ = enc.WriteField(hpack.HeaderField{Name: "x-bomb", Value: strings.Repeat("a", 4000)})
	for buf.Len() < size {
		buf.WriteByte(0x80 | 62) // indexed: the newest dynamic entry
	}
	return buf.Bytes()
}

// TestHPACKBombRefused: an unauthenticated client sending a first header
// block of nearly 1 MiB that references one 4 KB header again and again
// (about 4 GB decoded) has its connection closed after a small part of
// it is read, with bounded allocation. (Before: the whole block was
// read and decoded with hpack.DecodeFull, 218 MB for one connection.)
func TestHPACKBombRefused(t *testing.T) {
	cl := &countingListener{}
	env := testenv.Start(t, testenv.WithMetrics(), testenv.WithListener(func(l net.Listener) net.Listener {
		cl.Listener = l
		return cl
	}))
	block := hpackBomb(1<<20 - 64<<10)
	const conns = 4
	before := cl.read.Load()
	var ms0, ms1 runtimeMem
	ms0.read()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Go(func() {
			c, err := tls.Dial("tcp", env.Addr(), clientTLS(t, env, false, "h2"))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			go func() { // written while the hub reads; stops when it closes
				fr := http2.NewFramer(c, nil)
				_, _ = c.Write([]byte(http2.ClientPreface))
				_ = fr.WriteSettings()
				rest := block
				first := true
				for len(rest) > 0 {
					n := min(len(rest), 16384)
					var err error
					if first {
						err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rest[:n], EndHeaders: n == len(rest)})
						first = false
					} else {
						err = fr.WriteContinuation(1, n == len(rest), rest[:n])
					}
					if err != nil {
						return
					}
					rest = rest[n:]
				}
			}()
			if !closedSoon(c, 30*time.Second) {
				errs <- errors.New("the connection sending the block was still open after 30s")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ms1.read()
	read := cl.read.Load() - before
	// Each connection: its handshake, the preface and at most the bound
	// on the first block (16 KiB) and a frame.
	if per := read / conns; per > 64<<10 {
		t.Errorf("the hub read %d bytes per connection of a %d-byte header block", per, len(block))
	}
	t.Logf("read %d bytes per connection; %d bytes allocated by the process meanwhile", read/conns, ms1.alloc-ms0.alloc)
	if alloc := ms1.alloc - ms0.alloc; alloc > 64<<20 {
		t.Errorf("%d bytes allocated while %d connections sent their blocks", alloc, conns)
	}
	if v := metricValue(t, env, `xhub_connections_closed_early_total{reason="header_block"}`); v != conns {
		t.Errorf("refused blocks counted: %v", v)
	}
	st, body, _ := post(t, env.HTTP(env.Node.AdminCreds, true), env.URL(), "Catalog/ListDatasets", `{}`)
	if st != 200 {
		t.Fatalf("after the blocks: %d %s", st, body)
	}
}

// TestFirstRequestWhenever: a connection is routed by its first request
// whenever it comes: an HTTP/2 JSON client and a native gRPC client that
// both connect and wait past the old 5 s peek before their first call
// are each served by the right server. (Before: the JSON client was sent
// to native gRPC after 5 s and got 415.)
func TestFirstRequestWhenever(t *testing.T) {
	env := testenv.Start(t)
	tc, err := tls.Dial("tcp", env.Addr(), clientTLS(t, env, true, "h2"))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	cc, err := (&http2.Transport{}).NewClientConn(tc) // sends its preface now
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(env.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, env, true))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			t.Fatalf("never ready: %v", s)
		}
	}
	// Both check their connection meanwhile, as clients with keepalives
	// do: the router answers.
	if err := cc.Ping(ctx); err != nil {
		t.Fatalf("ping before the first request: %v", err)
	}
	time.Sleep(6 * time.Second) // past the old PeekTimeout (5 s)

	req, _ := http.NewRequest(http.MethodPost, env.URL()+"/xhub.v1.Catalog/ListDatasets", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("an HTTP/2 JSON client's first request after 6 s: %d %s", res.StatusCode, b)
	}
	if _, err := xhubv1.NewCatalogClient(conn).ListDatasets(ctx, &xhubv1.ListDatasetsRequest{}); err != nil {
		t.Fatalf("a gRPC client's first call after 6 s: %v", err)
	}
	if s := conn.GetState(); s != connectivity.Ready {
		t.Fatalf("gRPC connection state %v", s)
	}
}

// TestOpenMethods: without a certificate only the open methods answer
// (api.OpenMethods: health, Nodes/Join, and over HTTP the OpenAPI
// document); reflection, which lists the whole API, needs a hub
// credential, as the README says. (Before: reflection answered anyone.)
func TestOpenMethods(t *testing.T) {
	env := testenv.Start(t)
	dial := func(cert bool) *grpc.ClientConn {
		conn, err := grpc.NewClient(env.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, env, cert))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reflect := func(conn *grpc.ClientConn) (*reflectionpb.ServerReflectionResponse, error) {
		s, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, err
		}
		// A stream the server has ended already fails Send with io.EOF;
		// its status comes with Recv (grpc-go's ClientStream.SendMsg).
		if err := s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return s.Recv()
	}
	anon, admin := dial(false), dial(true)
	if res, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health without a certificate: %v %v", res, err)
	}
	if _, err := reflect(anon); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("reflection without a certificate: %v", err)
	}
	res, err := reflect(admin)
	if err != nil || !strings.Contains(res.String(), "xhub.v1.Catalog") {
		t.Fatalf("reflection with a certificate: %v %v", res, err)
	}
	// Nodes/Join is open: a bad token is judged, not the missing
	// certificate.
	if _, err := xhubv1.NewNodesClient(anon).Join(ctx, &xhubv1.JoinRequest{TokenId: "nonsense", Secret: []byte("x"), Name: "n"}); err == nil || status.Code(err) == codes.Unauthenticated && strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("Nodes/Join without a certificate: %v", err)
	}
	for _, m := range api.OpenMethods {
		if !strings.HasPrefix(m, "/grpc.health.v1.Health/") && m != "/xhub.v1.Nodes/Join" {
			t.Errorf("open method %s is not in the list this test checks", m)
		}
	}
	h := env.HTTP("", true)
	st, body, _ := post(t, h, env.URL(), "Nodes/Join", `{"tokenId":"nonsense","secret":"eA==","name":"n"}`)
	if st == 401 {
		t.Fatalf("Nodes/Join over HTTP without a certificate: %d %s", st, body)
	}
}

// runtimeMem is the process's cumulative heap allocation.
type runtimeMem struct{ alloc uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.alloc = ms.TotalAlloc
}
