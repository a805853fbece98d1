// Package dataplane owns the routing of data between departments over
// NATS: queries to providers (to a provider stream on this node directly,
// else core request-reply on xhub.q.<dataset>; provider.go),
// validated durable publishing of record batches (JetStream XHUB_DATA),
// subscriptions served from durable consumers, and the audit log of every
// access (JetStream XHUB_AUDIT). Every call is checked against the grant
// index of the control plane; records are validated against the dataset's
// schema and cut down to the granted fields. It knows nothing of gRPC.
package dataplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/schemas"
)

// Grants is what the data plane asks the control plane before every
// access: the dataset, its schema, and the caller's grant now.
type Grants interface {
	Dataset(id catalog.DatasetID) (catalog.Dataset, error)
	DatasetSchema(d catalog.Dataset) (*schemas.Schema, error)
	CheckAccess(grantee catalog.DeptID, dataset catalog.DatasetID, now time.Time) (exchange.Access, error)
	Applied() uint64
}

// Changes tells the data plane when access may have ended, so open
// streams end and subscriptions are removed without polling.
type Changes interface {
	AccessEnded() <-chan struct{}
	CatchUp(ctx context.Context) error
	Integrity() error
	IdentitiesWithCredential() map[string]bool
}

// ControlPlane is the control plane as the data plane uses it.
type ControlPlane interface {
	Grants
	Changes
}

var _ ControlPlane = (*exchange.ControlPlane)(nil)

// Config configures a Plane. Zero values are documented defaults.
type Config struct {
	CP ControlPlane        // required
	NC *nats.Conn          // required
	JS jetstream.JetStream // required
	// Now is the clock. Zero: time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// QueryTimeout bounds a query's round trip to the provider. Zero: 10s.
	QueryTimeout time.Duration
	// MaxRecordBytes bounds one record. Zero: 1 MiB.
	MaxRecordBytes int
	// MaxBatch bounds the records of one publish. Zero: 1000.
	MaxBatch int
	// MaxBatchBytes bounds the bytes of one publish; it is further held
	// below what one NATS message may carry. Zero: 4 MiB.
	MaxBatchBytes int
	// MaxSubscriptions bounds the subscriptions one department has open
	// on this node. Zero: 64.
	MaxSubscriptions int
	// MaxDurableSubscriptions bounds the durable subscriptions (JetStream
	// consumers) one department may have, open or not. Zero: 32.
	MaxDurableSubscriptions int
	// SubscriptionIdle is how long a durable subscription lives with no
	// subscriber before the server deletes it. Zero: 7 days.
	SubscriptionIdle time.Duration
	// MaxProviderStreams bounds the provider streams one department has
	// open on this node. Zero: 16.
	MaxProviderStreams int
	// PageTokenKey seals the page tokens consumers receive
	// (PageTokenKeySize bytes, required): every node of a deployment
	// has the same, so a token from one node continues the query on
	// another.
	PageTokenKey []byte
	// MaxPendingCalls bounds the calls one provider stream holds
	// unanswered (a provider that never answers holds each until the
	// consumer's timeout); beyond it, queries are refused as busy.
	// Zero: 1024.
	MaxPendingCalls int
	// ValidationSteps bounds the work of validating one publish's
	// batch, or one query's answer, against the schema: schema nodes
	// entered, shared by all the records. Zero: 2^24 (a few seconds of
	// one core at worst; a batch of real records takes a few steps per
	// value).
	ValidationSteps int64
	// RetentionSweep is how often batches stored before their dataset's
	// retention was shortened are purged. Zero: a minute.
	RetentionSweep time.Duration
	// SubscriptionSweep is how often, besides each entry that ends
	// access, the node removes durable subscriptions whose right to
	// exist has ended. Zero: DefaultSubscriptionSweep.
	SubscriptionSweep time.Duration
	// SubscriptionRedelivery bounds how long the records a node has
	// delivered to a subscriber, and that were not acknowledged, wait to
	// be delivered again once that node is gone (killed, cut off): it is
	// the subscriptions' JetStream AckWait, kept from running out by the
	// serving node (in-progress acks, every third of it) while it holds
	// the subscriber's stream open. A stream that ends on a node that
	// stays up gives its records back at once. Zero:
	// DefaultSubscriptionRedelivery.
	SubscriptionRedelivery time.Duration
	// SubscriptionAckTimeout is how long a connected subscriber may hold
	// a delivered record unacknowledged before the node stops keeping it
	// and it is delivered again (after SubscriptionRedelivery more).
	// Zero: DefaultSubscriptionAckTimeout.
	SubscriptionAckTimeout time.Duration
}

// Defaults of Config's subscription intervals.
const (
	DefaultSubscriptionSweep      = time.Minute
	DefaultSubscriptionRedelivery = 10 * time.Second
	DefaultSubscriptionAckTimeout = 30 * time.Second
	minSubscriptionRedelivery     = 500 * time.Millisecond
)

func (c *Config) validate() error {
	if c.CP == nil || c.NC == nil || c.JS == nil {
		return errors.New("dataplane: CP, NC and JS are required")
	}
	if len(c.PageTokenKey) != PageTokenKeySize {
		return fmt.Errorf("dataplane: PageTokenKey is %d bytes, want %d", len(c.PageTokenKey), PageTokenKeySize)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RetentionSweep <= 0 {
		c.RetentionSweep = DefaultRetentionSweep
	}
	if c.SubscriptionSweep <= 0 {
		c.SubscriptionSweep = DefaultSubscriptionSweep
	}
	if c.SubscriptionRedelivery <= 0 {
		c.SubscriptionRedelivery = DefaultSubscriptionRedelivery
	}
	if c.SubscriptionRedelivery < minSubscriptionRedelivery {
		return fmt.Errorf("dataplane: SubscriptionRedelivery %s is below %s: the serving node could not keep what its subscribers hold", c.SubscriptionRedelivery, minSubscriptionRedelivery)
	}
	if c.SubscriptionAckTimeout <= 0 {
		c.SubscriptionAckTimeout = DefaultSubscriptionAckTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.QueryTimeout <= 0 {
		c.QueryTimeout = 10 * time.Second
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 4 << 20
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = 64
	}
	if c.MaxDurableSubscriptions <= 0 {
		c.MaxDurableSubscriptions = 32
	}
	if c.SubscriptionIdle <= 0 {
		c.SubscriptionIdle = 7 * 24 * time.Hour
	}
	if c.MaxProviderStreams <= 0 {
		c.MaxProviderStreams = 16
	}
	if c.MaxPendingCalls <= 0 {
		c.MaxPendingCalls = 1024
	}
	if c.ValidationSteps <= 0 {
		c.ValidationSteps = 1 << 24
	}
	return nil
}

// Plane is one node's data plane.
type Plane struct {
	cfg       Config
	cp        ControlPlane
	nc        *nats.Conn
	js        jetstream.JetStream
	lg        *slog.Logger
	audit     *auditLog
	subs      *deptCounter // open subscriptions on this node
	providers *deptCounter // open provider streams on this node
	local     localProviders
	durableMu sync.Mutex // one durable subscription made at a time
	feeds     *feedPositions
	sweeps    atomic.Uint64 // subscription sweeps completed
	m         *metrics
	stats     *datasetStats
	usage     *usage // what each dataset stores (usage.go)
	quotaMu   sync.Mutex
	deptLocks map[catalog.DeptID]*sync.Mutex // a department's publishes, one at a time (quota.go)
	tokens    *tokenSealer

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// New builds a Plane.
func New(cfg Config) (*Plane, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// A batch is one NATS message: keep it, with its framing, within what
	// the server accepts.
	if max := int(cfg.NC.MaxPayload()) - batchOverhead; cfg.MaxBatchBytes > max {
		cfg.MaxBatchBytes = max
	}
	if cfg.MaxBatchBytes < cfg.MaxRecordBytes {
		cfg.MaxRecordBytes = cfg.MaxBatchBytes
	}
	tokens, err := newTokenSealer(cfg.PageTokenKey)
	if err != nil {
		return nil, err
	}
	p := &Plane{
		cfg: cfg, tokens: tokens, cp: cfg.CP, nc: cfg.NC, js: cfg.JS, lg: cfg.Logger, m: newMetrics(),
		subs:      newDeptCounter("subscriptions", cfg.MaxSubscriptions),
		providers: newDeptCounter("provider streams", cfg.MaxProviderStreams),
		usage:     newUsage(cfg.JS, cfg.Logger.With("part", "usage")),
		deptLocks: map[catalog.DeptID]*sync.Mutex{},
		feeds:     newFeedPositions(),
		done:      make(chan struct{}),
	}
	p.stats = newDatasetStats(p)
	p.audit = newAuditLog(cfg.JS, bus.AuditStream, bus.AuditPrefix, cfg.Logger)
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); p.cleanupLoop(ctx) }()
	go func() { defer wg.Done(); p.usage.run(ctx) }()
	go func() { defer wg.Done(); p.retentionLoop(ctx) }()
	go func() { wg.Wait(); close(p.done) }()
	return p, nil
}

// Limits are the bounds this plane enforces, after defaults.
func (p *Plane) Limits() Config { return p.cfg }

// Close stops the subscription cleanup, stores pending audit entries and
// stops. Call it after the API has stopped taking calls. Idempotent.
func (p *Plane) Close() {
	p.closeOnce.Do(func() {
		p.stop()
		<-p.done
		p.audit.close()
	})
}

// batchOverhead is room for a batch's framing (a length per record, the
// batch id) and its NATS headers, within one NATS message.
const batchOverhead = 32 << 10

// Page sizes of a query.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// publishedDataset loads a dataset that can be read.
func (p *Plane) publishedDataset(id catalog.DatasetID) (catalog.Dataset, error) {
	if _, err := catalog.ParseDatasetID(string(id)); err != nil {
		return catalog.Dataset{}, err
	}
	ds, err := p.cp.Dataset(id)
	if err != nil {
		return ds, err
	}
	if ds.Status != catalog.StatusPublished {
		return ds, vocab.Precondition("DATASET_RETIRED", string(id), "dataset %s is retired", id)
	}
	return ds, nil
}

// readable loads dataset id and what caller may read of it. A refusal
// (no such dataset, retired, no active grant) is judged again once this
// node has applied the log as it stands: a grant another node applied and
// acknowledged a moment ago is then found, and a node too far behind to
// know answers that it is (KindUnavailable), never the stale refusal.
func (p *Plane) readable(ctx context.Context, caller vocab.Identity, id catalog.DatasetID) (catalog.Dataset, exchange.Access, error) {
	ds, acc, err := p.readableNow(caller, id)
	if !exchange.StateRefusal(err) {
		return ds, acc, err
	}
	if cerr := p.cp.CatchUp(ctx); cerr != nil {
		return ds, acc, cerr
	}
	return p.readableNow(caller, id)
}

// publishedOnHead is publishedDataset, a refusal judged on the log's head
// as readable's is.
func (p *Plane) publishedOnHead(ctx context.Context, id catalog.DatasetID) (catalog.Dataset, error) {
	ds, err := p.publishedDataset(id)
	if !exchange.StateRefusal(err) {
		return ds, err
	}
	if cerr := p.cp.CatchUp(ctx); cerr != nil {
		return ds, cerr
	}
	return p.publishedDataset(id)
}

func (p *Plane) readableNow(caller vocab.Identity, id catalog.DatasetID) (catalog.Dataset, exchange.Access, error) {
	ds, err := p.publishedDataset(id)
	if err != nil {
		return ds, exchange.Access{}, err
	}
	acc, err := p.access(caller, ds)
	return ds, acc, err
}

// access decides what caller may read of ds: the owner's own systems read
// every field; any other department what its active grants allow.
func (p *Plane) access(caller vocab.Identity, ds catalog.Dataset) (exchange.Access, error) {
	if caller.Dept == ds.Owner() {
		fs := make([]string, len(ds.Fields))
		for i, f := range ds.Fields {
			fs[i] = f.Name
		}
		slices.Sort(fs)
		return exchange.Access{Fields: fs, AsOf: p.cp.Applied()}, nil
	}
	return p.cp.CheckAccess(caller.Dept, ds.ID, p.cfg.Now())
}

// fieldsWithin resolves requested fields against the granted ones (empty:
// all granted).
func fieldsWithin(requested []string, a exchange.Access, ds catalog.DatasetID) ([]string, error) {
	if len(requested) == 0 {
		return a.Fields, nil
	}
	if len(requested) > shares.MaxFields {
		return nil, vocab.Invalid("fields", "%d fields, at most %d", len(requested), shares.MaxFields)
	}
	out := slices.Clone(requested)
	slices.Sort(out)
	out = slices.Compact(out)
	if f, ok := a.Allows(out); !ok {
		return nil, vocab.Denied("field %q of %s is not granted to your department (granted: %s)", f, ds, strings.Join(a.Fields, ", "))
	}
	return out, nil
}

// decodeObject decodes one record, which must be a JSON object.
func decodeObject(raw []byte, max int) (map[string]any, error) {
	return decodeObjectWith(schemas.DecodeRecord, raw, max)
}

// decodeStoredObject is decodeObject for a stored record, judged when it
// was published: its numbers are not held to the bound again.
func decodeStoredObject(raw []byte, max int) (map[string]any, error) {
	return decodeObjectWith(schemas.DecodeStoredRecord, raw, max)
}

func decodeObjectWith(decode func([]byte) (any, error), raw []byte, max int) (map[string]any, error) {
	if len(raw) > max {
		return nil, fmt.Errorf("record is %d bytes, at most %d", len(raw), max)
	}
	v, err := decode(raw)
	var be *vocab.NumberBoundError
	var dup *schemas.DuplicateKeyError
	if errors.As(err, &be) || errors.As(err, &dup) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// projectRaw cuts a record (raw, decoded as rec) to the given fields
// (sorted), returning raw unchanged when it has no other field: nothing to
// cut, nothing to re-encode.
func projectRaw(raw []byte, rec map[string]any, fields []string) ([]byte, error) {
	view, extra := cut(rec, fields)
	if !extra {
		return raw, nil
	}
	return encodeRecord(view)
}

// encodeRecord encodes a record without HTML escaping.
func encodeRecord(rec map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// cut is rec with only the given fields (sorted), and whether rec had any
// other field (if not, rec itself is returned).
func cut(rec map[string]any, fields []string) (map[string]any, bool) {
	extra := false
	for k := range rec {
		if _, ok := slices.BinarySearch(fields, k); !ok {
			extra = true
			break
		}
	}
	if !extra {
		return rec, false
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := rec[f]; ok {
			out[f] = v
		}
	}
	return out, true
}
