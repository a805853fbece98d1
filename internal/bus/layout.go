// Package bus owns the NATS side of a hub node: the embedded nats-server
// (JetStream on the data dir, in-process connection, no TCP port unless
// asked and then only with authentication) and the layout of every stream
// the hub uses, kept here as plain jetstream.StreamConfig values so that
// the bus reads at a glance; making them exist on a cluster that may still
// be forming (ensure.go); the control-plane log on XHUB_LEDGER and calls
// to the cluster repeated while a stream's leader moves (ledgerlog.go).
package bus

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/xhub-gov/xhub/catalog"
)

// Subjects and stream names.
const (
	LedgerStream  = "XHUB_LEDGER"
	LedgerSubject = "xhub.ledger"
	DataStream    = "XHUB_DATA"
	DataSubjects  = "xhub.d.>" // xhub.d.<dataset>: published record batches
	DataPrefix    = "xhub.d."
	AuditStream   = "XHUB_AUDIT"
	AuditSubjects = "xhub.audit.>" // xhub.audit.<dataset>: one entry per access
	AuditPrefix   = "xhub.audit."
	// QueryPrefix + dataset: core NATS request-reply to the dataset's
	// providers (queue group ProviderQueue).
	QueryPrefix   = "xhub.q."
	ProviderQueue = "xhub-providers"
	// EventPrefix + department: share events for its officers.
	EventPrefix = "xhub.ev."
	// OutPrefix: xhub.out.<dept>.<dataset> carries a department's records
	// of a dataset, already cut to its grant, to its NATS-native
	// integrators (core NATS; the only subjects they may subscribe to).
	OutPrefix = "xhub.out."
)

// Data holds published batches, one message per batch (so a batch is
// stored whole or not at all), deduplicated by batch id for DuplicateWindow.
// It is bounded: l.MaxBytes in all (a full stream refuses new batches and
// never drops stored ones), each batch removed when its dataset's
// retention has passed (a per-message TTL the publisher sets), nothing
// kept past DataMaxAge. The quotas and the default retention, which the
// hub enforces at publish, live in the stream's metadata, so every node
// reads the same ones.
func Data(replicas int, l DataLimits) jetstream.StreamConfig {
	maxBytes := l.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        DataStream,
		Description: "xhub published record batches",
		Subjects:    []string{DataSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		MaxMsgSize:  64 << 20,
		MaxBytes:    maxBytes,
		MaxAge:      DataMaxAge,
		Discard:     jetstream.DiscardNew,
		AllowMsgTTL: true,
		Duplicates:  DuplicateWindow,
		AllowDirect: true,
		Metadata:    l.metadata(),
	}
}

// DataMaxAge is the longest any batch is kept: the longest retention a
// dataset may ask for.
const DataMaxAge = time.Duration(catalog.MaxRetention)

// DataLimits are the bounds of XHUB_DATA. Zero values: none (the hub fills
// its defaults before it makes the stream).
type DataLimits struct {
	MaxBytes     int64         // the whole stream
	DeptQuota    int64         // what one department's datasets may hold together
	DatasetQuota int64         // what one dataset may hold
	Retention    time.Duration // how long a batch of a dataset without its own retention is kept
}

// Metadata keys of XHUB_DATA that hold DataLimits.
const (
	MetaDeptQuota    = "xhub.dept_quota"    // bytes
	MetaDatasetQuota = "xhub.dataset_quota" // bytes
	MetaRetention    = "xhub.retention"     // seconds
)

func (l DataLimits) metadata() map[string]string {
	m := map[string]string{}
	put := func(k string, v int64) {
		if v > 0 {
			m[k] = strconv.FormatInt(v, 10)
		}
	}
	put(MetaDeptQuota, l.DeptQuota)
	put(MetaDatasetQuota, l.DatasetQuota)
	put(MetaRetention, int64(l.Retention/time.Second))
	return m
}

// DataLimitsOf reads the limits back from the stream's configuration
// (what a node that was not told them adopts, and what every publish
// enforces). A value that does not read is zero.
func DataLimitsOf(sc jetstream.StreamConfig) DataLimits {
	get := func(k string) int64 {
		n, err := strconv.ParseInt(sc.Metadata[k], 10, 64)
		if err != nil || n < 0 {
			return 0
		}
		return n
	}
	l := DataLimits{MaxBytes: sc.MaxBytes, DeptQuota: get(MetaDeptQuota), DatasetQuota: get(MetaDatasetQuota)}
	if s := get(MetaRetention); s > 0 && s <= int64(DataMaxAge/time.Second) {
		l.Retention = time.Duration(s) * time.Second
	}
	if l.MaxBytes < 0 {
		l.MaxBytes = 0
	}
	return l
}

// DuplicateWindow is how long a batch id is remembered.
const DuplicateWindow = 24 * time.Hour

// Audit holds the data-access audit log: kept for retention (entries
// older are removed by the stream itself, oldest first), within maxBytes
// if set (0: no bound). No entry can be deleted or purged by hand.
func Audit(replicas int, retention time.Duration, maxBytes int64) jetstream.StreamConfig {
	if retention <= 0 {
		retention = DefaultAuditRetention
	}
	if maxBytes <= 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        AuditStream,
		Description: "xhub data-access audit log",
		Subjects:    []string{AuditSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		MaxAge:      retention,
		MaxBytes:    maxBytes,
		Discard:     jetstream.DiscardOld,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// DefaultAuditRetention is 180 days: what China's rules ask of network
// logs at least (and no longer than needed: set --audit-retention).
const DefaultAuditRetention = 180 * 24 * time.Hour

// Ledger is the control-plane log: every entry kept forever, in one total
// order, never deleted or purged.
func Ledger(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        LedgerStream,
		Description: "xhub control-plane log (append-only, tamper-evident)",
		Subjects:    []string{LedgerSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  4 << 20,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
		// A node appends the commands that reach it together, as one
		// atomic batch on a replicated stream (LedgerLog.Append).
		AllowAtomicPublish: true,
	}
}

// Subscriptions are durable consumers of XHUB_DATA, one per (grantee
// department, dataset, subscription name), named
// SubscriptionPrefix<dept>_<owner>_<dataset name>_<name> (ids hold no '_',
// so the name is unique) and described by their metadata.
const (
	SubscriptionPrefix = "sub_"
	MetaDept           = "xhub.dept"
	MetaDataset        = "xhub.dataset"
	MetaName           = "xhub.name"
	MetaCreatedBy      = "xhub.created_by" // the identity that made it
)

// SubscriptionConsumerName is the durable consumer of a subscription.
func SubscriptionConsumerName(dept, dataset, name string) string {
	return SubscriptionPrefix + dept + "_" + strings.ReplaceAll(dataset, ".", "_") + "_" + name
}

// DeptSubscriptionPrefix starts the consumer names of one department's
// subscriptions.
func DeptSubscriptionPrefix(dept string) string { return SubscriptionPrefix + dept + "_" }

// Subscription is the durable consumer of a new subscription: explicit
// acks, redelivery after AckWait, deleted by the server after idle
// without a subscriber.
func Subscription(dept, dataset, name, createdBy string, fromBeginning bool, idle time.Duration) jetstream.ConsumerConfig {
	deliver := jetstream.DeliverNewPolicy
	if fromBeginning {
		deliver = jetstream.DeliverAllPolicy
	}
	return jetstream.ConsumerConfig{
		Durable:       SubscriptionConsumerName(dept, dataset, name),
		Description:   "subscription " + name + " of " + dept + " to " + dataset,
		FilterSubject: DataPrefix + dataset, DeliverPolicy: deliver,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 256,
		InactiveThreshold: idle,
		Metadata:          map[string]string{MetaDept: dept, MetaDataset: dataset, MetaName: name, MetaCreatedBy: createdBy},
	}
}

// Events sends share events to a department's officers on
// EventPrefix<dept>, over core NATS (at most once: the inbox and the
// ledger are the record; events only save a poll).
type Events struct{ NC *nats.Conn }

// PublishEvent publishes data on dept's event subject.
func (e Events) PublishEvent(dept catalog.DeptID, data []byte) error {
	return e.NC.Publish(EventPrefix+string(dept), data)
}

// SubscribeEvents calls fn with each event on dept's event subject until
// stop is called.
func (e Events) SubscribeEvents(dept catalog.DeptID, fn func([]byte)) (stop func(), err error) {
	sub, err := e.NC.Subscribe(EventPrefix+string(dept), func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return nil, err
	}
	if err := e.NC.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// WebhookStream records the webhook deliveries of each department on
// WebhookPrefix<dept>: the last WebhookKeep of each, for WebhookAge.
const (
	WebhookStream = "XHUB_WEBHOOKS"
	WebhookPrefix = "xhub.wh."
	WebhookKeep   = 1000
	WebhookAge    = 30 * 24 * time.Hour
)

// Webhooks is the stream of webhook delivery records.
func Webhooks(replicas int) jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name: WebhookStream, Description: "xhub webhook deliveries, per department",
		Subjects: []string{WebhookPrefix + ">"}, Storage: jetstream.FileStorage, Replicas: replicas,
		MaxAge: WebhookAge, MaxMsgsPerSubject: WebhookKeep, Discard: jetstream.DiscardOld,
	}
}

// Webhook deliveries are durable tasks, shared by every node:
//
//   - WebhookEventsConsumer, a durable consumer of XHUB_LEDGER, is where
//     the deployment is in turning entries into tasks. A node takes an
//     entry from it, finds the events the entry holds for departments
//     with a webhook (exchange.EntryEvents), publishes one task per
//     event on WebhookTaskPrefix<dept> with the message id
//     "<entry>-<dept>" (so the node that takes the entry again after
//     another died between publish and ack adds nothing), then acks it.
//     The ledger is the source: an event is neither lost while no
//     dispatcher runs nor made twice.
//   - XHUB_WEBHOOK_QUEUE holds the tasks, a work queue (a task is removed
//     once delivered or given up), bounded per department, in bytes and
//     in age, so that a receiver that never answers cannot grow it.
//   - WebhookDispatchConsumer is the one consumer of the queue, pulled by
//     every node's dispatcher. An attempt that fails is acknowledged
//     negatively with the next wait of the back-off (NakWithDelay); its
//     delivery count is the attempt's number; a node that dies during an
//     attempt leaves the task unacknowledged and another node takes it
//     after AckWait, as the next attempt. One consumer rather than one
//     per department: a work queue lets overlapping consumers be, and the
//     per-department bound, not a consumer, keeps one department's dead
//     receiver from taking the queue.
const (
	WebhookQueueStream      = "XHUB_WEBHOOK_QUEUE"
	WebhookTaskPrefix       = "xhub.whq." // + dept
	WebhookEventsConsumer   = "xhub_webhook_events"
	WebhookDispatchConsumer = "xhub_webhook_dispatch"
	// WebhookTaskDuplicates is how long a task's message id is
	// remembered: well past the events consumer's AckWait.
	WebhookTaskDuplicates = 10 * time.Minute
)

// WebhookQueueLimits bound XHUB_WEBHOOK_QUEUE. Zero values: the defaults.
type WebhookQueueLimits struct {
	PerDept  int64         // tasks one department may have waiting (1000); more are dropped and recorded so
	MaxBytes int64         // the whole queue (64 MiB)
	MaxAge   time.Duration // a task not delivered by then is removed unrecorded (24h); longer than any back-off
}

// Defaults of WebhookQueueLimits.
const (
	DefaultWebhookQueuePerDept  = 1000
	DefaultWebhookQueueMaxBytes = 64 << 20
	DefaultWebhookQueueMaxAge   = 24 * time.Hour
)

// WithDefaults fills the zero values.
func (l WebhookQueueLimits) WithDefaults() WebhookQueueLimits {
	if l.PerDept <= 0 {
		l.PerDept = DefaultWebhookQueuePerDept
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultWebhookQueueMaxBytes
	}
	if l.MaxAge <= 0 {
		l.MaxAge = DefaultWebhookQueueMaxAge
	}
	return l
}

// WebhookQueue is the stream of webhook delivery tasks: a full
// department (PerDept) or a full queue (MaxBytes) refuses new tasks and
// never drops waiting ones.
func WebhookQueue(replicas int, l WebhookQueueLimits) jetstream.StreamConfig {
	l = l.WithDefaults()
	return jetstream.StreamConfig{
		Name: WebhookQueueStream, Description: "xhub webhook delivery tasks (work queue)",
		Subjects: []string{WebhookTaskPrefix + ">"}, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		Retention: jetstream.WorkQueuePolicy, MaxMsgsPerSubject: l.PerDept, MaxBytes: l.MaxBytes, MaxAge: l.MaxAge,
		Discard: jetstream.DiscardNew, DiscardNewPerSubject: true, MaxMsgSize: 4 << 10,
		Duplicates: min(WebhookTaskDuplicates, l.MaxAge),
	}
}

// WebhookEvents is the consumer of XHUB_LEDGER that turns entries into
// tasks, from entry from on (made once for the deployment, before the
// node that makes it serves: the entry after the ledger's last), each
// entry acknowledged once its tasks are queued.
func WebhookEvents(from uint64) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable: WebhookEventsConsumer, Description: "xhub: ledger entries to webhook tasks",
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: max(from, 1), AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxAckPending: 256, MaxDeliver: -1,
		Metadata: map[string]string{MetaHub: "webhooks"},
	}
}

// WebhookDispatch is the consumer of XHUB_WEBHOOK_QUEUE: attempts is
// the most attempts of a task (one delivery each, the server stops
// after one more, which only records the failure of an attempt cut
// short), ackWait how long a node has for one (past it, another node
// takes the task). MaxAckPending bounds the tasks in flight or waiting
// out their back-off, across the deployment.
func WebhookDispatch(attempts int, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable: WebhookDispatchConsumer, Description: "xhub: webhook deliveries",
		DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: ackWait, MaxDeliver: attempts + 1, MaxAckPending: 4096,
		Metadata: map[string]string{MetaHub: "webhooks"},
	}
}

// MetaHub marks a consumer as the hub's own (its value: which part),
// never a department's.
const MetaHub = "xhub.hub"

// OutSubject is the delivery subject of dept's records of dataset.
func OutSubject(dept, dataset string) string { return OutPrefix + dept + "." + dataset }

// OutSubscription is the name of the durable subscription that feeds
// OutSubject; one per (dept, dataset), shared by every node.
const OutSubscription = "nats"
