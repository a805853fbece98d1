// Package api is the API layer of a hub node: it serves the xhub.v1
// services over native gRPC and, on the same TLS listener, over HTTP
// (Connect, gRPC-Web, JSON; see http.go and listen.go); it authenticates
// callers from their mTLS client certificates, authorises every method by
// role, translates between the xhub.v1 protobuf types and the domain
// packages, and maps domain errors to gRPC statuses with google.rpc
// details. It holds no rules of its own.
package api

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/dataplane"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/pki"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// Config configures the gRPC server.
type Config struct {
	CP        *exchange.ControlPlane // required
	DP        *dataplane.Plane       // required
	Authority *pki.Authority         // required
	ServerTLS tls.Certificate        // required
	Logger    *slog.Logger           // zero: discard
	Now       func() time.Time       // zero: time.Now
	Join      JoinConfig             // what a joining node is told
	Node      string                 // this node's name (in answers' trailers)
	JS        jetstream.JetStream    // webhook delivery records (may be nil: none)
	// Redeliver bounds a department's webhook redeliveries (zero values:
	// webhook.DefaultRedeliverMax in each webhook.DefaultRedeliverWindow).
	Redeliver RedeliverLimits
	Conn      ConnLimits    // connections, timeouts, message size
	Nodes     NodeDirectory // the deployment's nodes (may be nil: node list shows none, creds list the dialled address)
}

// RedeliverLimits: a department queues at most Max webhook deliveries
// again in each Window, across the deployment.
type RedeliverLimits struct {
	Max    int
	Window time.Duration
}

// NodeDirectory knows the deployment's hub nodes (*hub.Node).
type NodeDirectory interface {
	// Beats are every node's last heartbeat.
	Beats(ctx context.Context) ([]bus.NodeBeat, error)
	// HubAddrs are the addresses a creds file issued here lists.
	HubAddrs(ctx context.Context) []string
	// ForgetBeat removes a node's last heartbeat.
	ForgetBeat(ctx context.Context, name string) error
}

// MaxStreamsPerConn bounds the gRPC streams open at once on one
// connection.
const MaxStreamsPerConn = 1024

// Server is a hub node's API server: native gRPC and, on the same
// listener, the same services over HTTP (Connect, gRPC-Web, JSON).
type Server struct {
	*grpc.Server
	Health *health.Server
	drain  context.CancelFunc
	watch  *handshakeWatch
	calls  *grpcprom.ServerMetrics
	router *router
	cp     *exchange.ControlPlane
}

// Collectors are the server's Prometheus metrics.
func (s *Server) Collectors() []prometheus.Collector {
	return append([]prometheus.Collector{s.watch.counter, s.calls}, s.router.m.collectors()...)
}

// Drain ends the long-lived streams (subscriptions, providers) with
// UNAVAILABLE so that GracefulStop does not wait on them; clients
// reconnect to another node. Unary calls in flight finish.
func (s *Server) Drain() {
	s.Health.Shutdown()
	s.drain()
}

// Serve accepts connections on lis and serves them until the server
// stops: each, after its TLS handshake, goes to the native gRPC server or
// to the HTTP handler (see router).
func (s *Server) Serve(lis net.Listener) error {
	return s.router.serve(lis, s.Server.Serve)
}

// GracefulStop stops accepting, lets calls in flight finish (gRPC and
// HTTP), then returns.
func (s *Server) GracefulStop() {
	s.router.close(false)
	done := make(chan struct{})
	go func() {
		s.router.shutdown(context.Background(), false)
		close(done)
	}()
	s.Server.GracefulStop()
	<-done
}

// Stop closes every connection at once.
func (s *Server) Stop() {
	s.router.close(true)
	s.router.shutdown(context.Background(), true)
	s.Server.Stop()
}

// services are the xhub.v1 service implementations, served over both
// native gRPC and HTTP.
type services struct {
	departments *departments
	credentials *credentialsSvc
	schemas     *schemasSvc
	catalog     *catalogSvc
	ledger      *ledgerSvc
	shares      *sharesSvc
	exchange    *exchangeSvc
	nodes       *nodesSvc
	provider    *providerSvc
	audit       *auditSvc
	disputes    *disputesSvc
}

// New builds the server with every xhub.v1 service, health and reflection.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Conn.validate()
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cfg.ServerTLS},
		// A certificate, when given, must be the hub's (a foreign or
		// expired one is refused in the handshake); without one, only
		// the open methods answer (see openMethod), and any other call
		// is refused before its message is read (see gate).
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  cfg.Authority.Pool(),
		NextProtos: []string{"h2", "http/1.1"},
	}
	if cfg.Node == "" {
		cfg.Node = "xhub"
	}
	auth := &authenticator{cp: cfg.CP, now: cfg.Now, node: cfg.Node}
	watch := newHandshakeWatch(cfg.Logger, time.Now)
	// Calls by service, method and code, with handling-time histograms
	// (grpc_server_handled_total, grpc_server_handling_seconds), over
	// native gRPC and HTTP alike.
	calls := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10})))
	unary := []grpc.UnaryServerInterceptor{calls.UnaryServerInterceptor(), recoverUnary(cfg.Logger), auth.unary}
	stream := []grpc.StreamServerInterceptor{calls.StreamServerInterceptor(), auth.stream}
	s := &Server{watch: watch, calls: calls, cp: cfg.CP}
	s.router = newRouter(tlsCfg, watch, cfg.Conn, cfg.Logger)
	gs := grpc.NewServer(
		grpc.Creds(routedCreds{}),
		// Once per call, on its headers: a call with no verified client
		// certificate is refused before its message is read.
		grpc.InTapHandle(s.router.tap),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(cfg.Conn.MaxMessageBytes),
		// Streams one connection may hold open at once (grpc-go's
		// default has no bound); clients queue calls beyond it.
		grpc.MaxConcurrentStreams(MaxStreamsPerConn),
		grpc.MaxHeaderListSize(64<<10), // as the HTTP side (http.Server.MaxHeaderBytes)
		grpc.KeepaliveParams(keepalive.ServerParameters{
			// A connection with no call open is closed (GOAWAY) after
			// the idle timeout; streams keep theirs open.
			MaxConnectionIdle: cfg.Conn.IdleTimeout,
			// A connection silent this long is pinged; one that does
			// not answer within Timeout is closed.
			Time:    cfg.Conn.IdleTimeout,
			Timeout: 20 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	h := health.NewServer()
	healthpb.RegisterHealthServer(gs, h)
	reflection.Register(gs)
	draining, drain := context.WithCancel(context.Background())
	base := &base{cp: cfg.CP, log: cfg.Logger, draining: draining.Done()}
	svcs := services{
		departments: &departments{base: base, ca: cfg.Authority, js: cfg.JS, redeliver: cfg.Redeliver},
		credentials: &credentialsSvc{base: base, ca: cfg.Authority, nodes: cfg.Nodes},
		schemas:     &schemasSvc{base: base},
		catalog:     &catalogSvc{base: base},
		ledger:      &ledgerSvc{base: base, ca: cfg.Authority},
		shares:      &sharesSvc{base: base, now: cfg.Now},
		exchange:    &exchangeSvc{base: base, dp: cfg.DP},
		nodes:       &nodesSvc{base: base, ca: cfg.Authority, join: cfg.Join, now: cfg.Now, dir: cfg.Nodes},
		provider:    &providerSvc{base: base, dp: cfg.DP, maxMsg: cfg.Conn.MaxMessageBytes},
		audit:       &auditSvc{base: base, dp: cfg.DP, ca: cfg.Authority, now: cfg.Now},
		disputes:    &disputesSvc{base: base, now: cfg.Now},
	}
	xhubv1.RegisterDepartmentsServer(gs, svcs.departments)
	xhubv1.RegisterCredentialsServer(gs, svcs.credentials)
	xhubv1.RegisterSchemasServer(gs, svcs.schemas)
	xhubv1.RegisterCatalogServer(gs, svcs.catalog)
	xhubv1.RegisterLedgerServer(gs, svcs.ledger)
	xhubv1.RegisterSharesServer(gs, svcs.shares)
	xhubv1.RegisterExchangeServer(gs, svcs.exchange)
	xhubv1.RegisterNodesServer(gs, svcs.nodes)
	xhubv1.RegisterDisputesServer(gs, svcs.disputes)
	calls.InitializeMetrics(gs)
	xhubv1.RegisterProviderServer(gs, svcs.provider)
	xhubv1.RegisterAuditServer(gs, svcs.audit)
	if cfg.CP.Integrity() != nil {
		h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	} else {
		h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	}
	s.Server, s.Health, s.drain = gs, h, drain
	b := &bridge{unary: chainUnary(unary), stream: chainStream(stream)}
	s.router.setHandler(s.httpHandler(svcs, b, cfg.Conn))
	return s
}

// chainUnary is interceptors as one, the first outermost (as
// grpc.ChainUnaryInterceptor runs them).
func chainUnary(is []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		h := handler
		for i := len(is) - 1; i >= 0; i-- {
			next, in := h, is[i]
			h = func(ctx context.Context, req any) (any, error) { return in(ctx, req, info, next) }
		}
		return h(ctx, req)
	}
}

// chainStream is interceptors as one, the first outermost.
func chainStream(is []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		h := handler
		for i := len(is) - 1; i >= 0; i-- {
			next, in := h, is[i]
			h = func(srv any, ss grpc.ServerStream) error { return in(srv, ss, info, next) }
		}
		return h(srv, ss)
	}
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in handler", "method", info.FullMethod, "panic", r)
				err = toStatus(errInternal)
			}
		}()
		return handler(ctx, req)
	}
}

type internalError struct{}

func (internalError) Error() string { return "internal error" }

var errInternal = internalError{}

type base struct {
	cp       *exchange.ControlPlane
	log      *slog.Logger
	draining <-chan struct{} // closed when the node shuts down
}

// wait makes a read see the caller's own writes: it waits, bounded, until
// min_seq is applied on this node.
func (b *base) wait(ctx context.Context, minSeq uint64) error {
	return toStatus(b.cp.WaitApplied(ctx, minSeq))
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func encodeToken(s string) string {
	if s == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func decodeToken(t string) (string, error) {
	if t == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) > 512 {
		return "", invalid("page_token", "is not a token this hub issued")
	}
	return string(b), nil
}

func pageSize(n int32) (int, error) {
	size, err := exchange.PageSize(int(n))
	return size, toStatus(err)
}

// page reads the common list parameters: it waits for min_seq, then checks
// the page size and decodes the page token.
func (b *base) page(ctx context.Context, minSeq uint64, size int32, token string) (int, string, error) {
	if err := b.wait(ctx, minSeq); err != nil {
		return 0, "", err
	}
	n, err := pageSize(size)
	if err != nil {
		return 0, "", err
	}
	after, err := decodeToken(token)
	return n, after, err
}
