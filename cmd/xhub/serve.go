package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/webhook"
)

func (c *cli) serveCmd() *cobra.Command {
	var cfg hub.Config
	var fsync, logLevel, dataRetention string
	var rebuild, dispatch bool
	var joinFile string
	var tokenOut joinTokenOut
	var advertise string
	cmd := &cobra.Command{
		Use:   "serve --data-dir DIR",
		Short: "Run a hub node",
		Long: `Run a hub node. By default it starts an embedded NATS server with JetStream
in DIR/nats (no TCP port), keeps its views in Badger in DIR/badger, and
serves gRPC with mTLS on --listen. On first start it creates the hub CA and
ledger key in DIR/pki and writes DIR/admin.creds.

With --nats-url it uses an existing NATS cluster instead (with --replicas
for the streams); a cluster still forming is waited for. To add a node to
a running hub, the operator makes a join token (xhub node token --out
FILE) and the new node starts with --join-file FILE (or the token in
XHUB_JOIN; never on the command line, which every local user can read)
on an empty data dir: it proves the token's secret to a running node over
TLS (pinned by the token) and receives, sealed to a key it made for the
purpose, the CA and ledger key, the replicas and, unless given NATS here,
the NATS URL. The token admits one node, once, and is ignored on later
starts, so the same command restarts it.

--nats-listen opens the embedded server's client port. Other hub nodes
use a user and password the hub writes to DIR/nats.password. Departments'
systems connect over TLS with the certificate the hub issued them (xhub
creds export --pem) and may only subscribe to xhub.out.<dept>.<dataset> of
their active grants, where the hub publishes their records already cut to
the grant; the hub authorises each connection (NATS auth callout) and
closes it when a grant or the credential is revoked. With an external
cluster the same is --nats-callout-key and --nats-system-url, with the
servers configured for TLS with the hub's CA and the auth callout (see the
README).

The same port as gRPC answers JSON over HTTP (POST /xhub.v1.<Service>/<Method>),
Connect and gRPC-Web, with the same mutual TLS; /openapi.json describes it
and /catalog/export?format=dcat|csv exports the catalog.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.RebuildViews = rebuild
			cfg.NoWebhookDispatch = !dispatch
			var err error
			if cfg.Advertise, err = hub.ParseAdvertise(advertise); err != nil {
				return err
			}
			if cmd.Flags().Changed("join") {
				return errJoinFlag
			}
			if err := tokenOut.check(); err != nil {
				return err
			}
			if cfg.Join, err = joinToken(cfg.DataDir, joinFile, os.Getenv("XHUB_JOIN")); err != nil {
				return err
			}
			r, err := catalog.ParseRetention(dataRetention)
			if err != nil {
				return fmt.Errorf("--data-retention: %w", err)
			}
			cfg.Store.DataRetention = r.Duration()
			switch fsync {
			case "":
			case "always":
				cfg.FsyncAlways = true
			default:
				return fmt.Errorf("--fsync %q: the only value is always", fsync)
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			ctx := cmd.Context()
			node, err := hub.Start(ctx, cfg)
			if err != nil {
				return err
			}
			c.say("xhub node listening on %s (data dir %s); admin credentials: %s", node.Addr(), cfg.DataDir, node.AdminCreds)
			if err := node.Integrity(); err != nil {
				c.say("this node refuses to serve (only the ledger is served): %v", err)
			} else if msg, err := tokenOut.write(ctx, node); err != nil {
				// The node serves on: the next node waits for the file.
				cfg.Logger.Error("join token not written", "err", err)
				c.say("join token not written: %v", err)
			} else if msg != "" {
				c.say("%s", msg)
			}
			select {
			case <-ctx.Done():
				cfg.Logger.Info("shutting down")
				node.Close()
				return nil
			case <-node.Done():
				return node.Err() // a part failed: exit non-zero with the reason
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "", "data directory (required)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:7443", "gRPC listen address")
	f.StringVar(&cfg.NATSListen, "nats-listen", "", "open the embedded NATS client port here (hub nodes by password; departments' systems by their certificate, for their granted records)")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "use this NATS (comma-separated URLs) instead of the embedded server")
	f.StringVar(&cfg.NATSCalloutKey, "nats-callout-key", "", "with --nats-url: be the cluster's auth callout for departments' systems, with this account key seed (made if absent; its public key goes in the servers' auth_callout.issuer)")
	f.StringVar(&cfg.NATSSystemURL, "nats-system-url", "", "with --nats-callout-key: a user of the cluster's system account, to close connections whose access ended")
	f.IntVar(&cfg.Replicas, "replicas", 1, "stream replicas on an external NATS cluster")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", "", "serve Prometheus /metrics here")
	f.BoolVar(&cfg.Pprof, "pprof", false, "also serve Go's /debug/pprof/ profiles on --metrics-listen")
	f.StringVar(&fsync, "fsync", "", "always: JetStream fsyncs every write (slower; survives power loss)")
	f.StringVar(&cfg.Name, "name", "xhub", "node name, its own in the deployment (node list, logs, NATS): letters, digits, '-', '_', '.'")
	f.StringVar(&advertise, "advertise", "", "host:port,... clients dial this node by: put in its server certificate (beside localhost, loopback and the hostname) and, with every other node's, in the creds files any node issues (default: the listen address)")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 10*time.Second, "how often this node stores its heartbeat; node list shows it up while heard from within three intervals")
	f.DurationVar(&cfg.CredsNodesWithin, "creds-nodes-within", 0, "creds files issued here list the addresses of the nodes heard from within this long (default 1h, or three heartbeat intervals if longer; at most 168h); xhub node forget NAME drops one at once")
	f.DurationVar(&cfg.AuditRetention, "audit-retention", 180*24*time.Hour, "keep audit entries this long (the stream removes older ones)")
	f.Int64Var(&cfg.AuditMaxBytes, "audit-max-bytes", 0, "bound the audit stream's size (oldest removed first; 0: half of --control-reserve; with --nats-url, what the stream has; a warning is logged at 80%)")
	var refused string
	f.StringVar(&refused, "join", "", "refused: a token on the command line is readable by every local user; use --join-file or XHUB_JOIN")
	_ = f.MarkHidden("join")
	f.StringVar(&joinFile, "join-file", "", "join a running hub with the token that xhub node token --out wrote, read from `FILE` (mode 0600; or the token in env XHUB_JOIN); absent once joined is fine: a node that has joined ignores it")
	f.BoolVar(&cfg.WebhookAllowPrivate, "webhook-allow-private", false, "let departments' webhooks reach addresses that are not globally routable: loopback, private, shared (100.64/10), link-local and the other IANA special-purpose ranges (off: only public unicast, checked on each connection)")
	f.DurationSliceVar(&cfg.WebhookBackoff, "webhook-backoff", webhook.DefaultBackoff, "the waits before the retries of a webhook delivery (comma-separated): one more attempt than waits, on whichever nodes; every node of a deployment should have the same")
	f.DurationVar(&cfg.WebhookTimeout, "webhook-timeout", 5*time.Second, "bound of one webhook attempt; a node that stops during one leaves the delivery to another node after it and 10s more")
	f.DurationVar(&cfg.WebhookConnectTimeout, "webhook-connect-timeout", 2*time.Second, "bound of connecting to a receiver, within --webhook-timeout (an address that drops the hub's packets fails after it)")
	f.IntVar(&cfg.WebhookWorkers, "webhook-workers", 16, "webhook attempts this node makes at once")
	f.IntVar(&cfg.WebhookPerDept, "webhook-per-dept", 0, "webhook attempts this node makes at once for one department, at most --webhook-workers: a receiver that hangs holds no more of them (0: a quarter of --webhook-workers, at least 1)")
	f.IntVar(&cfg.WebhookRedeliverMax, "webhook-redeliver-max", webhook.DefaultRedeliverMax, "webhook deliveries one department may queue again (dept webhook redeliver) in each --webhook-redeliver-window, across the deployment")
	f.DurationVar(&cfg.WebhookRedeliverWindow, "webhook-redeliver-window", webhook.DefaultRedeliverWindow, "the window of --webhook-redeliver-max")
	f.Int64Var(&cfg.WebhookQueue.PerSource, "webhook-queue-per-source", bus.DefaultWebhookQueuePerSource, "webhook deliveries one department may have waiting from the events one department caused (a receiver that does not answer fills it; more are dropped and recorded so; another department's flood fills only its own share)")
	f.Int64Var(&cfg.WebhookQueue.PerSource, "webhook-queue-per-dept", bus.DefaultWebhookQueuePerSource, "the old name of --webhook-queue-per-source")
	_ = f.MarkDeprecated("webhook-queue-per-dept", "use --webhook-queue-per-source: the bound is per department and source department")
	f.Int64Var(&cfg.WebhookQueue.MaxBytes, "webhook-queue-max-bytes", bus.DefaultWebhookQueueMaxBytes, "bytes the webhook queue (XHUB_WEBHOOK_QUEUE) may hold, every department together")
	f.DurationVar(&cfg.WebhookQueue.MaxAge, "webhook-queue-max-age", bus.DefaultWebhookQueueMaxAge, "a webhook delivery still waiting after this long (no node posting) is removed")
	f.BoolVar(&dispatch, "webhook-dispatch", true, "post webhooks from this node (false: a node with no route to the departments' receivers; it still turns events into deliveries, and the other nodes post them)")
	st := &cfg.Store
	f.Int64Var(&st.MaxBytes, "store-max-bytes", 0, "bytes the embedded JetStream may store, every stream together (0: nats-server's default, 75% of the disk's free space at start)")
	f.Int64Var(&st.ControlReserve, "control-reserve", 0, "bytes of the store published data never takes, kept for the ledger, the audit log and webhook records (0: a tenth of the store, from 256 MiB to half of it)")
	f.Int64Var(&st.DataMaxBytes, "data-max-bytes", 0, "bytes all published batches may take (0: the store less --control-reserve; with --nats-url, what the stream has)")
	f.Int64Var(&st.DeptQuota, "dept-quota", 0, "bytes of published batches one department's datasets may hold together (0: a quarter of --data-max-bytes, or 10 GiB)")
	f.Int64Var(&st.DatasetQuota, "dataset-quota", 0, "bytes of published batches one dataset may hold (0: only its department's quota)")
	f.Int64Var(&st.DeptLedgerBytes, "dept-ledger-bytes", 0, "bytes of ledger entries one department's officers and systems may append, over the ledger's life; past it their commands are refused, except those ending access (0: an eighth of --control-reserve; 256 MiB with --nats-url; the operator's and the hub's own entries are not counted)")
	f.StringVar(&dataRetention, "data-retention", "365d", "keep published batches of a dataset with no retention of its own this long (a number and s, m, h or d; at most 3650d)")
	f.IntVar(&cfg.DisputeDays, "dispute-days", 5, "working days an owner has to answer a data dispute before it shows as overdue")
	f.IntVar(&cfg.ResponseDays, "response-days", 10, "days an owner has to answer a conditional request before it shows as overdue")
	f.IntVar(&cfg.MaxGrantDays, "max-grant-days", 365, "longest grant, in days")
	f.DurationVar(&cfg.SweepInterval, "sweep-interval", 0, "how often this node ends grants past their expiry, grants open requests left pending, and purges batches older than a shortened retention (0: every second for grants, every minute for batches)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&rebuild, "rebuild-views", false, "move DIR/badger aside and rebuild the views by replaying the ledger (after the node refused to start because its views do not match the ledger)")
	l := &cfg.Limits
	f.IntVar(&l.MaxDurableSubscriptions, "max-subscriptions", 32, "durable subscriptions one department may have")
	f.DurationVar(&l.SubscriptionIdle, "subscription-idle", 7*24*time.Hour, "delete a durable subscription after this long with no subscriber")
	f.DurationVar(&cfg.SubscriptionSweep, "subscription-sweep", time.Minute, "how often, besides each entry that ends access, remove durable subscriptions whose grant ended or whose maker's credentials are all revoked")
	f.DurationVar(&cfg.SubscriptionRedelivery, "subscription-redelivery", 10*time.Second, "records a durable subscriber had not acknowledged when its hub node died are delivered again (on any node) within this long of the death (at least 500ms)")
	f.IntVar(&l.MaxOpenSubscriptions, "max-open-subscriptions", 64, "subscriptions one department may have open on this node")
	f.IntVar(&l.MaxProviderStreams, "max-provider-streams", 16, "provider streams one department may have open on this node")
	f.DurationVar(&l.QueryTimeout, "query-timeout", 10*time.Second, "how long a query waits for the provider's answer")
	f.IntVar(&l.MaxPendingRequests, "max-pending-requests", 100, "share requests one department may have pending")
	f.IntVar(&l.MaxRecordBytes, "max-record-bytes", 1<<20, "largest record, in bytes")
	f.IntVar(&l.MaxBatchBytes, "max-batch-bytes", 4<<20, "largest published batch, in bytes of records (held under NATS's max payload)")
	f.Int64Var(&l.ValidationSteps, "validation-steps", 1<<24, "work budget for validating one published batch or one query's answer against the schema, in schema nodes entered")
	cl := &cfg.Conn
	f.IntVar(&cl.MaxConns, "max-conns", 0, "connections open at once on --listen, all clients together; more are closed at once (0: 8192, or half the open-file limit if lower)")
	f.IntVar(&cl.MaxConnsPerAddr, "max-conns-per-addr", 256, "connections open at once from one client address (an IPv6 client by its /64)")
	f.DurationVar(&cl.HandshakeTimeout, "handshake-timeout", 10*time.Second, "time for a connection's TLS handshake and HTTP/2 preface, and for an HTTP/1.1 request's headers")
	f.DurationVar(&cl.IdleTimeout, "idle-timeout", 2*time.Minute, "close a connection with no request in flight after this long, one that never makes a request included (open streams keep theirs)")
	f.DurationVar(&cl.ReadTimeout, "read-timeout", time.Minute, "time to receive one HTTP request body (not the bodies of the bidirectional streams)")
	f.IntVar(&cl.MaxMessageBytes, "max-message-bytes", 0, "largest request message over gRPC or HTTP, in bytes (0: what one NATS message carries plus 64 KiB, 8 MiB + 64 KiB with the embedded server)")
	tokenOut.flags(f)
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// errJoinFlag refuses `--join TOKEN`: /proc/PID/cmdline is readable by
// every user of the machine for as long as the node runs (and while a
// joiner waits for a node to answer), so a token there is a token given
// away. The message does not repeat the token.
var errJoinFlag = errors.New("--join takes no token: a token on the command line is readable by every user of this machine (/proc/PID/cmdline). " +
	"Put it in a file only you can read and give --join-file FILE (xhub node token --out FILE writes one, mode 0600), or set XHUB_JOIN. " +
	"Treat the token given here as seen by others: make a new one (xhub node token)")

// maxJoinFile bounds what --join-file reads (a token is at most 4 KiB).
const maxJoinFile = 8 << 10

// joinToken is the join token of a node not yet joined: from the file
// joinFile or else env (XHUB_JOIN), never both. A node that has joined
// (dataDir/pki holds the CA) needs none, so the file may be gone. The
// file must be readable by its owner alone, as an ssh key must.
func joinToken(dataDir, joinFile, env string) (string, error) {
	if joinFile != "" && env != "" {
		return "", errors.New("--join-file and XHUB_JOIN both give a join token: give one")
	}
	if joinFile == "" && env == "" {
		return "", nil
	}
	if _, err := os.Stat(filepath.Join(dataDir, "pki", "ca.crt")); err == nil {
		return env, nil // joined already: hub.Start logs that the token is not used again
	}
	if env != "" {
		return strings.TrimSpace(env), nil
	}
	f, err := os.Open(joinFile)
	if err != nil {
		return "", fmt.Errorf("--join-file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("--join-file: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("--join-file %s: readable by other users (mode %04o); a join token is a password: chmod 600 %s, or make a new token (xhub node token --out FILE) if others may have read it",
			joinFile, st.Mode().Perm(), joinFile)
	}
	if uid, other := ownedByAnother(st); other {
		return "", fmt.Errorf("--join-file %s: owned by another user (uid %d), who can read it whatever its mode; a join token is a password: keep it in a file of your own, or make a new token (xhub node token --out FILE) if others may have read it",
			joinFile, uid)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxJoinFile+1))
	if err != nil {
		return "", fmt.Errorf("--join-file: %w", err)
	}
	if len(b) > maxJoinFile {
		return "", fmt.Errorf("--join-file %s: more than %d bytes; a join token is one line", joinFile, maxJoinFile)
	}
	return strings.TrimSpace(string(b)), nil
}
