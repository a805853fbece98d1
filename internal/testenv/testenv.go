// Package testenv starts complete hub nodes for tests: embedded NATS with
// JetStream, Badger in t.TempDir(), gRPC with mTLS on 127.0.0.1:0, and
// hands back clients for each role. Everything is stopped by t.Cleanup.
// Every end-to-end test uses it; none builds its own half-hub.
package testenv

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/hub"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// Env is one hub node under test.
type Env struct {
	t      testing.TB
	Dir    string
	Config hub.Config
	Node   *hub.Node
	Admin  *adapters.Client
}

// Option changes the node's configuration.
type Option func(*hub.Config)

// WithNATSListen opens the embedded NATS port (so a second node can join).
func WithNATSListen() Option { return func(c *hub.Config) { c.NATSListen = "127.0.0.1:0" } }

// WithNATSURL makes the node use an external NATS.
func WithNATSURL(url string) Option { return func(c *hub.Config) { c.NATSURL = url } }

// Logger returns a logger for tests: silent unless XHUB_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("XHUB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start starts a node in a fresh temp dir.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	return StartIn(t, t.TempDir(), opts...)
}

// StartIn starts a node on dir (which may hold an earlier node's state).
func StartIn(t testing.TB, dir string, opts ...Option) *Env {
	t.Helper()
	cfg := hub.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: Logger()}
	for _, o := range opts {
		o(&cfg)
	}
	e := &Env{t: t, Dir: dir, Config: cfg}
	e.start()
	t.Cleanup(e.Stop)
	return e
}

func (e *Env) start() {
	e.t.Helper()
	// Generous: a cluster forming on a busy machine (CI beside other
	// load) takes its time, and the node waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	n, err := hub.Start(ctx, e.Config)
	if err != nil {
		e.t.Fatalf("start hub: %v", err)
	}
	e.Node = n
	e.Admin = e.Dial(n.AdminCreds)
}

// StartTimeout bounds a node's start in tests.
const StartTimeout = 3 * time.Minute

// Stop stops the node (idempotent).
func (e *Env) Stop() {
	if e.Admin != nil {
		e.Admin.Close()
		e.Admin = nil
	}
	if e.Node != nil {
		e.Node.Close()
		e.Node = nil
	}
}

// Restart stops the node and starts it again on the same data dir, at a
// new address.
func (e *Env) Restart() {
	e.t.Helper()
	e.Stop()
	e.start()
}

// Addr is the node's gRPC address.
func (e *Env) Addr() string { return e.Node.Addr() }

// Dial connects with a creds file to this node.
func (e *Env) Dial(credsFile string) *adapters.Client {
	e.t.Helper()
	c, err := adapters.Dial(context.Background(), credsFile, adapters.WithHub(e.Node.Addr()))
	if err != nil {
		e.t.Fatalf("dial %s: %v", credsFile, err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// Dept registers a department if it is not registered yet.
func (e *Env) Dept(id string) {
	e.t.Helper()
	ctx := context.Background()
	_, err := e.Admin.AddDepartment(ctx, id, "Department "+id)
	if err != nil && !isExists(err) {
		e.t.Fatalf("add department %s: %v", id, err)
	}
}

// Creds issues a credential (registering the department if needed) and
// returns the path of its creds file.
func (e *Env) Creds(dept string, role vocab.Role, name string) string {
	e.t.Helper()
	e.Dept(dept)
	_, file, err := e.Admin.IssueCredential(context.Background(), vocab.Identity{Dept: catalog.DeptID(dept), Role: role, Name: name}, 30)
	if err != nil {
		e.t.Fatalf("issue %s/%s/%s: %v", dept, role, name, err)
	}
	path := filepath.Join(e.t.TempDir(), dept+"-"+string(role)+"-"+name+".creds")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// Officer returns a client for a new officer credential of dept.
func (e *Env) Officer(dept string) *adapters.Client {
	return e.Dial(e.Creds(dept, vocab.RoleOfficer, "officer"))
}

// System returns a client for a new system credential of dept.
func (e *Env) System(dept, name string) *adapters.Client {
	return e.Dial(e.Creds(dept, vocab.RoleSystem, name))
}

// CopyPKI copies this node's pki folder into dir/pki, as an operator does
// before a second node's first start.
func (e *Env) CopyPKI(dir string) {
	e.t.Helper()
	src := filepath.Join(e.Dir, "pki")
	dst := filepath.Join(dir, "pki")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		e.t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, ent.Name()), b, 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
}

// NATSURL is the embedded NATS URL with credentials (WithNATSListen).
func (e *Env) NATSURL() string {
	if e.Node.Embedded == nil || e.Node.Embedded.URL == "" {
		e.t.Fatal("node has no NATS port: start it WithNATSListen")
	}
	return e.Node.Embedded.URL
}

// WithFsyncAlways makes the embedded JetStream fsync every write.
func WithFsyncAlways() Option { return func(c *hub.Config) { c.FsyncAlways = true } }

// ForeignClient dials this node presenting the admin certificate of
// another hub (another CA), while trusting this node's server: the
// client a hub must refuse in the TLS handshake.
func (e *Env) ForeignClient() *adapters.Client {
	e.t.Helper()
	other := Start(e.t)
	foreign, err := vocab.LoadCreds(other.Node.AdminCreds)
	if err != nil {
		e.t.Fatal(err)
	}
	foreign.CA = e.Node.Authority.Cert
	c, err := adapters.DialCreds(context.Background(), foreign, adapters.WithHub(e.Addr()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// API is the hub's gRPC API over c's connection (identity, mTLS and all):
// the tests of the server call it directly, as a client in any language
// would, rather than through the SDK.
type API struct {
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

// RPC is the API over c's connection.
func RPC(c *adapters.Client) API {
	conn := c.Conn()
	return API{
		Departments: xhubv1.NewDepartmentsClient(conn),
		Credentials: xhubv1.NewCredentialsClient(conn),
		Schemas:     xhubv1.NewSchemasClient(conn),
		Catalog:     xhubv1.NewCatalogClient(conn),
		Shares:      xhubv1.NewSharesClient(conn),
		Ledger:      xhubv1.NewLedgerClient(conn),
		Exchange:    xhubv1.NewExchangeClient(conn),
		Provider:    xhubv1.NewProviderClient(conn),
		Audit:       xhubv1.NewAuditClient(conn),
	}
}

// URL is the node's address as an https URL (the HTTP API is on the same
// port as gRPC).
func (e *Env) URL() string { return "https://" + e.Node.Addr() }

// HTTP returns an HTTP client with a creds file's identity ("" for none:
// the hub's CA only), speaking HTTP/2 when h2, else HTTP/1.1.
func (e *Env) HTTP(credsFile string, h2 bool) *http.Client {
	e.t.Helper()
	path := credsFile
	if path == "" {
		path = e.Node.AdminCreds
	}
	c, err := vocab.LoadCreds(path)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := c.ClientTLS(e.Node.Addr())
	if credsFile == "" {
		cfg.Certificates = nil
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	var p http.Protocols
	if h2 {
		p.SetHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr.Protocols = &p
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
