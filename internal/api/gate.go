package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/xhub-gov/xhub/proto/xhub/v1/xhubv1connect"
)

// The open methods answer callers without a client certificate; every
// other call needs a verified one, and without it is refused before its
// message is read (gRPC: on its headers, in tap; HTTP: in gate, before
// the body).
//
//   - grpc.health.v1.Health: load balancers and orchestrators check a
//     node without holding a hub credential. It tells whether the node
//     serves, nothing else.
//   - xhub.v1.Nodes/Join: a joining node has no certificate yet; it
//     proves its join token instead.
//   - GET /openapi.json (HTTP): the description of the JSON API, the same
//     for everyone.
//
// Reflection is not open: it lists every method and message of the API,
// and the tools that use it (grpcurl) are run with the caller's PEM
// credential anyway.
var OpenMethods = []string{"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/List", "/grpc.health.v1.Health/Watch", xhubv1connect.NodesJoinProcedure}

func openMethod(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") || method == xhubv1connect.NodesJoinProcedure
}

// Calls without a certificate to the open methods are bounded: at most
// MaxOpenCalls at once on a node (the rest are refused with
// RESOURCE_EXHAUSTED), each within OpenCallTimeout from its headers to its
// end, and over HTTP a body of at most MaxOpenBody (a join request is a
// few hundred bytes). The deadline is the lesser of OpenCallTimeout and
// --read-timeout. Native gRPC reads a message whole up to
// MaxMessageBytes before any handler sees it, so there the bound on what
// they can make the node hold is MaxOpenCalls × MaxMessageBytes, for at
// most OpenCallTimeout.
const (
	MaxOpenCalls    = 32
	OpenCallTimeout = 15 * time.Second
	MaxOpenBody     = 64 << 10
)

// openCalls counts the calls without a certificate in flight.
type openCalls struct{ slots chan struct{} }

func (r *router) openDeadline() time.Duration { return min(OpenCallTimeout, r.limits.ReadTimeout) }

func newOpenCalls() *openCalls { return &openCalls{slots: make(chan struct{}, MaxOpenCalls)} }

func (o *openCalls) acquire() bool {
	select {
	case o.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (o *openCalls) release() { <-o.slots }

func openBusy() error {
	msg := fmt.Sprintf("%d calls without a client certificate are in flight on this node, the most it takes: try again", MaxOpenCalls)
	st, _ := status.New(codes.ResourceExhausted, msg).WithDetails(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{
		{Subject: "calls without a client certificate", Description: msg}}})
	return st.Err()
}

// noCertificate is the answer to a caller without a certificate.
const noCertificate = "a client certificate issued by the hub is required"

func verified(cs *tls.ConnectionState) bool {
	return cs != nil && len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0
}

// tap refuses a native gRPC call without a verified client certificate
// on its headers, before its message is read (grpc-go answers with the
// status and resets the stream). It is the only work added per call.
func (r *router) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && verified(&ti.State) {
			return ctx, nil
		}
	}
	if openMethod(info.FullMethodName) {
		if !r.openCalls.acquire() {
			return nil, openBusy()
		}
		// The stream's context is this one's parent: it ends with the
		// call, and so does the deadline (the message's read included).
		ctx, cancel := context.WithTimeout(ctx, r.openDeadline())
		context.AfterFunc(ctx, func() { cancel(); r.openCalls.release() })
		return ctx, nil
	}
	r.m.unauthed.WithLabelValues("grpc").Inc()
	return nil, status.Error(codes.Unauthenticated, noCertificate)
}

// bidiPath: the HTTP paths whose bodies are streams that stay open; their
// messages are bounded one by one (connect.WithReadMaxBytes), not their
// bodies.
func bidiPath(path string) bool {
	return path == xhubv1connect.ExchangeSubscribeProcedure || path == xhubv1connect.ProviderServeProcedure
}

func openPath(r *http.Request) bool {
	return r.URL.Path == xhubv1connect.NodesJoinProcedure || (r.URL.Path == OpenAPIPath && r.Method == http.MethodGet)
}

// envelope is the gRPC and gRPC-Web framing of one message (flag and
// length), which a unary body carries above MaxMessageBytes.
const envelope = 5

// gate runs before anything reads a request body: it refuses a caller
// without a verified client certificate (open paths aside), refuses a
// body declared larger than one message may be, and bounds the reading
// of the others in bytes and in time (ReadTimeout). The bidirectional
// streams' bodies stay open as long as their calls.
func (r *router) gate(limits ConnLimits, ew *connect.ErrorWriter, h http.Handler) http.Handler {
	maxBody := int64(limits.MaxMessageBytes) + envelope
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !verified(req.TLS) {
			if !openPath(req) {
				r.m.unauthed.WithLabelValues("http").Inc()
				refuse(w, req, ew, status.Error(codes.Unauthenticated, noCertificate))
				return
			}
			if req.ContentLength > MaxOpenBody {
				refuse(w, req, ew, tooLarge(req.ContentLength, MaxOpenBody))
				return
			}
			if !r.openCalls.acquire() {
				refuse(w, req, ew, openBusy())
				return
			}
			defer r.openCalls.release()
			d := r.openDeadline()
			ctx, cancel := context.WithTimeout(req.Context(), d)
			defer cancel()
			req = req.WithContext(ctx)
			if req.Body != nil && req.Body != http.NoBody {
				rc := http.NewResponseController(w)
				_ = rc.SetReadDeadline(time.Now().Add(d))
				req.Body = &boundedBody{body: http.MaxBytesReader(w, req.Body, MaxOpenBody), rc: rc, limits: ConnLimits{MaxMessageBytes: MaxOpenBody, ReadTimeout: d}}
			}
			h.ServeHTTP(w, req)
			return
		}
		if req.ContentLength == 0 || req.Body == nil || req.Body == http.NoBody || bidiPath(req.URL.Path) {
			h.ServeHTTP(w, req)
			return
		}
		if req.ContentLength > maxBody {
			refuse(w, req, ew, tooLarge(req.ContentLength, limits.MaxMessageBytes))
			return
		}
		rc := http.NewResponseController(w)
		b := &boundedBody{body: http.MaxBytesReader(w, req.Body, maxBody), rc: rc, limits: limits}
		_ = rc.SetReadDeadline(time.Now().Add(limits.ReadTimeout))
		req.Body = b
		h.ServeHTTP(w, req)
	})
}

func tooLarge(n int64, max int) error {
	var what string
	if n >= 0 {
		what = fmt.Sprintf("%d bytes", n)
	} else {
		what = "larger"
	}
	msg := fmt.Sprintf("the request is %s; one message may be at most %d bytes (--max-message-bytes): send fewer records per batch", what, max)
	st, _ := status.New(codes.ResourceExhausted, msg).WithDetails(&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{
		{Subject: "request body", Description: msg}}})
	return st.Err()
}

// refuse answers req with err, a gRPC status, in the request's protocol
// (Connect, gRPC, gRPC-Web; plain text otherwise), without reading its
// body: an HTTP/1.1 connection with a body left unread is closed after
// the answer.
func refuse(w http.ResponseWriter, req *http.Request, ew *connect.ErrorWriter, err error) {
	if req.ProtoMajor == 1 && req.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	ce := connectError(err)
	if ew.IsSupported(req) {
		_ = ew.Write(w, req, ce)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(httpStatus(ce.Code()))
	fmt.Fprintf(w, "%s: %s\n", ce.Code(), ce.Message())
}

// boundedBody is a request body read within MaxMessageBytes and
// ReadTimeout; the read deadline is lifted once the body is read, so that
// the handler's work and a streamed answer are not bound by it.
type boundedBody struct {
	body   io.ReadCloser
	rc     *http.ResponseController
	limits ConnLimits
	once   sync.Once
}

func (b *boundedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
	case errors.As(err, new(*http.MaxBytesError)):
		err = connectError(tooLarge(-1, b.limits.MaxMessageBytes))
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = connect.NewError(connect.CodeDeadlineExceeded, fmt.Errorf("the request body was not received within %s (--read-timeout)", b.limits.ReadTimeout))
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.body.Close() }
