package api

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/internal/jsonapi"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
	"github.com/xhub-gov/xhub/proto/xhub/v1/xhubv1connect"
)

// The HTTP side serves every xhub.v1 service through Connect handlers
// generated from the proto: the Connect protocol (unary calls are a POST
// of a JSON body, so curl works), gRPC-Web (JSON or binary) and gRPC. The
// same service implementations answer, behind the same interceptors as
// native gRPC: the caller's identity is its verified TLS client
// certificate, the same role table decides, errors carry the same codes
// and details.

// OpenAPIPath is where the hub serves the OpenAPI 3 document of its JSON
// API (no client certificate needed).
const OpenAPIPath = "/openapi.json"

// CompressMinBytes: HTTP answers smaller than this are not compressed,
// whatever the client accepts.
const CompressMinBytes = 16 << 10

// bridge runs the gRPC interceptor chains for calls that arrive over
// HTTP, so that there is one authentication, one authorisation and one
// set of call metrics.
type bridge struct {
	unary  grpc.UnaryServerInterceptor
	stream grpc.StreamServerInterceptor
}

func (s *Server) httpHandler(svcs services, b *bridge, limits ConnLimits) http.Handler {
	opts := []connect.HandlerOption{
		connect.WithInterceptors(b),
		connect.WithReadMaxBytes(limits.MaxMessageBytes),
		// gzip only answers worth it: compressing a one-record answer
		// cost more CPU than the whole JSON encoding.
		connect.WithCompressMinBytes(CompressMinBytes),
	}
	for _, c := range jsonapi.Codecs() {
		opts = append(opts, connect.WithCodec(c))
	}
	mux := http.NewServeMux()
	mux.Handle(xhubv1connect.NewDepartmentsHandler(svcs.departments, opts...))
	mux.Handle(xhubv1connect.NewCredentialsHandler(svcs.credentials, opts...))
	mux.Handle(xhubv1connect.NewSchemasHandler(svcs.schemas, opts...))
	mux.Handle(xhubv1connect.NewCatalogHandler(svcs.catalog, opts...))
	mux.Handle(xhubv1connect.NewLedgerHandler(svcs.ledger, opts...))
	mux.Handle(xhubv1connect.NewSharesHandler(connectShares{sharesSvc: svcs.shares, b: b}, opts...))
	mux.Handle(xhubv1connect.NewExchangeHandler(connectExchange{exchangeSvc: svcs.exchange, b: b}, opts...))
	mux.Handle(xhubv1connect.NewNodesHandler(svcs.nodes, opts...))
	mux.Handle(xhubv1connect.NewDisputesHandler(svcs.disputes, opts...))
	mux.Handle(xhubv1connect.NewProviderHandler(connectProvider{providerSvc: svcs.provider, b: b}, opts...))
	mux.Handle(xhubv1connect.NewAuditHandler(connectAudit{auditSvc: svcs.audit, b: b}, opts...))
	mux.HandleFunc("GET "+OpenAPIPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jsonapi.OpenAPI())
	})
	s.exportRoutes(mux, b)
	return withConn(s.router.gate(limits, connect.NewErrorWriter(opts...), mux))
}

type connKey struct{}

type connInfo struct {
	tls    *tls.ConnectionState
	remote string
}

// withConn keeps the request's TLS state and remote address for the
// bridge (Connect's own peer has no TLS state).
func withConn(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), connKey{}, connInfo{tls: r.TLS, remote: r.RemoteAddr})
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

type strAddr string

func (a strAddr) Network() string { return "tcp" }
func (a strAddr) String() string  { return string(a) }

// grpcContext gives ctx what the gRPC interceptors read: the peer with its
// TLS state and the request headers as incoming metadata.
func grpcContext(ctx context.Context, h http.Header) context.Context {
	ci, _ := ctx.Value(connKey{}).(connInfo)
	p := &peer.Peer{Addr: strAddr(ci.remote)}
	if ci.tls != nil {
		p.AuthInfo = credentials.TLSInfo{State: *ci.tls, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
	}
	ctx = peer.NewContext(ctx, p)
	md := metadata.MD{}
	for k, v := range h {
		md[strings.ToLower(k)] = v
	}
	return metadata.NewIncomingContext(ctx, md)
}

// headerStream is the gRPC transport stream of a call that came over
// HTTP: it keeps what handlers and interceptors set with grpc.SetHeader
// and grpc.SetTrailer, for the HTTP answer.
type headerStream struct {
	method  string
	header  metadata.MD
	trailer metadata.MD
}

func (s *headerStream) Method() string { return s.method }
func (s *headerStream) SetHeader(md metadata.MD) error {
	s.header = metadata.Join(s.header, md)
	return nil
}
func (s *headerStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }
func (s *headerStream) SetTrailer(md metadata.MD) error {
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

func copyMD(dst http.Header, md metadata.MD) {
	for k, vs := range md {
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

func (b *bridge) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		hs := &headerStream{method: req.Spec().Procedure}
		ctx = grpc.NewContextWithServerTransportStream(grpcContext(ctx, req.Header()), hs)
		var res connect.AnyResponse
		_, err := b.unary(ctx, req.Any(), &grpc.UnaryServerInfo{FullMethod: req.Spec().Procedure},
			func(ctx context.Context, _ any) (any, error) {
				r, err := next(ctx, req)
				if err != nil {
					return nil, err
				}
				res = r
				return r.Any(), nil
			})
		if err != nil {
			ce := connectError(err)
			copyMD(ce.Meta(), hs.header)
			copyMD(ce.Meta(), hs.trailer)
			return nil, ce
		}
		// A unary answer over HTTP has its trailers (xhub-node) as
		// headers: what curl shows and a JSON client reads.
		copyMD(res.Header(), hs.header)
		copyMD(res.Header(), hs.trailer)
		return res, nil
	}
}

func (b *bridge) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (b *bridge) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next // the streaming services below run the chain themselves
}

// runStream runs a bidirectional stream that came over HTTP through the
// gRPC stream interceptors, then handler.
func runStream[Req, Res any](ctx context.Context, b *bridge, s *connect.BidiStream[Req, Res], handler func(grpc.ServerStream) error) error {
	ss := &bidiStream[Req, Res]{ctx: grpcContext(ctx, s.RequestHeader()), s: s}
	err := b.stream(nil, ss, &grpc.StreamServerInfo{FullMethod: s.Spec().Procedure, IsClientStream: true, IsServerStream: true},
		func(_ any, ss grpc.ServerStream) error { return handler(ss) })
	if err != nil {
		return connectError(err)
	}
	return nil
}

// bidiStream is a Connect stream seen as a gRPC server stream.
type bidiStream[Req, Res any] struct {
	ctx context.Context
	s   *connect.BidiStream[Req, Res]
}

func (b *bidiStream[Req, Res]) Context() context.Context { return b.ctx }
func (b *bidiStream[Req, Res]) SetHeader(md metadata.MD) error {
	copyMD(b.s.ResponseHeader(), md)
	return nil
}
func (b *bidiStream[Req, Res]) SendHeader(md metadata.MD) error { return b.SetHeader(md) }
func (b *bidiStream[Req, Res]) SetTrailer(md metadata.MD)       { copyMD(b.s.ResponseTrailer(), md) }
func (b *bidiStream[Req, Res]) SendMsg(m any) error {
	res, ok := m.(*Res)
	if !ok {
		return status.Errorf(codes.Internal, "stream sends %T", m)
	}
	return b.s.Send(res)
}
func (b *bidiStream[Req, Res]) RecvMsg(m any) error {
	err := b.s.Conn().Receive(m)
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	return err
}

type connectExchange struct {
	*exchangeSvc
	b *bridge
}

func (c connectExchange) Subscribe(ctx context.Context, s *connect.BidiStream[xhubv1.SubscribeRequest, xhubv1.SubscribeResponse]) error {
	return runStream(ctx, c.b, s, func(ss grpc.ServerStream) error {
		return c.exchangeSvc.Subscribe(&grpc.GenericServerStream[xhubv1.SubscribeRequest, xhubv1.SubscribeResponse]{ServerStream: ss})
	})
}

type connectShares struct {
	*sharesSvc
	b *bridge
}

func (c connectShares) WatchInbox(ctx context.Context, req *xhubv1.WatchInboxRequest, s *connect.ServerStream[xhubv1.InboxEvent]) error {
	ss := &serverStream[xhubv1.InboxEvent]{ctx: grpcContext(ctx, http.Header{}), s: s}
	err := c.b.stream(nil, ss, &grpc.StreamServerInfo{FullMethod: xhubv1connect.SharesWatchInboxProcedure, IsServerStream: true},
		func(_ any, ss grpc.ServerStream) error {
			return c.sharesSvc.WatchInbox(req, &grpc.GenericServerStream[xhubv1.WatchInboxRequest, xhubv1.InboxEvent]{ServerStream: ss})
		})
	if err != nil {
		return connectError(err)
	}
	return nil
}

type connectAudit struct {
	*auditSvc
	b *bridge
}

func (c connectAudit) ExportAudit(ctx context.Context, req *xhubv1.ExportAuditRequest, s *connect.ServerStream[xhubv1.ExportAuditChunk]) error {
	ss := &serverStream[xhubv1.ExportAuditChunk]{ctx: grpcContext(ctx, http.Header{}), s: s}
	err := c.b.stream(nil, ss, &grpc.StreamServerInfo{FullMethod: xhubv1connect.AuditExportAuditProcedure, IsServerStream: true},
		func(_ any, ss grpc.ServerStream) error {
			return c.auditSvc.ExportAudit(req, &grpc.GenericServerStream[xhubv1.ExportAuditRequest, xhubv1.ExportAuditChunk]{ServerStream: ss})
		})
	if err != nil {
		return connectError(err)
	}
	return nil
}

// serverStream is a Connect server stream seen as a gRPC server stream
// (the one request is already read).
type serverStream[Res any] struct {
	ctx context.Context
	s   *connect.ServerStream[Res]
}

func (b *serverStream[Res]) Context() context.Context { return b.ctx }
func (b *serverStream[Res]) SetHeader(md metadata.MD) error {
	copyMD(b.s.ResponseHeader(), md)
	return nil
}
func (b *serverStream[Res]) SendHeader(md metadata.MD) error { return b.SetHeader(md) }
func (b *serverStream[Res]) SetTrailer(md metadata.MD)       { copyMD(b.s.ResponseTrailer(), md) }
func (b *serverStream[Res]) SendMsg(m any) error {
	res, ok := m.(*Res)
	if !ok {
		return status.Errorf(codes.Internal, "stream sends %T", m)
	}
	return b.s.Send(res)
}
func (b *serverStream[Res]) RecvMsg(any) error { return io.EOF }

type connectProvider struct {
	*providerSvc
	b *bridge
}

func (c connectProvider) Serve(ctx context.Context, s *connect.BidiStream[xhubv1.ProviderMessage, xhubv1.ProviderCall]) error {
	return runStream(ctx, c.b, s, func(ss grpc.ServerStream) error {
		return c.providerSvc.Serve(&grpc.GenericServerStream[xhubv1.ProviderMessage, xhubv1.ProviderCall]{ServerStream: ss})
	})
}

// connectError is err, a gRPC status, as a Connect error with the same
// code, message and details.
func connectError(err error) *connect.Error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	out := connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	for _, d := range st.Proto().GetDetails() {
		if ed, err := connect.NewErrorDetail(d); err == nil {
			out.AddDetail(ed)
		}
	}
	return out
}

var _ net.Addr = strAddr("") // peer.Peer.Addr takes a net.Addr
