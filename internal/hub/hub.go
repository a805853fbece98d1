// Package hub owns a hub node's lifecycle: it starts, in order, the PKI,
// NATS (embedded or external), the JetStream streams, the Badger store,
// the control plane, the gRPC server and the metrics endpoint, and stops
// them in reverse. `xhub serve`, `xhub demo` and the test harness all start
// nodes through it.
package hub

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/dataplane"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/api"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/natsauth"
	"github.com/xhub-gov/xhub/internal/pki"
	"github.com/xhub-gov/xhub/internal/secretfile"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/internal/webhook"
)

// The control plane runs on the JetStream log.
var (
	_ exchange.Log            = (*bus.LedgerLog)(nil)
	_ exchange.EventPublisher = bus.Events{}
)

// Config configures a node. Zero values are documented defaults.
type Config struct {
	// DataDir holds pki/, nats/, badger/ and admin.creds (required).
	DataDir string
	// Listen is the gRPC address. Zero: 127.0.0.1:7443. Port 0 picks one.
	Listen string
	// NATSListen opens the embedded server's client port, with
	// authentication. Zero: no port (in-process only).
	NATSListen string
	// NATSURL uses an external NATS instead of the embedded server.
	NATSURL string
	// NATSCalloutKey, with NATSURL, makes this node the auth callout
	// service of the external cluster for departments' systems: the
	// account key seed (made there if absent) whose public key the
	// servers' auth_callout.issuer names. NATSSystemURL is then a user of
	// the cluster's system account, to close connections whose access
	// ended. (The embedded server needs neither: --nats-listen.)
	NATSCalloutKey string
	NATSSystemURL  string
	// Replicas of each stream (external clusters). Zero: 1.
	Replicas int
	// MetricsListen serves Prometheus /metrics. Zero: off.
	MetricsListen string
	// Pprof also serves Go's /debug/pprof/ profiles on MetricsListen.
	Pprof bool
	// FsyncAlways makes the embedded JetStream fsync every write.
	FsyncAlways bool
	// RebuildViews moves DataDir/badger aside and rebuilds the views by
	// replaying the log (after a node refused to start because its views
	// do not match its log).
	RebuildViews bool
	// Name is this node's name in logs, NATS and node list: 1 to 64
	// letters, digits, '-', '_' or '.' (not first or last). Each node of a
	// deployment needs its own. Zero: "xhub".
	Name string
	// Advertise are the host:port clients dial this node by (ParseAdvertise):
	// they go into its server certificate, beside localhost, loopback and
	// the machine's name, and into every creds file any node issues, with
	// the other nodes' (so a creds file lists every node). Zero: the
	// listen address (an unspecified host as localhost).
	Advertise []string
	// HeartbeatInterval is how often the node stores its heartbeat (node
	// list: up when heard from within three intervals). Zero: 10s.
	HeartbeatInterval time.Duration
	// CredsNodesWithin: a creds file lists the addresses of the nodes
	// heard from within this long (a node down for maintenance still
	// listed; one removed, or gone for longer, not). Zero: an hour, or
	// three heartbeat intervals if longer. At least three intervals, at
	// most a week (when heartbeats are forgotten).
	CredsNodesWithin time.Duration
	// AuditRetention is how long audit entries are kept (zero: 180
	// days); AuditMaxBytes bounds the audit stream, oldest entries going
	// first (zero: half of ControlReserve; with NATSURL, what the stream
	// has, else no bound).
	AuditRetention time.Duration
	AuditMaxBytes  int64
	// Store bounds what JetStream holds, so that no department's data
	// can stop the control plane (see storeBounds). With NATSURL, a
	// bound not given is what the deployment's streams already have (the
	// first node's), else its default.
	Store StoreBounds
	// Join is a join token (xhub node token): on a data dir without a
	// pki folder the node joins the deployment through it, receiving the
	// CA and ledger key, the replicas, and the NATS URL only if neither
	// NATSURL nor NATSListen is set here. Ignored once the node has
	// joined, so the same command restarts it. (xhub serve takes it from
	// a file or the environment, never from its command line.)
	Join string
	// ResponseDays, MaxGrantDays, SweepInterval: see exchange.Config;
	// SweepInterval is also the data plane's retention sweep
	// (dataplane.Config.RetentionSweep).
	ResponseDays int
	// WebhookAllowPrivate lets departments' webhooks reach addresses that
	// are not globally routable (off: only public unicast, webhook.CheckPublic).
	WebhookAllowPrivate bool
	// WebhookBackoff: the waits before retries, len+1 attempts in all,
	// on whichever nodes (zero: webhook.DefaultBackoff, 0.5s to 8s).
	WebhookBackoff []time.Duration
	// WebhookTimeout bounds one attempt (zero: 5s); a node that dies
	// during one leaves the task to another node after it and 10s more.
	WebhookTimeout time.Duration
	// WebhookConnectTimeout bounds the connecting of one attempt (zero:
	// 2s, or WebhookTimeout if less); at most WebhookTimeout.
	WebhookConnectTimeout time.Duration
	// WebhookWorkers bounds the attempts this node makes at once (zero:
	// 16); WebhookPerDept those for one department (zero: a quarter of
	// the workers), so that a receiver that hangs holds only its share.
	WebhookWorkers, WebhookPerDept int
	// WebhookScan is how often a node looks for tasks another node
	// queued (zero: 1s).
	WebhookScan time.Duration
	// WebhookRedeliverMax deliveries a department may queue again in
	// each WebhookRedeliverWindow, across the deployment (zero:
	// webhook.DefaultRedeliverMax, 100, and DefaultRedeliverWindow, 1m).
	WebhookRedeliverMax    int
	WebhookRedeliverWindow time.Duration
	// WebhookQueue bounds the queue of webhook deliveries (zero values:
	// bus.WebhookQueueLimits's defaults, 1000 per department and source
	// department, 64 MiB, 24h).
	WebhookQueue bus.WebhookQueueLimits
	// NoWebhookDispatch: this node posts no webhooks (it has no route to
	// the departments' receivers); the other nodes post them.
	NoWebhookDispatch bool
	// DisputeDays: working days an owner has to answer a data dispute
	// (exchange.Config.DisputeDays).
	DisputeDays   int
	MaxGrantDays  int
	SweepInterval time.Duration
	// SubscriptionSweep is how often, besides each entry that ends
	// access, the node removes durable subscriptions whose grant ended
	// or whose maker's credentials are all revoked. Zero: a minute
	// (dataplane.DefaultSubscriptionSweep).
	SubscriptionSweep time.Duration
	// SubscriptionRedelivery bounds how long records a node delivered to
	// a durable subscriber, and that were not acknowledged, wait to be
	// delivered again (on any node) once that node is gone. Zero: 10s
	// (dataplane.Config.SubscriptionRedelivery).
	SubscriptionRedelivery time.Duration
	// Limits bound what one department can make the node hold; zero
	// values are the defaults of exchange.Config and dataplane.Config.
	Limits Limits
	// Conn bounds what any client, before its certificate is checked,
	// can make the node hold on the API port: connections per address
	// and in total, handshake, idle and read timeouts, message size
	// (zero values: api.ConnLimits's defaults; MaxMessageBytes: what one
	// NATS message carries plus api.MessageFraming).
	Conn api.ConnLimits
	// WrapListener, when set, wraps the API listener (tests: faults and
	// byte counts).
	WrapListener func(net.Listener) net.Listener
	// Now is the clock (tests). Zero: time.Now.
	Now func() time.Time
	// Logger: zero discards.
	Logger *slog.Logger
}

// StoreBounds bound the JetStream store. Zero values are defaults.
type StoreBounds struct {
	// MaxBytes is the embedded server's store, every stream together
	// (zero: nats-server's default, 75% of the disk's free space at
	// start; ignored with NATSURL).
	MaxBytes int64
	// ControlReserve is room in the store that XHUB_DATA never takes:
	// the ledger's, the audit log's (half of it, unless AuditMaxBytes
	// says) and the webhook records'. Zero: a tenth of the store, at
	// least 256 MiB and at most half of it.
	ControlReserve int64
	// DataMaxBytes bounds XHUB_DATA, all published batches together; a
	// full stream refuses new batches. Zero: the store less
	// ControlReserve (with NATSURL and no stream yet: no bound, logged).
	DataMaxBytes int64
	// DeptQuota bounds what one department's datasets hold in
	// XHUB_DATA. Zero: a quarter of DataMaxBytes (10 GiB without one).
	DeptQuota int64
	// DatasetQuota bounds what one dataset holds. Zero: only its
	// department's quota.
	DatasetQuota int64
	// DataRetention is how long batches of a dataset that sets no
	// retention of its own are kept. Zero: 365 days.
	DataRetention time.Duration
	// DeptLedgerBytes bounds the bytes of ledger entries one
	// department's officers and systems may append, over the ledger's
	// life (exchange.Config.DeptLedgerBytes), so that no department
	// takes the ledger's room in ControlReserve. Zero: an eighth of
	// ControlReserve, at most 32 MiB (with NATSURL: 32 MiB).
	DeptLedgerBytes int64
}

// Defaults of StoreBounds.
const (
	DefaultDataRetention = 365 * 24 * time.Hour
	minControlReserve    = 256 << 20
	defaultDeptQuota     = 10 << 30 // without a data bound
	minLedgerRoom        = 64 << 20 // what the ledger keeps at the least (an eighth of a smaller store)
)

// Limits are the per-department bounds of a node (see the README's
// security section). Zero values are defaults.
type Limits struct {
	MaxDurableSubscriptions int           // durable subscriptions per department (32)
	SubscriptionIdle        time.Duration // a subscription with no subscriber is deleted after (7 days)
	MaxOpenSubscriptions    int           // subscriptions open per department on one node (64)
	MaxProviderStreams      int           // provider streams open per department on one node (16)
	MaxPendingRequests      int           // share requests pending per department (100)
	MaxRecordBytes          int           // one record (1 MiB)
	MaxBatchBytes           int           // one published batch, under NATS's max payload (4 MiB)
	QueryTimeout            time.Duration // a query's wait for the provider's answer (10s)
	MaxPendingCalls         int           // unanswered calls one provider stream holds (1024)
	ValidationSteps         int64         // schema nodes entered validating one batch or one query's answer (2^24)
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("hub: --data-dir is required")
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7443"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Name == "" {
		c.Name = "xhub"
	}
	if !bus.ValidNodeName(c.Name) {
		return fmt.Errorf("hub: --name %q: 1 to 64 letters, digits, '-', '_' or '.' (not first or last, not two in a row)", c.Name)
	}
	if len(c.Advertise) > MaxAdvertise {
		return fmt.Errorf("hub: --advertise: more than %d addresses", MaxAdvertise)
	}
	for _, a := range c.Advertise {
		if err := checkAdvertised(a); err != nil {
			return fmt.Errorf("hub: %w", err)
		}
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.HeartbeatInterval < 100*time.Millisecond || c.HeartbeatInterval > time.Hour {
		return fmt.Errorf("hub: --heartbeat-interval %s: from 100ms to 1h", c.HeartbeatInterval)
	}
	if c.CredsNodesWithin == 0 {
		c.CredsNodesWithin = max(time.Hour, 3*c.HeartbeatInterval)
	}
	if c.CredsNodesWithin < 3*c.HeartbeatInterval || c.CredsNodesWithin > bus.NodesMaxAge {
		return fmt.Errorf("hub: --creds-nodes-within %s: from three heartbeat intervals (%s) to %s", c.CredsNodesWithin, 3*c.HeartbeatInterval, bus.NodesMaxAge)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NATSURL != "" && c.NATSListen != "" {
		return errors.New("hub: --nats-listen applies to the embedded server; it cannot be used with --nats-url")
	}
	if (c.NATSCalloutKey != "" || c.NATSSystemURL != "") && c.NATSURL == "" {
		return errors.New("hub: --nats-callout-key and --nats-system-url apply to an external cluster (--nats-url); the embedded server's port is --nats-listen")
	}
	if (c.NATSCalloutKey == "") != (c.NATSSystemURL == "") {
		return errors.New("hub: --nats-callout-key and --nats-system-url go together: the callout decides connections, the system account closes them when access ends")
	}
	for _, b := range c.WebhookBackoff {
		if b <= 0 || b > 24*time.Hour {
			return fmt.Errorf("hub: --webhook-backoff %v: each wait is more than 0 and at most 24h", c.WebhookBackoff)
		}
	}
	if len(c.WebhookBackoff) > 20 {
		return fmt.Errorf("hub: --webhook-backoff: %d waits, at most 20", len(c.WebhookBackoff))
	}
	// Each is named alone: the operator sees which of them was wrong.
	for _, f := range []struct {
		name     string
		value    any
		negative bool
	}{
		{"--webhook-queue-per-source", c.WebhookQueue.PerSource, c.WebhookQueue.PerSource < 0},
		{"--webhook-queue-max-bytes", c.WebhookQueue.MaxBytes, c.WebhookQueue.MaxBytes < 0},
		{"--webhook-queue-max-age", c.WebhookQueue.MaxAge, c.WebhookQueue.MaxAge < 0},
		{"--webhook-timeout", c.WebhookTimeout, c.WebhookTimeout < 0},
		{"--webhook-connect-timeout", c.WebhookConnectTimeout, c.WebhookConnectTimeout < 0},
		{"--webhook-workers", c.WebhookWorkers, c.WebhookWorkers < 0},
		{"--webhook-per-dept", c.WebhookPerDept, c.WebhookPerDept < 0},
		{"--webhook-redeliver-max", c.WebhookRedeliverMax, c.WebhookRedeliverMax < 0},
		{"--webhook-redeliver-window", c.WebhookRedeliverWindow, c.WebhookRedeliverWindow < 0},
		{"Config.WebhookScan", c.WebhookScan, c.WebhookScan < 0}, // no flag: tests set it
	} {
		if f.negative {
			return fmt.Errorf("hub: %s %v: at least 0 (0: the default)", f.name, f.value)
		}
	}
	if c.WebhookWorkers > 1024 {
		return fmt.Errorf("hub: --webhook-workers %d: at most 1024", c.WebhookWorkers)
	}
	if w := cmp.Or(c.WebhookWorkers, 16); c.WebhookPerDept > w {
		return fmt.Errorf("hub: --webhook-per-dept %d is more than --webhook-workers %d: it bounds one department's share of them", c.WebhookPerDept, w)
	}
	if t := cmp.Or(c.WebhookTimeout, 5*time.Second); c.WebhookConnectTimeout > t {
		return fmt.Errorf("hub: --webhook-connect-timeout %s is more than --webhook-timeout %s: connecting is part of the attempt", c.WebhookConnectTimeout, t)
	}
	if q := c.WebhookQueue.WithDefaults(); q.MaxAge < time.Minute {
		return fmt.Errorf("hub: --webhook-queue-max-age %s: at least 1m", q.MaxAge)
	}
	return nil
}

// Node is a running hub node.
type Node struct {
	cfg       Config
	Authority *pki.Authority
	Embedded  *bus.Embedded // nil with an external NATS
	NC        *nats.Conn
	JS        jetstream.JetStream
	Store     *store.Store
	CP        *exchange.ControlPlane
	DP        *dataplane.Plane
	GRPC      *api.Server
	// Integrators authorises departments' systems on the embedded NATS
	// port (nil without --nats-listen).
	Integrators *natsauth.Service
	webhooks    *webhook.Dispatcher
	sysNC       *nats.Conn // the system account's, with an external cluster's callout
	lis         net.Listener
	metrics     *http.Server
	// metricsAddr is where /metrics is served ("" when off).
	metricsAddr string

	// AdminCreds is the path of this data dir's admin credentials.
	AdminCreds string

	// The supervisor: every long-lived part runs in group; the first to
	// fail stops the node with its reason.
	group    *errgroup.Group
	stopping chan struct{} // closed by Close: parts ending now are not failing
	done     chan struct{} // closed when the node has stopped
	ops      *opsMetrics   // what an operator pages on (opsmetrics.go)
	failMu   sync.Mutex
	failure  error

	joined bool   // this start joined the deployment
	unlock func() // releases the data dir's lock (nil until taken)
	pinned bool   // the log may pin this node's CA (Init passed or its outcome is unknown)

	closeOnce sync.Once
}

// Start starts a node; on error everything started so far is stopped.
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, group: &errgroup.Group{}, stopping: make(chan struct{}), done: make(chan struct{})}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	log := cfg.Logger
	// A data dir another process serves is refused before anything
	// starts, a port included.
	if _, statErr := os.Stat(cfg.DataDir); statErr == nil {
		if n.unlock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	// Bind first: a port in use fails the start before anything is
	// written, the data directory included. And a first start that fails
	// leaves nothing half-made.
	if n.lis, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("hub: listen %s: %w", cfg.Listen, err)
	}
	var metricsLis net.Listener
	if cfg.MetricsListen != "" {
		if metricsLis, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, fmt.Errorf("hub: metrics listen %s: %w", cfg.MetricsListen, err)
		}
		defer func() {
			if err != nil {
				metricsLis.Close()
			}
		}()
	}
	if cfg.NATSListen != "" {
		// The embedded server binds later and, on a port in use, would
		// only time out: try the port now, before anything is written.
		if _, port, _ := net.SplitHostPort(cfg.NATSListen); port != "0" {
			l, err := net.Listen("tcp", cfg.NATSListen)
			if err != nil {
				return nil, fmt.Errorf("hub: --nats-listen %s: %w", cfg.NATSListen, err)
			}
			l.Close()
		}
	}
	_, statErr := os.Stat(cfg.DataDir)
	fresh := os.IsNotExist(statErr) // this start makes the data dir
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if n.unlock == nil {
		if n.unlock, err = lockDataDir(cfg.DataDir); err != nil {
			if fresh && !errors.Is(err, ErrDataDirInUse) {
				_ = os.Remove(cfg.DataDir)
			} // in use: another start took the new dir, all in it is its own
			return nil, err
		}
	}
	if _, statErr := os.Stat(filepath.Join(cfg.DataDir, "pki")); fresh || os.IsNotExist(statErr) {
		defer func() {
			if err != nil {
				n.undoFirstStart(fresh)
			}
		}()
	}
	if cfg.RebuildViews {
		if err := moveAside(filepath.Join(cfg.DataDir, "badger"), log); err != nil {
			return nil, err
		}
	}
	pkiDir := filepath.Join(cfg.DataDir, "pki")
	if _, statErr := os.Stat(filepath.Join(pkiDir, "ca.crt")); cfg.Join != "" && os.IsNotExist(statErr) {
		// The NATS URL (with its password) is asked for only by a node
		// that will use it: one given no NATS of its own (below).
		j, err := join(ctx, cfg.Join, cfg.Name, pkiDir, cfg.NATSURL == "" && cfg.NATSListen == "", log)
		if err != nil {
			return nil, err
		}
		n.joined = true // the token is spent: keep pki/ whatever happens next
		if err := j.save(cfg.DataDir); err != nil {
			return nil, err
		}
	} else if cfg.Join != "" {
		log.Info("already joined: the join token is not used again")
	}
	if j, ok, err := loadJoined(cfg.DataDir); err != nil {
		return nil, err
	} else if ok {
		if cfg.NATSURL == "" && cfg.NATSListen == "" {
			if j.NATSURL == "" {
				return nil, errors.New("hub: joined, but without a NATS URL (it was given its own NATS when it joined, or the node that admitted it runs NATS without a client port): give --nats-url")
			}
			cfg.NATSURL, n.cfg.NATSURL = j.NATSURL, j.NATSURL
		}
		if cfg.Replicas <= 1 && j.Replicas > 1 {
			cfg.Replicas, n.cfg.Replicas = j.Replicas, j.Replicas
		}
	}
	if n.Authority, err = pki.LoadOrCreate(pkiDir); err != nil {
		return nil, err
	}

	// The views are opened before NATS starts: Badger's own lock on its
	// directory is a second refusal of a second process (the only one
	// where flock is not available) before it touches the store's streams.
	if n.Store, err = store.Open(filepath.Join(cfg.DataDir, "badger"), log); err != nil {
		return nil, err
	}

	var issuer nkeys.KeyPair
	if cfg.NATSCalloutKey != "" {
		kp, created, err := natsauth.LoadOrCreateIssuer(cfg.NATSCalloutKey)
		if err != nil {
			return nil, err
		}
		pub, _ := kp.PublicKey()
		if created {
			log.Warn("made the NATS auth callout key: name its public key in every NATS server's authorization { auth_callout { issuer } }", "file", cfg.NATSCalloutKey, "issuer", pub)
		}
		issuer = kp
		if n.sysNC, err = nats.Connect(cfg.NATSSystemURL, nats.Name(cfg.Name+"-system"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
			nats.ReconnectWait(500*time.Millisecond)); err != nil {
			return nil, fmt.Errorf("hub: --nats-system-url: %w", err)
		}
	}
	if cfg.NATSURL == "" {
		ecfg := bus.EmbeddedConfig{
			Dir: filepath.Join(cfg.DataDir, "nats"), Listen: cfg.NATSListen, SyncAlways: cfg.FsyncAlways, Name: cfg.Name, Log: log,
			MaxStore: cfg.Store.MaxBytes,
		}
		if cfg.NATSListen != "" {
			// Departments' systems read their granted records here
			// with the certificate the hub issued them.
			if ecfg.TLS, issuer, err = n.integratorTLS(cfg.NATSListen); err != nil {
				return nil, err
			}
			pub, _ := issuer.PublicKey()
			ecfg.CalloutIssuer = pub
		}
		n.Embedded, err = bus.StartEmbedded(ecfg)
		if err != nil {
			return nil, err
		}
		n.NC, err = n.Embedded.Connect(cfg.Name)
	} else {
		// A cluster that is still forming is waited for (EnsureStreams
		// retries until JetStream answers), not a reason to exit.
		n.NC, err = nats.Connect(cfg.NATSURL, nats.Name(cfg.Name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
			nats.ReconnectWait(500*time.Millisecond), nats.ReconnectJitter(250*time.Millisecond, time.Second))
	}
	if err != nil {
		return nil, fmt.Errorf("hub: connect to NATS: %w", err)
	}
	if n.JS, err = jetstream.New(n.NC); err != nil {
		return nil, fmt.Errorf("hub: jetstream: %w", err)
	}
	data, auditMax, deptLedger, err := n.storeBounds(ctx)
	if err != nil {
		return nil, err
	}
	if err := bus.EnsureStreams(ctx, n.JS, []jetstream.StreamConfig{bus.Ledger(cfg.Replicas), bus.Data(cfg.Replicas, data), bus.Audit(cfg.Replicas, cfg.AuditRetention, auditMax), bus.Webhooks(cfg.Replicas), bus.WebhookQueue(cfg.Replicas, n.cfg.WebhookQueue), bus.Nodes(cfg.Replicas)}, log); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}

	if n.CP, err = exchange.Open(ctx, exchange.Config{
		Store: n.Store, Log: bus.NewLedgerLog(n.JS, cfg.Replicas), Logger: log.With("component", "controlplane"),
		Now: cfg.Now, ResponseDays: cfg.ResponseDays, DisputeDays: cfg.DisputeDays, MaxGrantDays: cfg.MaxGrantDays, SweepInterval: cfg.SweepInterval, Events: bus.Events{NC: n.NC},
		MaxPendingRequests: cfg.Limits.MaxPendingRequests, DeptLedgerBytes: deptLedger,
	}); err != nil {
		return nil, err
	}
	degraded := n.CP.Integrity()
	if degraded == nil {
		err := n.CP.Init(ctx, exchange.HubInit{CASHA256: n.Authority.Fingerprint(), VerifierKey: n.Authority.VerifierKey})
		if !exchange.IsNotTheHub(err) {
			// From here the log may pin this CA (an append whose outcome
			// was not learnt included): a first start that fails now keeps
			// pki/, or no node would hold the CA the ledger names and
			// every later start would be refused. Kept with a log that
			// names no CA, it is used when the next start writes hub.init.
			n.pinned = true
		}
		if err != nil {
			return nil, err
		}
	}
	serverCert, err := n.Authority.ServerCert(n.certHosts(cfg.Listen))
	if err != nil {
		return nil, err
	}
	if n.DP, err = dataplane.New(dataplane.Config{
		CP: n.CP, NC: n.NC, JS: n.JS, Now: cfg.Now, Logger: log.With("component", "dataplane"),
		MaxRecordBytes: cfg.Limits.MaxRecordBytes, MaxBatchBytes: cfg.Limits.MaxBatchBytes,
		MaxSubscriptions: cfg.Limits.MaxOpenSubscriptions, MaxDurableSubscriptions: cfg.Limits.MaxDurableSubscriptions,
		SubscriptionIdle: cfg.Limits.SubscriptionIdle, MaxProviderStreams: cfg.Limits.MaxProviderStreams,
		QueryTimeout: cfg.Limits.QueryTimeout, MaxPendingCalls: cfg.Limits.MaxPendingCalls,
		ValidationSteps:   cfg.Limits.ValidationSteps,
		PageTokenKey:      n.Authority.DeriveSecret("dataplane/page-token/v1"),
		RetentionSweep:    cfg.SweepInterval,
		SubscriptionSweep: cfg.SubscriptionSweep, SubscriptionRedelivery: cfg.SubscriptionRedelivery,
	}); err != nil {
		return nil, err
	}
	joinNATS := cfg.NATSURL
	if n.Embedded != nil {
		joinNATS = n.Embedded.URL // "" without --nats-listen
	}
	conn := cfg.Conn
	if conn.MaxMessageBytes <= 0 {
		// The largest message worth receiving: a batch or a provider's
		// answer, each one NATS message.
		conn.MaxMessageBytes = int(n.NC.MaxPayload()) + api.MessageFraming
	}
	n.GRPC = api.New(api.Config{CP: n.CP, DP: n.DP, Authority: n.Authority, ServerTLS: serverCert, Logger: log.With("component", "api"), Now: cfg.Now,
		Join: api.JoinConfig{PKIDir: pkiDir, NATSURL: joinNATS, Replicas: cfg.Replicas}, Node: cfg.Name, JS: n.JS, Conn: conn, Nodes: n,
		Redeliver: api.RedeliverLimits{Max: cfg.WebhookRedeliverMax, Window: cfg.WebhookRedeliverWindow}})
	lis := n.lis
	if cfg.WrapListener != nil {
		lis = cfg.WrapListener(lis)
	}
	// The webhooks' consumer of the ledger exists before any call is
	// served: every entry appended through this node has its events made.
	if degraded == nil {
		if err := n.startWebhooks(ctx, log); err != nil {
			return nil, err
		}
	}
	n.supervise("grpc", func() error { return n.GRPC.Serve(lis) })
	n.heartbeat()
	if issuer != nil && degraded == nil {
		if err := n.startIntegrators(ctx, issuer, log); err != nil {
			return nil, err
		}
	}
	n.ops = newOpsMetrics(n)
	if degraded == nil {
		n.supervise("apply", func() error {
			<-n.CP.Done()
			if n.CP.Integrity() != nil {
				// The log stopped verifying: the node stays up, serving
				// only the ledger, until the operator stops it.
				<-n.stopping
				return nil
			}
			return n.CP.Err()
		})
	}

	n.AdminCreds = filepath.Join(cfg.DataDir, "admin.creds")
	if degraded == nil {
		if err := n.ensureAdminCreds(ctx); err != nil {
			return nil, err
		}
	}
	if metricsLis != nil {
		n.startMetrics(metricsLis)
	}
	if degraded != nil {
		log.Error("hub node started but refuses to serve: its state does not verify", "err", degraded)
		return n, nil
	}
	log.Info("hub node started", "listen", n.Addr(), "data_dir", cfg.DataDir, "applied", n.CP.Applied())
	return n, nil
}

// supervise runs a long-lived part of the node. If it ends while the node
// is not stopping, the node stops, with the part's name and error as the
// reason (see Done and Err).
func (n *Node) supervise(part string, run func() error) {
	n.group.Go(func() error {
		err := run()
		select {
		case <-n.stopping:
			return nil
		default:
		}
		if err == nil || errors.Is(err, http.ErrServerClosed) {
			err = errors.New("stopped unexpectedly")
		}
		err = fmt.Errorf("hub node: %s: %w", part, err)
		n.failMu.Lock()
		if n.failure == nil {
			n.failure = err
		}
		n.failMu.Unlock()
		n.cfg.Logger.Error("hub node stopping: a part failed", "part", part, "err", err)
		go n.Close()
		return err
	})
}

// Done is closed when the node has stopped, by Close or because a part
// failed; Err then says which.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is why the node stopped on its own (nil after a plain Close or
// while it runs).
func (n *Node) Err() error {
	n.failMu.Lock()
	defer n.failMu.Unlock()
	return n.failure
}

// Integrity is nil when the node's log and views verify; otherwise the
// node serves only the ledger, and this says which entry is at fault.
func (n *Node) Integrity() error { return n.CP.Integrity() }

// removeFirstStart removes what a failed first start wrote, so the next
// start begins clean (the next start makes a new CA and ledger key).
// undoFirstStart stops a first start that failed and removes what it
// made (removeFirstStart), and the data dir if it made it and it is empty
// then, before it gives up the data dir's lock: no other start takes the
// dir while it is emptied.
func (n *Node) undoFirstStart(removeDir bool) {
	unlock := n.unlock
	n.unlock = nil
	n.Close()
	n.removeFirstStart()
	if removeDir {
		_ = os.Remove(filepath.Join(n.cfg.DataDir, lockFile))
		_ = os.Remove(n.cfg.DataDir) // only if empty: a pinned pki/ stays
	}
	if unlock != nil {
		unlock()
	}
}

func (n *Node) removeFirstStart() {
	if n.pinned {
		n.cfg.Logger.Warn("first start failed after the ledger recorded this node's CA: the data dir is kept (its pki/ is the hub's CA now); start again on it", "data_dir", n.cfg.DataDir)
		return
	}
	for _, d := range []string{"pki", "nats", "nats.password", "badger", "admin.creds"} {
		if n.joined && d == "pki" {
			continue
		}
		_ = os.RemoveAll(filepath.Join(n.cfg.DataDir, d))
	}
}

// moveAside renames a data dir's Badger to badger.<time>.old, so the node
// rebuilds its views from the log; the old views stay for inspection.
func moveAside(dir string, log *slog.Logger) error {
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	to := fmt.Sprintf("%s.%s.old", dir, time.Now().UTC().Format("20060102T150405"))
	if err := os.Rename(dir, to); err != nil {
		return fmt.Errorf("hub: rebuild views: %w", err)
	}
	log.Warn("views moved aside; rebuilding them from the ledger", "old", to)
	return nil
}

// MetricsAddr is the address of /metrics ("" when off).
func (n *Node) MetricsAddr() string { return n.metricsAddr }

// Addr is the gRPC address clients dial.
func (n *Node) Addr() string { return n.lis.Addr().String() }

// ensureAdminCreds writes DataDir/admin.creds on this data dir's first
// start, recording the credential in the ledger like any other.
func (n *Node) ensureAdminCreds(ctx context.Context) error {
	if _, err := os.Stat(n.AdminCreds); err == nil {
		return nil
	}
	name := "admin" // a node with its own --name gets admin-<name>
	if n.cfg.Name != "xhub" && vocab.ValidateCredName("admin-"+n.cfg.Name) == nil {
		name = "admin-" + n.cfg.Name
	}
	id := vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: name}
	keyPEM, csr, err := vocab.NewKey(id)
	if err != nil {
		return err
	}
	certPEM, _, _, err := n.Authority.Issue(ctx, n.CP, exchange.HubPolicy, id, csr, exchange.MaxCredValidDays)
	if err != nil {
		return fmt.Errorf("hub: issue admin credential: %w", err)
	}
	return secretfile.Write(n.AdminCreds, vocab.EncodeCreds(strings.Join(n.ownAddrs(), ","), n.Authority.VerifierKey, certPEM, keyPEM, n.Authority.CertPEM))
}

// dialAddr is the address a local client dials: the listen address, with
// an unspecified host (0.0.0.0, ::) replaced by localhost.
func (n *Node) dialAddr() string {
	host, port, err := net.SplitHostPort(n.Addr())
	if err != nil {
		return n.Addr()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func (n *Node) startMetrics(lis net.Listener) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "xhub_ledger_applied_seq", Help: "Sequence of the last control-plane entry applied on this node."},
		func() float64 { return float64(n.CP.Applied()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "xhub_state_verified", Help: "1 when this node's log and views verify, 0 when it refuses to serve."},
		func() float64 {
			if n.CP.Integrity() != nil {
				return 0
			}
			return 1
		}))
	for _, c := range []struct {
		name, help string
		get        func(exchange.AppendStats) uint64
	}{
		{"xhub_ledger_appends_total", "Appends this node made to the ledger stream (each one group of entries).", func(s exchange.AppendStats) uint64 { return s.Appends }},
		{"xhub_ledger_appended_entries_total", "Entries this node stored in the ledger stream (divided by xhub_ledger_appends_total: the mean group).", func(s exchange.AppendStats) uint64 { return s.Entries }},
		{"xhub_ledger_append_conflicts_total", "Appends refused because another node appended first (the group is drafted again).", func(s exchange.AppendStats) uint64 { return s.Conflicts }},
		{"xhub_ledger_append_unknown_total", "Appends whose outcome this node could not learn (the stream's leader moving).", func(s exchange.AppendStats) uint64 { return s.Unknown }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.get(n.CP.AppendStats())) }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "xhub_ledger_apply_lag", Help: "Entries in the ledger stream this node has not applied yet (the stream's last sequence minus the applied one)."},
		func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			last, err := bus.NewLedgerLog(n.JS, n.cfg.Replicas).LastSeq(ctx)
			if err != nil {
				return -1
			}
			return float64(last) - float64(n.CP.Applied())
		}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "xhub_nats_connected", Help: "1 while this node's NATS connection is up."},
		func() float64 {
			if n.NC.IsConnected() {
				return 1
			}
			return 0
		}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "xhub_nats_reconnects_total", Help: "Times this node's NATS connection was re-established."},
		func() float64 { return float64(n.NC.Stats().Reconnects) }))
	reg.MustRegister(n.DP.Collectors()...)
	reg.MustRegister(n.GRPC.Collectors()...)
	if n.Integrators != nil {
		reg.MustRegister(n.Integrators.Collectors()...)
	}
	if n.webhooks != nil {
		reg.MustRegister(n.webhooks.Collectors()...)
	}
	if n.Embedded != nil {
		reg.MustRegister(n.Embedded.Collectors()...)
	}
	reg.MustRegister(n.ops.Collectors()...)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if n.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	n.metricsAddr = lis.Addr().String()
	n.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	n.supervise("metrics", func() error { return n.metrics.Serve(lis) })
}

// Close stops the node in reverse order of start: gRPC (draining calls),
// metrics, the control plane, Badger (flushed), NATS. It is idempotent.
func (n *Node) Close() {
	n.closeOnce.Do(func() {
		defer close(n.done)
		defer func() { _ = n.group.Wait() }()
		close(n.stopping)
		if n.GRPC != nil {
			n.GRPC.Drain()
			done := make(chan struct{})
			go func() { n.GRPC.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				n.GRPC.Stop()
			}
		}
		if n.metrics != nil {
			_ = n.metrics.Close()
		}
		if n.DP != nil {
			n.DP.Close()
		}
		if n.CP != nil {
			n.CP.Close()
		}
		if n.Store != nil {
			if err := n.Store.Close(); err != nil {
				n.cfg.Logger.Error("close store", "err", err)
			}
		}
		if n.NC != nil {
			_ = n.NC.Drain()
			n.NC.Close()
		}
		if n.sysNC != nil {
			n.sysNC.Close()
		}
		if n.Embedded != nil {
			n.Embedded.Shutdown()
		}
		if n.unlock != nil {
			n.unlock() // last: the data dir is no longer written
		}
	})
}

// integratorTLS is the embedded NATS port's TLS: the hub's server
// certificate, and client certificates required and verified against the
// hub's CA. issuer is the account key of the auth callout.
func (n *Node) integratorTLS(listen string) (*tls.Config, nkeys.KeyPair, error) {
	cert, err := n.Authority.ServerCert(n.certHosts(listen))
	if err != nil {
		return nil, nil, err
	}
	issuer, err := natsauth.Issuer()
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    n.Authority.Pool(),
	}, issuer, nil
}

// startIntegrators runs the auth callout service and the NATS delivery of
// granted records, for departments' systems on the embedded NATS port or
// the external cluster.
func (n *Node) startIntegrators(ctx context.Context, issuer nkeys.KeyPair, log *slog.Logger) error {
	ictx, cancel := context.WithCancel(context.Background())
	acfg := natsauth.Config{CP: n.CP, Conn: n.NC, Issuer: issuer, System: n.sysNC, Now: n.cfg.Now, Log: log.With("component", "natsauth")}
	if n.Embedded != nil {
		acfg.Server = n.Embedded.Server
	}
	svc, err := natsauth.Start(ictx, acfg)
	if err != nil {
		cancel()
		return err
	}
	n.Integrators = svc
	n.supervise("nats-delivery", func() error {
		defer cancel()
		go func() {
			select {
			case <-n.CP.Done():
			case <-n.stopping:
			}
			cancel()
		}()
		n.DP.DeliverToNATS(ictx, n.CP)
		return nil
	})
	return nil
}

// startWebhooks runs this node's webhook dispatcher: one of the nodes
// turning ledger entries into delivery tasks and posting them (bus.layout.go).
func (n *Node) startWebhooks(ctx context.Context, log *slog.Logger) error {
	d, err := webhook.New(webhook.Config{
		JS: n.JS, CP: n.CP, AllowPrivate: n.cfg.WebhookAllowPrivate, NoDispatch: n.cfg.NoWebhookDispatch,
		Backoff: n.cfg.WebhookBackoff, Timeout: n.cfg.WebhookTimeout, ConnectTimeout: n.cfg.WebhookConnectTimeout,
		Workers: n.cfg.WebhookWorkers, PerDept: n.cfg.WebhookPerDept, Scan: n.cfg.WebhookScan, Log: log.With("component", "webhook"),
		Secret: func(dept catalog.DeptID, seq uint64) []byte { return api.WebhookSecret(n.Authority, dept, seq) },
	})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := d.Prepare(ctx); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	n.webhooks = d
	wctx, cancel := context.WithCancel(context.Background())
	n.supervise("webhooks", func() error {
		go func() {
			select {
			case <-n.CP.Done():
			case <-n.stopping:
			}
			cancel()
		}()
		return d.Run(wctx)
	})
	return nil
}

// storeBounds resolves the bounds of XHUB_DATA and XHUB_AUDIT, and of a
// department's ledger bytes. On the embedded server the store's size is
// known: XHUB_DATA gets the store less the control reserve, XHUB_AUDIT
// half the reserve, the webhook queue at most an eighth of it, and the
// ledger and webhook records the rest
// (JetStream refuses every write, the ledger's too, once the store is
// full; streams with a bound never pass it), of which one department's
// entries take at most an eighth of the reserve. With an external NATS a
// bound not given is what the streams have.
// externalDeptLedgerBytes is --dept-ledger-bytes's default on an external
// NATS cluster, whose store size the hub cannot read: room for about
// 400,000 typical entries of one department over the ledger's life.
const externalDeptLedgerBytes = 256 << 20

func (n *Node) storeBounds(ctx context.Context) (bus.DataLimits, int64, int64, error) {
	cfg, log := n.cfg.Store, n.cfg.Logger
	data := bus.DataLimits{MaxBytes: cfg.DataMaxBytes, DeptQuota: cfg.DeptQuota, DatasetQuota: cfg.DatasetQuota, Retention: cfg.DataRetention}
	audit := n.cfg.AuditMaxBytes
	for _, v := range []struct {
		name string
		n    int64
	}{{"--store-max-bytes", cfg.MaxBytes}, {"--control-reserve", cfg.ControlReserve}, {"--data-max-bytes", cfg.DataMaxBytes}, {"--dept-quota", cfg.DeptQuota}, {"--dataset-quota", cfg.DatasetQuota}, {"--audit-max-bytes", audit}, {"--dept-ledger-bytes", cfg.DeptLedgerBytes}} {
		if v.n < 0 {
			return data, 0, 0, fmt.Errorf("hub: %s %d: a size is at least 0 (0: the default)", v.name, v.n)
		}
	}
	if r := catalog.Retention(cfg.DataRetention); r != 0 && r.Validate() != nil {
		return data, 0, 0, fmt.Errorf("hub: --data-retention %s: from %s to %s, whole seconds", cfg.DataRetention, catalog.MinRetention, catalog.MaxRetention)
	}
	deptLedger := cfg.DeptLedgerBytes
	if n.Embedded != nil {
		store := n.Embedded.MaxStore()
		reserve := cfg.ControlReserve
		if reserve == 0 {
			reserve = min(max(store/10, minControlReserve), store/2)
		}
		if deptLedger == 0 {
			deptLedger = reserve / 8 // no one department takes more than an eighth of the room
		}
		if data.MaxBytes == 0 {
			data.MaxBytes = store - reserve
		}
		if audit == 0 {
			audit = reserve / 2
		}
		// The webhook queue's bound is room JetStream sets aside when the
		// stream is made: on a small store, an eighth of the reserve.
		q := &n.cfg.WebhookQueue
		if q.MaxBytes == 0 {
			q.MaxBytes = min(bus.DefaultWebhookQueueMaxBytes, reserve/8)
		}
		if room := min(int64(minLedgerRoom), store/8); data.MaxBytes+audit+q.MaxBytes > store-room {
			return data, 0, 0, fmt.Errorf("hub: --data-max-bytes %d, --audit-max-bytes %d and --webhook-queue-max-bytes %d leave the ledger less than %d bytes of the store's %d (--store-max-bytes): the control plane would starve", data.MaxBytes, audit, q.MaxBytes, room, store)
		}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if s, err := n.JS.Stream(ctx, bus.DataStream); err == nil {
			have := bus.DataLimitsOf(s.CachedInfo().Config)
			data.MaxBytes = cmp.Or(data.MaxBytes, have.MaxBytes)
			data.DeptQuota = cmp.Or(data.DeptQuota, have.DeptQuota)
			data.DatasetQuota = cmp.Or(data.DatasetQuota, have.DatasetQuota)
			data.Retention = cmp.Or(data.Retention, have.Retention)
		}
		if s, err := n.JS.Stream(ctx, bus.AuditStream); err == nil && audit == 0 {
			audit = max(s.CachedInfo().Config.MaxBytes, 0)
		}
		if data.MaxBytes == 0 {
			log.Warn("XHUB_DATA has no byte bound: departments' quotas bound it, but nothing keeps room for the ledger; set --data-max-bytes below the NATS servers' max_file_store")
		}
	}
	if data.DeptQuota == 0 {
		data.DeptQuota = defaultDeptQuota
		if data.MaxBytes > 0 {
			data.DeptQuota = data.MaxBytes / 4
		}
	}
	if data.Retention == 0 {
		data.Retention = DefaultDataRetention
	}
	if deptLedger == 0 {
		deptLedger = externalDeptLedgerBytes
	}
	log.Info("store bounds", "data_max_bytes", data.MaxBytes, "dept_quota", data.DeptQuota, "dataset_quota", data.DatasetQuota,
		"data_retention", data.Retention, "audit_max_bytes", audit, "dept_ledger_bytes", deptLedger)
	return data, audit, deptLedger, nil
}
