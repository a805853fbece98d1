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
// so the name is unique) and described by their metadata. A department's
// subscription names the identity that made it (MetaCreatedBy); one of
// the hub's own (the NATS delivery, OutSubscription) names the part of
// the hub that owns it (MetaInternal) and no maker: it is never judged by
// a department's credentials.
const (
	SubscriptionPrefix = "sub_"
	MetaDept           = "xhub.dept"
	MetaDataset        = "xhub.dataset"
	MetaName           = "xhub.name"
	MetaCreatedBy      = "xhub.created_by" // the identity that made it
	MetaInternal       = "xhub.internal"   // the hub part that owns it (the hub's own consumers only)
)

// InternalNATSDelivery is MetaInternal of the NATS delivery's consumers.
const InternalNATSDelivery = "nats-delivery"

// SubscriptionConsumerName is the durable consumer of a subscription.
func SubscriptionConsumerName(dept, dataset, name string) string {
	return SubscriptionPrefix + dept + "_" + strings.ReplaceAll(dataset, ".", "_") + "_" + name
}

// DeptSubscriptionPrefix starts the consumer names of one department's
// subscriptions.
func DeptSubscriptionPrefix(dept string) string { return SubscriptionPrefix + dept + "_" }

// SubscriptionSpec says what a new subscription's consumer is.
type SubscriptionSpec struct {
	Dept, Dataset, Name string
	// CreatedBy is the department's identity that made it; Internal,
	// instead, the hub part that owns one of the hub's own.
	CreatedBy, Internal string
	// FromBeginning starts at the dataset's first stored batch, StartSeq
	// (if set) at that stream sequence; else at the next batch stored.
	FromBeginning bool
	StartSeq      uint64
	// Idle: the server deletes it after this long without a subscriber
	// (zero: never).
	Idle time.Duration
	// AckWait: a batch delivered and neither acknowledged nor marked in
	// progress within it is delivered again.
	AckWait time.Duration
}

// Subscription is the durable consumer of a new subscription: explicit
// acks, redelivery after AckWait (the serving node keeps what its
// subscriber holds in progress, so AckWait bounds the wait after that
// node dies), deleted by the server after Idle without a subscriber.
func Subscription(s SubscriptionSpec) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		Durable:       SubscriptionConsumerName(s.Dept, s.Dataset, s.Name),
		Description:   "subscription " + s.Name + " of " + s.Dept + " to " + s.Dataset,
		FilterSubject: DataPrefix + s.Dataset, DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.AckWait, MaxAckPending: 256,
		InactiveThreshold: s.Idle,
		Metadata:          map[string]string{MetaDept: s.Dept, MetaDataset: s.Dataset, MetaName: s.Name},
	}
	switch {
	case s.StartSeq > 0:
		c.DeliverPolicy, c.OptStartSeq = jetstream.DeliverByStartSequencePolicy, s.StartSeq
	case s.FromBeginning:
		c.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	if s.Internal != "" {
		c.Description = "the hub's " + s.Internal + " " + s.Name + " for " + s.Dept + " of " + s.Dataset
		c.Metadata[MetaInternal] = s.Internal
	} else {
		c.Metadata[MetaCreatedBy] = s.CreatedBy
	}
	return c
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

// WebhookStream records the webhook deliveries of each department: the
// outcome of a delivery made from an event another department (the
// source) caused is on WebhookRecordSubject(dept, source), the last
// WebhookKeep of each pair kept, for WebhookAge, so that one source's
// flood of events (each dropped or failed one is a record) cannot push
// out the records of another's: a dropped event keeps the record it is
// redelivered from. Records made before the pair existed are on
// WebhookPrefix<dept> and are read with the rest (WebhookRecordFilters).
// WebhookRedeliverSubject(dept) holds how many deliveries the department
// has queued again in its current window (webhook.Redeliver).
const (
	WebhookStream = "XHUB_WEBHOOKS"
	WebhookPrefix = "xhub.wh."
	WebhookKeep   = 1000
	WebhookAge    = 30 * 24 * time.Hour
)

// WebhookRecordSubject is where dept's delivery records of events caused
// by source are kept.
func WebhookRecordSubject(dept, source catalog.DeptID) string {
	return WebhookPrefix + string(dept) + "." + string(source)
}

// WebhookRecordFilters are the subjects of every delivery record of dept:
// the pre-pair form and each pair.
func WebhookRecordFilters(dept catalog.DeptID) []string {
	return []string{WebhookPrefix + string(dept), WebhookPrefix + string(dept) + ".>"}
}

// WebhookRedeliverSubject keeps dept's redelivery window. "_redeliver"
// is no department id, so no record filter takes it.
func WebhookRedeliverSubject(dept catalog.DeptID) string {
	return WebhookPrefix + "_redeliver." + string(dept)
}

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
//     event on WebhookTaskSubject(dept, source) (source: the department
//     whose act the event is) with the message id "<entry>-<dept>" (so
//     the node that takes the entry again after another died between
//     publish and ack adds nothing), then acks it. The ledger is the
//     source: an event is neither lost while no dispatcher runs nor made
//     twice.
//   - XHUB_WEBHOOK_QUEUE holds the tasks, a work queue (a task is removed
//     once delivered or given up), bounded per (department, source) pair,
//     in bytes and in age, so that a receiver that never answers cannot
//     grow it, and a department that causes another's events (a share
//     request, withdrawn and made again) fills only its own share of
//     that department's queue. Tasks queued before the pairs (on
//     WebhookTaskPrefix<dept>) are taken by the same consumer.
//   - WebhookDispatch(dept) is the department's one consumer of the
//     queue, pulled by every node's dispatcher, at most a bounded number
//     of attempts at once on each node (webhook.Config.PerDept), so that
//     one department's receiver that hangs holds only its share of a
//     node's workers, and its tasks waiting out their back-off count
//     against its own consumer's MaxAckPending, not the others'. An
//     attempt that fails is acknowledged negatively with the next wait
//     of the back-off (NakWithDelay); its delivery count is the
//     attempt's number; a node that dies during an attempt leaves the
//     task unacknowledged and another node takes it after AckWait, as
//     the next attempt. The work queue keeps each task in one consumer
//     (the filters do not overlap), so each is attempted by one node at
//     a time.
const (
	WebhookQueueStream    = "XHUB_WEBHOOK_QUEUE"
	WebhookTaskPrefix     = "xhub.whq." // + dept + "." + source
	WebhookEventsConsumer = "xhub_webhook_events"
	// WebhookDispatchPrefix + dept is a department's consumer of the queue.
	WebhookDispatchPrefix = "xhub_webhook_to_"
	// LegacyWebhookDispatchConsumer was the one consumer of every
	// department's tasks; a dispatcher removes it (its filter overlaps
	// the departments'), and the tasks it had are taken by theirs.
	LegacyWebhookDispatchConsumer = "xhub_webhook_dispatch"
	// WebhookDispatchPending bounds one department's tasks in flight or
	// waiting out their back-off, across the deployment.
	WebhookDispatchPending = 1024
	// WebhookTaskDuplicates is how long a task's message id is
	// remembered: well past the events consumer's AckWait.
	WebhookTaskDuplicates = 10 * time.Minute
)

// WebhookTaskSubject is where tasks for dept caused by source wait.
func WebhookTaskSubject(dept, source catalog.DeptID) string {
	return WebhookTaskPrefix + string(dept) + "." + string(source)
}

// WebhookTaskFilters are the subjects of every task of dept: the
// pre-pair form (a deployment upgraded with tasks waiting) and each pair.
func WebhookTaskFilters(dept catalog.DeptID) []string {
	return []string{WebhookTaskPrefix + string(dept), WebhookTaskPrefix + string(dept) + ".>"}
}

// WebhookTaskDept is the department a task subject is for ("" for a
// subject of no department).
func WebhookTaskDept(subject string) catalog.DeptID {
	rest, ok := strings.CutPrefix(subject, WebhookTaskPrefix)
	if !ok {
		return ""
	}
	dept, _, _ := strings.Cut(rest, ".")
	if !catalog.DeptID(dept).Valid() {
		return ""
	}
	return catalog.DeptID(dept)
}

// WebhookQueueLimits bound XHUB_WEBHOOK_QUEUE. Zero values: the defaults.
type WebhookQueueLimits struct {
	// PerSource: tasks one department may have waiting from events one
	// source department caused (1000); more are dropped and recorded so.
	PerSource int64
	MaxBytes  int64         // the whole queue (64 MiB)
	MaxAge    time.Duration // a task not delivered by then is removed unrecorded (24h); longer than any back-off
}

// Defaults of WebhookQueueLimits.
const (
	DefaultWebhookQueuePerSource = 1000
	DefaultWebhookQueueMaxBytes  = 64 << 20
	DefaultWebhookQueueMaxAge    = 24 * time.Hour
)

// WithDefaults fills the zero values.
func (l WebhookQueueLimits) WithDefaults() WebhookQueueLimits {
	if l.PerSource <= 0 {
		l.PerSource = DefaultWebhookQueuePerSource
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultWebhookQueueMaxBytes
	}
	if l.MaxAge <= 0 {
		l.MaxAge = DefaultWebhookQueueMaxAge
	}
	return l
}

// WebhookQueue is the stream of webhook delivery tasks: a full pair
// (PerSource) or a full queue (MaxBytes) refuses new tasks and never
// drops waiting ones.
func WebhookQueue(replicas int, l WebhookQueueLimits) jetstream.StreamConfig {
	l = l.WithDefaults()
	return jetstream.StreamConfig{
		Name: WebhookQueueStream, Description: "xhub webhook delivery tasks (work queue)",
		Subjects: []string{WebhookTaskPrefix + ">"}, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		Retention: jetstream.WorkQueuePolicy, MaxMsgsPerSubject: l.PerSource, MaxBytes: l.MaxBytes, MaxAge: l.MaxAge,
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

// WebhookDispatch is dept's consumer of XHUB_WEBHOOK_QUEUE: attempts is
// the most attempts of a task (one delivery each, the server stops
// after one more, which only records the failure of an attempt cut
// short), ackWait how long a node has for one (past it, another node
// takes the task). Every node makes it alike; the server removes it an
// hour after no node pulled it (no task of dept waited), and the tasks
// a removed one had are taken by the next.
func WebhookDispatch(dept catalog.DeptID, attempts int, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable: WebhookDispatchPrefix + string(dept), Description: "xhub: webhook deliveries to " + string(dept),
		FilterSubjects: WebhookTaskFilters(dept),
		DeliverPolicy:  jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: ackWait, MaxDeliver: attempts + 1, MaxAckPending: WebhookDispatchPending,
		InactiveThreshold: time.Hour,
		Metadata:          map[string]string{MetaHub: "webhooks"},
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
