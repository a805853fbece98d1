// Package adapters is the Go SDK for department systems and the home of
// the ready-made adapters (adapters/postgres, adapters/file). A Client
// dials a hub node over gRPC with mTLS from a *.creds file; the CLI uses
// the same Client, so what an integrator copies from here is what the hub's
// own tools run.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/xhub-gov/xhub/exchange/vocab"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// Client is a connection to a hub node with one identity.
type Client struct {
	conn  *grpc.ClientConn
	creds *vocab.Creds
	addr  string

	Departments xhubv1.DepartmentsClient
	Credentials xhubv1.CredentialsClient
	Schemas     xhubv1.SchemasClient
	Catalog     xhubv1.CatalogClient
	Shares      xhubv1.SharesClient
	Ledger      xhubv1.LedgerClient
	Exchange    xhubv1.ExchangeClient
	Provider    xhubv1.ProviderClient
	Audit       xhubv1.AuditClient
}

// Option changes how Dial connects.
type Option func(*dialOptions) error

type dialOptions struct {
	hub string
}

// WithHub dials addr instead of the address in the creds file.
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
	tlsCfg := creds.ClientTLS(o.hub)
	dopts := append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20))}, refusalInterceptors(o.hub, tlsCfg)...)
	conn, err := grpc.NewClient(o.hub, dopts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", o.hub, err)
	}
	return &Client{
		conn: conn, creds: creds, addr: o.hub,
		Departments: xhubv1.NewDepartmentsClient(conn),
		Credentials: xhubv1.NewCredentialsClient(conn),
		Schemas:     xhubv1.NewSchemasClient(conn),
		Catalog:     xhubv1.NewCatalogClient(conn),
		Shares:      xhubv1.NewSharesClient(conn),
		Ledger:      xhubv1.NewLedgerClient(conn),
		Exchange:    xhubv1.NewExchangeClient(conn),
		Provider:    xhubv1.NewProviderClient(conn),
		Audit:       xhubv1.NewAuditClient(conn),
	}, nil
}

// LedgerKey is the hub's ledger verifier key pinned in the creds file ("" if
// the file has none).
func (c *Client) LedgerKey() string { return c.creds.LedgerKey }

// Identity is who this client acts as.
func (c *Client) Identity() vocab.Identity { return c.creds.Identity }

// Addr is the hub address dialled.
func (c *Client) Addr() string { return c.addr }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// IssueCredential creates a key locally, has the hub sign it for the
// identity, and returns the bytes of a complete creds file. The private
// key never leaves this process.
func (c *Client) IssueCredential(ctx context.Context, id vocab.Identity, validDays int) (*xhubv1.IssueCredentialResponse, []byte, error) {
	keyPEM, csr, err := vocab.NewKey(id)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Credentials.IssueCredential(ctx, &xhubv1.IssueCredentialRequest{
		Dept: string(id.Dept), Role: string(id.Role), Name: id.Name, CsrDer: csr, ValidDays: int32(validDays),
	})
	if err != nil {
		return nil, nil, err
	}
	return resp, vocab.EncodeCreds(c.addr, resp.LedgerKey, resp.CertificatePem, keyPEM, resp.CaPem), nil
}
