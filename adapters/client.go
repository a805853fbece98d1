// Package adapters is the Go SDK for department systems and the home of
// the ready-made adapters (adapters/postgres, adapters/file). A Client
// dials a hub node over gRPC with mTLS from a *.creds file; the CLI uses
// the same Client, so what an integrator copies from here is what the hub's
// own tools run. Its API is in its own types: the data plane (Query,
// Publish, Subscribe, Serve; data.go), the control plane an officer or
// operator drives (departments, credentials, schemas, catalog, shares,
// audit, subscriptions, ledger entries; control.go) and ledger
// verification against a pinned key (ledger.go). It depends on the
// client-safe vocabulary (exchange/vocab), the proto package and gRPC
// only; Conn gives the raw gRPC API for anything it does not wrap.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/xhub-gov/xhub/exchange/vocab"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// Client is a connection to a hub node with one identity.
type Client struct {
	conn  *grpc.ClientConn
	creds *vocab.Creds
	addr  string

	departments xhubv1.DepartmentsClient
	credentials xhubv1.CredentialsClient
	schemas     xhubv1.SchemasClient
	catalog     xhubv1.CatalogClient
	shares      xhubv1.SharesClient
	ledger      xhubv1.LedgerClient
	exchange    xhubv1.ExchangeClient
	provider    xhubv1.ProviderClient
	audit       xhubv1.AuditClient
	nodes       xhubv1.NodesClient
	disputes    xhubv1.DisputesClient
}

// Option changes how Dial connects.
type Option func(*dialOptions) error

type dialOptions struct {
	hub string
}

// WithHub dials addr instead of the address in the creds file; several
// addresses, comma-separated, are tried in turn (see failover.go).
func WithHub(addr string) Option {
	return func(o *dialOptions) error {
		if addr == "" {
			return errors.New("adapters: WithHub: empty address")
		}
		o.hub = addr
		return nil
	}
}

// Dial connects with the credentials in credsFile.
func Dial(ctx context.Context, credsFile string, opts ...Option) (*Client, error) {
	creds, err := vocab.LoadCreds(credsFile)
	if err != nil {
		return nil, err
	}
	return DialCreds(ctx, creds, opts...)
}

// DialCreds connects with parsed credentials.
func DialCreds(_ context.Context, creds *vocab.Creds, opts ...Option) (*Client, error) {
	o := dialOptions{hub: creds.Hub}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.hub == "" {
		return nil, errors.New("no hub address: give --hub, set XHUB_HUB, or use a creds file with a hub: line")
	}
	if err := checkValidity(creds.Identity.URI(), creds.Leaf.NotBefore, creds.Leaf.NotAfter, time.Now()); err != nil {
		return nil, err
	}
	addrs := splitHubs(o.hub)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("hub address %q names no host:port", o.hub)
	}
	// Several addresses: the server name comes from each address.
	tlsCfg := creds.ClientTLS(addrs[0])
	if len(addrs) > 1 {
		tlsCfg.ServerName = ""
	}
	tgt, topts := target(addrs)
	dopts := append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)), grpc.WithChainUnaryInterceptor(failoverUnary())},
		refusalInterceptors(addrs[0], creds.ClientTLS(addrs[0]))...)
	conn, err := grpc.NewClient(tgt, append(dopts, topts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", o.hub, err)
	}
	return &Client{
		conn: conn, creds: creds, addr: o.hub,
		departments: xhubv1.NewDepartmentsClient(conn),
		credentials: xhubv1.NewCredentialsClient(conn),
		schemas:     xhubv1.NewSchemasClient(conn),
		catalog:     xhubv1.NewCatalogClient(conn),
		shares:      xhubv1.NewSharesClient(conn),
		disputes:    xhubv1.NewDisputesClient(conn),
		ledger:      xhubv1.NewLedgerClient(conn),
		exchange:    xhubv1.NewExchangeClient(conn),
		provider:    xhubv1.NewProviderClient(conn),
		audit:       xhubv1.NewAuditClient(conn),
		nodes:       xhubv1.NewNodesClient(conn),
	}, nil
}

// LedgerKey is the hub's ledger verifier key pinned in the creds file ("" if
// the file has none).
func (c *Client) LedgerKey() string { return c.creds.LedgerKey }

// Identity is who this client acts as.
func (c *Client) Identity() vocab.Identity { return c.creds.Identity }

// Addr is the hub address dialled.
func (c *Client) Addr() string { return c.addr }

// Hub is the hub address (or addresses, comma-separated) this client dials.
func (c *Client) Hub() string { return c.addr }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the client's gRPC connection, for the API's calls the SDK does
// not wrap (xhubv1.NewLedgerClient(c.Conn()) and the like): the same
// identity, mTLS and refusal handling.
func (c *Client) Conn() grpc.ClientConnInterface { return c.conn }

// HubVersion asks the node the client is connected to for its health and
// returns its name and build ("version (commit …) go… xhub.v1"), from the
// answer's trailer.
func (c *Client) HubVersion(ctx context.Context) (node, version, status string, err error) {
	var md metadata.MD
	r, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Trailer(&md))
	if err != nil {
		return "", "", "", err
	}
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return first("xhub-node"), first("xhub-version"), r.GetStatus().String(), nil
}
