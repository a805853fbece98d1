// Package webhook owns the posting of departments' events to the URLs
// they set (ledger.KindDeptWebhook): each event the ledger holds for a
// department with a webhook becomes a durable task in JetStream, made
// once whichever node takes the entry, posted by whichever node takes
// the task, as a JSON body signed with HMAC-SHA256 under a secret every
// node derives alike, retried with back-off across nodes (a node that
// dies mid-schedule leaves the rest of the attempts to another), each
// outcome recorded in the XHUB_WEBHOOKS stream for the department to
// read, and redelivered on its officer's word (Redeliver). The streams
// and consumers are in internal/bus (layout.go).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/internal/bus"
)

// Headers of a delivery.
const (
	HeaderEvent     = "X-Xhub-Event"
	HeaderDelivery  = "X-Xhub-Delivery"
	HeaderTimestamp = "X-Xhub-Timestamp"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, under the
	// department's secret, of the timestamp, ".", and the body.
	HeaderSignature = "X-Xhub-Signature-256"
)

// Sign is the signature of a delivery's timestamp and body.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Source is what the dispatcher asks the control plane.
type Source interface {
	Webhook(dept catalog.DeptID) (catalog.Webhook, bool)
	// EntryEvents are the events ledger entry seq holds.
	EntryEvents(ctx context.Context, seq uint64) ([]exchange.DeptEvent, error)
}

var _ Source = (*exchange.ControlPlane)(nil)

// Config configures the dispatcher. Zero values are the defaults.
type Config struct {
	JS jetstream.JetStream // required: the task queue and the delivery records
	CP Source              // required
	// Secret is dept's signing secret for the webhook set by entry seq.
	Secret func(dept catalog.DeptID, seq uint64) []byte // required
	// AllowPrivate lets webhooks reach any address (tests, or a hub whose
	// departments sit on a private network). Off, only globally routable
	// unicast addresses (CheckPublic): a department cannot make the hub
	// call into the hub's own network.
	AllowPrivate bool
	// NoDispatch: this node makes tasks from the ledger but posts none
	// (a node with no route to the departments' receivers); the others
	// post them.
	NoDispatch bool
	Log        *slog.Logger
	// Backoff is the wait before each retry: a task is attempted
	// len(Backoff)+1 times at most. Zero: 0.5s, 1s, 2s, 4s, 8s.
	Backoff []time.Duration
	// Timeout bounds one attempt. Zero: 5s.
	Timeout time.Duration
	// ConnectTimeout bounds the connecting of one attempt (a receiver
	// whose address drops the hub's packets fails fast, not after the
	// whole Timeout). Zero: 2s, or Timeout if that is less.
	ConnectTimeout time.Duration
	// Workers bounds the attempts this node makes at once. Zero: 16.
	Workers int
	// PerDept bounds the attempts this node makes at once for one
	// department: a receiver that hangs holds at most that many of the
	// Workers, and the other departments' deliveries go on. Zero: a
	// quarter of Workers, at least 1.
	PerDept int
	// Scan is how often this node looks for departments with tasks
	// waiting that another node queued (its own are seen at once).
	// Zero: 1s.
	Scan time.Duration
}

func (c *Config) validate() error {
	if c.JS == nil || c.CP == nil || c.Secret == nil {
		return errors.New("webhook: Config.JS, CP and Secret are required")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	for _, b := range c.Backoff {
		if b <= 0 {
			return fmt.Errorf("webhook: back-off %v: each wait is more than 0", c.Backoff)
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = min(2*time.Second, c.Timeout)
	}
	if c.ConnectTimeout > c.Timeout {
		return fmt.Errorf("webhook: connect timeout %s is more than the attempt's timeout %s", c.ConnectTimeout, c.Timeout)
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.PerDept <= 0 {
		c.PerDept = max(1, c.Workers/4)
	}
	if c.PerDept > c.Workers {
		return fmt.Errorf("webhook: %d attempts at once per department is more than the node's %d workers", c.PerDept, c.Workers)
	}
	if c.Scan <= 0 {
		c.Scan = time.Second
	}
	return nil
}

// DefaultBackoff is the waits before the retries of a delivery.
var DefaultBackoff = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

// AckWait is how long a node has for one attempt of a task before
// another node takes it: the attempt's timeout, and time to record it.
func (c *Config) ackWait() time.Duration { return c.Timeout + 10*time.Second }

// Delivery is the record of one event's delivery.
type Delivery struct {
	ID       string    `json:"id"`
	Event    string    `json:"event"`
	Subject  string    `json:"subject"` // the request, grant or dispute
	URL      string    `json:"url"`
	Status   string    `json:"status"` // delivered | failed | dropped
	Attempts int       `json:"attempts"`
	Code     int       `json:"code,omitempty"` // the last HTTP status
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at"`
	// Source is the department whose act the event is (the department
	// itself for a redelivery): the records of each source are bounded
	// apart (bus.WebhookRecordSubject).
	Source string    `json:"source,omitempty"`
	Entry  uint64    `json:"entry,omitempty"`          // the ledger entry of the event
	Time   time.Time `json:"time,omitzero"`            // the event's (the entry's) time
	By     string    `json:"redelivered_by,omitempty"` // who asked for it again
}

// Statuses of a delivery record.
const (
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
	StatusDropped   = "dropped"
)

// Body is what is posted.
type Body struct {
	Delivery string    `json:"delivery"`
	Event    string    `json:"event"`
	ID       string    `json:"id"` // the request, grant or dispute it is about
	Dept     string    `json:"dept"`
	Time     time.Time `json:"time"`
}

// Task is a delivery waiting in XHUB_WEBHOOK_QUEUE.
type Task struct {
	ID   string         `json:"id"` // the delivery's: "<entry>-<dept>", kept by retries and redeliveries
	Dept catalog.DeptID `json:"dept"`
	// Source: the department whose act the event is, or Dept for a
	// redelivery; the queue bounds each (Dept, Source) apart. "" in a
	// task queued before sources were.
	Source  catalog.DeptID `json:"source,omitempty"`
	Event   string         `json:"event"`
	Subject string         `json:"subject"`
	Entry   uint64         `json:"entry"`
	Time    time.Time      `json:"time"`
	By      string         `json:"redelivered_by,omitempty"`
}

// DecodeTask reads a task from the queue: a department id, a delivery
// id and an event kind are required.
func DecodeTask(b []byte) (Task, error) {
	var t Task
	if err := json.Unmarshal(b, &t); err != nil {
		return Task{}, fmt.Errorf("webhook task: %w", err)
	}
	if _, err := catalog.ParseDeptID(string(t.Dept)); err != nil {
		return Task{}, fmt.Errorf("webhook task: %w", err)
	}
	if t.Source != "" {
		if _, err := catalog.ParseDeptID(string(t.Source)); err != nil {
			return Task{}, fmt.Errorf("webhook task: source: %w", err)
		}
	}
	if t.ID == "" || len(t.ID) > 64 || t.Event == "" || len(t.Event) > 64 || len(t.Subject) > 128 {
		return Task{}, fmt.Errorf("webhook task: id %q, event %q, subject %q: want an id and an event of at most 64 bytes, a subject of at most 128", t.ID, t.Event, t.Subject)
	}
	return t, nil
}

// DeliveryID is the id of the delivery of the event entry seq holds
// for dept.
func DeliveryID(seq uint64, dept catalog.DeptID) string {
	return strconv.FormatUint(seq, 10) + "-" + string(dept)
}

// Dispatcher makes and posts the deliveries.
type Dispatcher struct {
	cfg     Config
	client  *http.Client
	metrics metrics

	// Dispatching (Run): one loop per department with tasks waiting, the
	// node's workers shared among them.
	workers chan struct{}
	wake    chan catalog.DeptID
	wg      sync.WaitGroup
	mu      sync.Mutex
	loops   map[catalog.DeptID]*deptLoop
	queued  map[catalog.DeptID]bool // as the last scan found
}

// deptLoop is a department's loop on this node: its attempts under way
// (at most PerDept), and whether it was told of a new task.
type deptLoop struct {
	slots chan struct{}
	poked bool
}

// New makes a dispatcher; Run runs it.
func New(cfg Config) (*Dispatcher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{cfg: cfg, metrics: newMetrics(), workers: make(chan struct{}, cfg.Workers), wake: make(chan catalog.DeptID, 64),
		loops: map[catalog.DeptID]*deptLoop{}, queued: map[catalog.DeptID]bool{}}
	d.client = d.newClient()
	return d, nil
}

// Run makes tasks from the ledger and (unless NoDispatch) posts them,
// until ctx ends; it then waits for the attempts under way, which end
// with ctx and leave their tasks to another node at once.
func (d *Dispatcher) Run(ctx context.Context) error {
	// One producer per node: an entry's events are quick to find.
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.pull(ctx, bus.LedgerStream, bus.WebhookEvents(0), 16, d.produce)
	}()
	if !d.cfg.NoDispatch {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.dispatch(ctx)
		}()
	}
	d.wg.Wait()
	return nil
}

// dispatch runs a loop for each department with tasks waiting: those
// the queue holds (looked at every Scan) and those this node has just
// queued.
func (d *Dispatcher) dispatch(ctx context.Context) {
	tick := time.NewTicker(d.cfg.Scan)
	defer tick.Stop()
	for {
		d.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case dept := <-d.wake:
			d.start(ctx, dept)
		}
	}
}

// scan finds the departments whose tasks the queue holds (waiting,
// under way or waiting out a back-off) and starts the loops not running.
func (d *Dispatcher) scan(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := d.cfg.JS.Stream(sctx, bus.WebhookQueueStream)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = s.Info(sctx, jetstream.WithSubjectFilter(bus.WebhookTaskPrefix+">"))
	}
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Log.Debug("webhook queue not scanned", "err", err)
		}
		return
	}
	found := map[catalog.DeptID]bool{}
	for subj, n := range info.State.Subjects {
		if dept := bus.WebhookTaskDept(subj); dept != "" && n > 0 {
			found[dept] = true
		}
	}
	d.mu.Lock()
	d.queued = found
	d.mu.Unlock()
	for dept := range found {
		d.start(ctx, dept)
	}
}

// poke tells the dispatcher that this node queued a task for dept.
func (d *Dispatcher) poke(dept catalog.DeptID) {
	if d.cfg.NoDispatch {
		return
	}
	select {
	case d.wake <- dept:
	default: // the next scan finds it
	}
}

// start runs dept's loop unless it runs; one that runs is told to look
// again before it ends.
func (d *Dispatcher) start(ctx context.Context, dept catalog.DeptID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l, ok := d.loops[dept]; ok {
		l.poked = true
		return
	}
	if ctx.Err() != nil {
		return
	}
	l := &deptLoop{slots: make(chan struct{}, d.cfg.PerDept)}
	d.loops[dept] = l
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.serveDept(ctx, dept, l)
	}()
}

// done ends dept's loop unless it has attempts under way, was told of a
// task, or the last scan found tasks of dept.
func (d *Dispatcher) done(dept catalog.DeptID, l *deptLoop) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l.poked || d.queued[dept] || len(l.slots) > 0 {
		l.poked = false
		return false
	}
	delete(d.loops, dept)
	return true
}

// serveDept takes dept's tasks from its consumer, one at a time, each
// only when dept has fewer than PerDept attempts under way on this
// node (a task is fetched only when it can be attempted here: none
// waits behind dept's bound while its AckWait runs), each attempted
// once one of the node's workers is free.
func (d *Dispatcher) serveDept(ctx context.Context, dept catalog.DeptID, l *deptLoop) {
	cc := bus.WebhookDispatch(dept, len(d.cfg.Backoff)+1, d.cfg.ackWait())
	var cons jetstream.Consumer
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var err error
		if cons == nil {
			cons, err = d.deptConsumer(ctx, cc)
		}
		var m jetstream.Msg
		if err == nil {
			m, err = fetchOne(ctx, cons)
		}
		if m == nil {
			<-l.slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			cons = nil
			d.cfg.Log.Warn("webhook consumer not reachable; retrying", "consumer", cc.Durable, "in", wait, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
			if d.done(dept, l) {
				return
			}
			continue
		}
		wait = 100 * time.Millisecond
		if m == nil {
			if d.done(dept, l) {
				return
			}
			continue
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer func() { <-l.slots }()
			if d.worker(ctx, m) {
				defer func() { <-d.workers }()
				d.attempt(ctx, m)
			}
		}()
	}
}

// worker waits for one of the node's workers for task m, telling the
// server the task is in hand while it waits (waiters are served in
// turn, and a department has at most PerDept of them). It reports false,
// and hands the task back, if ctx ends first.
func (d *Dispatcher) worker(ctx context.Context, m jetstream.Msg) bool {
	select {
	case d.workers <- struct{}{}:
		return true
	default:
	}
	tick := time.NewTicker(max(d.cfg.ackWait()/3, time.Second))
	defer tick.Stop()
	for {
		select {
		case d.workers <- struct{}{}:
			return true
		case <-tick.C:
			_ = m.InProgress()
		case <-ctx.Done():
			_ = m.Nak()
			return false
		}
	}
}

// deptConsumer makes (or brings to this node's settings) a department's
// consumer of the queue. The one consumer of every department's tasks
// that deployments had before overlaps it: it is removed (the tasks it
// had wait in the queue, and the departments' consumers take them).
func (d *Dispatcher) deptConsumer(ctx context.Context, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := d.cfg.JS.Stream(ctx, bus.WebhookQueueStream)
	if err != nil {
		return nil, err
	}
	c, err := s.CreateOrUpdateConsumer(ctx, cc)
	if err == nil {
		return c, nil
	}
	if derr := s.DeleteConsumer(ctx, bus.LegacyWebhookDispatchConsumer); derr != nil {
		return nil, err
	}
	d.cfg.Log.Info("webhook: the consumer of every department's tasks removed; each department's takes its tasks", "consumer", bus.LegacyWebhookDispatchConsumer)
	return s.CreateOrUpdateConsumer(ctx, cc)
}

// fetchOne takes one task, waiting at most 5s for it (nil: none came).
func fetchOne(ctx context.Context, cons jetstream.Consumer) (jetstream.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msgs, err := cons.Fetch(1, jetstream.FetchContext(fctx))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, nil
		}
		return nil, err
	}
	var got jetstream.Msg
	for m := range msgs.Messages() {
		got = m
	}
	if err := msgs.Error(); got == nil && err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	return got, nil
}

// pull runs handle on the messages of the durable consumer cc of stream,
// batch at a time (a worker takes a task only when it is free to attempt
// it: nothing waits in this node's memory while its AckWait runs), until
// ctx ends; the consumer is made (again) whenever fetching fails, and a
// cluster that does not answer yet is waited for.
func (d *Dispatcher) pull(ctx context.Context, stream string, cc jetstream.ConsumerConfig, batch int, handle func(context.Context, jetstream.Msg)) {
	wait := 100 * time.Millisecond
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		var err error
		if cons == nil {
			cons, err = d.ensureConsumer(ctx, stream, cc)
		}
		if err == nil {
			if err = d.fetch(ctx, cons, batch, handle); err == nil {
				wait = 100 * time.Millisecond
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		cons = nil
		d.cfg.Log.Warn("webhook consumer not reachable; retrying", "consumer", cc.Durable, "in", wait, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// fetch handles one batch: up to batch messages, waiting at most 5s
// for the first.
func (d *Dispatcher) fetch(ctx context.Context, cons jetstream.Consumer, batch int, handle func(context.Context, jetstream.Msg)) error {
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msgs, err := cons.Fetch(batch, jetstream.FetchContext(fctx))
	if err != nil {
		return err
	}
	for m := range msgs.Messages() {
		handle(ctx, m)
	}
	if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Prepare makes the deployment's consumer of the ledger if no node has
// yet, from the entry after the ledger's last: the node calls
// it before it serves, so that every entry appended through it has its
// events made.
func (d *Dispatcher) Prepare(ctx context.Context) error {
	wait := 100 * time.Millisecond
	for {
		_, err := d.ensureConsumer(ctx, bus.LedgerStream, bus.WebhookEvents(0))
		if err == nil {
			return nil
		}
		d.cfg.Log.Warn("webhook consumer not made yet; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("webhook: the ledger's consumer %s: %w (last: %v)", bus.WebhookEventsConsumer, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// ensureConsumer finds or makes cc. The ledger's consumer is never
// changed once made (where it started is the deployment's); a new one
// starts after the ledger's last entry. The queue's is brought to
// this node's settings.
func (d *Dispatcher) ensureConsumer(ctx context.Context, stream string, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := d.cfg.JS.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	if cc.Durable != bus.WebhookEventsConsumer {
		return s.CreateOrUpdateConsumer(ctx, cc)
	}
	c, err := s.Consumer(ctx, cc.Durable)
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return c, err
	}
	cc = bus.WebhookEvents(s.CachedInfo().State.LastSeq + 1)
	c, err = s.CreateConsumer(ctx, cc)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return s.Consumer(ctx, cc.Durable) // another node made it first
	}
	if err == nil {
		d.cfg.Log.Info("webhook events consumer made", "from_entry", cc.OptStartSeq)
	}
	return c, err
}

// produce queues the tasks of one ledger entry, then acknowledges it. A
// task already queued (the entry taken again after a node died before
// its ack) is the same message id: the queue keeps one.
func (d *Dispatcher) produce(ctx context.Context, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		_ = m.Term()
		return
	}
	seq := meta.Sequence.Stream
	evs, err := d.cfg.CP.EntryEvents(ctx, seq)
	if err != nil {
		d.cfg.Log.Warn("webhook events of an entry not read; left to retry", "entry", seq, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	for _, ev := range evs {
		if _, ok := d.cfg.CP.Webhook(ev.Dept); !ok {
			continue
		}
		src := ev.Source
		if src == "" {
			src = ev.Dept
		}
		t := Task{ID: DeliveryID(seq, ev.Dept), Dept: ev.Dept, Source: src, Event: ev.Kind, Subject: ev.ID, Entry: seq, Time: ev.Time}
		if _, err := enqueue(ctx, d.cfg.JS, t, t.ID); err != nil {
			if ok, why := full(err, t); ok {
				d.dropped(t, why)
				continue
			}
			d.cfg.Log.Warn("webhook task not queued; left to retry", "entry", seq, "dept", ev.Dept, "err", err)
			_ = m.NakWithDelay(time.Second)
			return
		}
		d.poke(t.Dept)
	}
	if err := m.DoubleAck(ctx); err != nil {
		d.cfg.Log.Debug("webhook entry ack", "entry", seq, "err", err)
	}
}

// enqueue publishes t with message id msgID, and says whether the queue
// took it as a duplicate of one it took with that id within
// bus.WebhookTaskDuplicates (then nothing was added).
func enqueue(ctx context.Context, js jetstream.JetStream, t Task, msgID string) (dup bool, err error) {
	b, _ := json.Marshal(t)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	subj := bus.WebhookTaskPrefix + string(t.Dept) // a task of before sources
	if t.Source != "" {
		subj = bus.WebhookTaskSubject(t.Dept, t.Source)
	}
	ack, err := js.Publish(ctx, subj, b, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(bus.WebhookQueueStream))
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// full reports whether err is the queue refusing task t for one of its
// bounds (a store failure, 10077, saying which maximum), and says which.
func full(err error, t Task) (bool, string) {
	var api *jetstream.APIError
	if !errors.As(err, &api) || api.ErrorCode != 10077 || !strings.Contains(api.Description, "maximum") {
		return false, ""
	}
	if strings.Contains(api.Description, "per subject") {
		if t.Source == t.Dept {
			return true, "the department's webhook queue is full for its own redeliveries: its receiver has not taken the deliveries before this one"
		}
		return true, fmt.Sprintf("the department's webhook queue is full for events %s caused: its receiver has not taken the deliveries before this one", t.Source)
	}
	return true, "the hub's webhook queue is full"
}

func (d *Dispatcher) dropped(t Task, why string) {
	d.cfg.Log.Warn("webhook delivery dropped", "dept", t.Dept, "delivery", t.ID, "why", why)
	d.record(t.Dept, Delivery{ID: t.ID, Event: t.Event, Subject: t.Subject, Status: StatusDropped, Error: why, At: time.Now().UTC(), Entry: t.Entry, Time: t.Time, By: t.By, Source: string(t.Source)})
}

// attempt makes one attempt of a task: its delivery count is its number.
// Success or the last failure is recorded and ends the task; an earlier
// failure leaves it to the back-off's next wait, on whichever node.
func (d *Dispatcher) attempt(ctx context.Context, m jetstream.Msg) {
	meta, err := m.Metadata()
	t, terr := DecodeTask(m.Data())
	if err != nil || terr != nil {
		d.cfg.Log.Warn("webhook task not readable; removed", "err", errors.Join(err, terr))
		_ = m.Term()
		return
	}
	n, most := int(meta.NumDelivered), len(d.cfg.Backoff)+1
	del := Delivery{ID: t.ID, Event: t.Event, Subject: t.Subject, Attempts: n, Entry: t.Entry, Time: t.Time, By: t.By, Source: string(t.Source)}
	w, ok := d.cfg.CP.Webhook(t.Dept)
	if !ok {
		del.Status, del.Error, del.Attempts = StatusDropped, "the department's webhook was removed", n-1
		d.finish(t.Dept, del, m)
		return
	}
	del.URL = w.URL
	if n > most { // the last attempt's node stopped before it ended
		del.Status, del.Attempts, del.Error = StatusFailed, most, "the last attempt was cut short: its hub node stopped"
		d.finish(t.Dept, del, m)
		return
	}
	_ = m.InProgress()
	at := t.Time
	if at.IsZero() {
		at = time.Now().UTC()
	}
	body, _ := json.Marshal(Body{Delivery: t.ID, Event: t.Event, ID: t.Subject, Dept: string(t.Dept), Time: at})
	code, err := d.post(ctx, w.URL, t, body, d.cfg.Secret(t.Dept, w.Seq))
	del.Code = code
	switch {
	case err == nil:
		del.Status = StatusDelivered
		d.metrics.attempts.WithLabelValues("ok").Inc()
	case ctx.Err() != nil:
		// This node is stopping: the next attempt, on another node, at once.
		_ = m.Nak()
		return
	default:
		d.metrics.attempts.WithLabelValues("failed").Inc()
		// The department reads what failed; the hub's log keeps the
		// whole error, which may name the hub's resolver and addresses.
		del.Error = describe(err, d.cfg.Timeout, d.cfg.ConnectTimeout)
		d.cfg.Log.Debug("webhook attempt failed", "dept", t.Dept, "delivery", t.ID, "attempt", n, "err", err)
		// A refused address is refused again: no retry.
		if n < most && !errors.Is(err, ErrNotPublic) {
			_ = m.NakWithDelay(d.cfg.Backoff[n-1])
			return
		}
		del.Status = StatusFailed
		d.cfg.Log.Warn("webhook not delivered", "dept", t.Dept, "event", t.Event, "delivery", t.ID, "attempts", n, "err", err, "shown", del.Error)
	}
	d.finish(t.Dept, del, m)
}

// finish records a delivery's outcome and then ends its task (a node
// that dies between the two leaves the task to be taken again).
func (d *Dispatcher) finish(dept catalog.DeptID, del Delivery, m jetstream.Msg) {
	del.At = time.Now().UTC()
	d.record(dept, del)
	d.metrics.deliveries.WithLabelValues(del.Status).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.DoubleAck(ctx); err != nil {
		d.cfg.Log.Warn("webhook task not acknowledged; it may be attempted again", "dept", dept, "delivery", del.ID, "err", err)
	}
}

// newClient is the client deliveries go by: each connection it makes
// passes the guard, no proxy, no redirect followed.
func (d *Dispatcher) newClient() *http.Client {
	connect := d.cfg.ConnectTimeout
	if connect <= 0 || connect > d.cfg.Timeout {
		connect = d.cfg.Timeout
	}
	dialer := &net.Dialer{Timeout: connect, Control: d.control}
	return &http.Client{
		Timeout:   d.cfg.Timeout,
		Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
		// A redirect could lead into the hub's network: not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// control is the guard, run on each connection after the name is
// resolved and before it connects: a name that resolves to a public
// address once and to an internal one the next time (DNS rebinding) is
// caught on the connection that would go inside.
func (d *Dispatcher) control(_, address string, _ syscall.RawConn) error {
	if d.cfg.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &AddrError{Range: fmt.Sprintf("%q is not an IP address and port", address)}
	}
	return CheckPublic(ap.Addr())
}

func (d *Dispatcher) post(ctx context.Context, url string, t Task, body, secret []byte) (int, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "xhub-webhook/1")
	req.Header.Set(HeaderEvent, t.Event)
	req.Header.Set(HeaderDelivery, t.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	res, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, &StatusError{Code: res.StatusCode}
	}
	return res.StatusCode, nil
}

func (d *Dispatcher) record(dept catalog.DeptID, del Delivery) {
	b, _ := json.Marshal(del)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	subj := bus.WebhookPrefix + string(dept) // a task of before sources
	if src, err := catalog.ParseDeptID(del.Source); err == nil {
		subj = bus.WebhookRecordSubject(dept, src)
	}
	if _, err := d.cfg.JS.Publish(ctx, subj, b); err != nil {
		d.cfg.Log.Warn("webhook delivery not recorded", "dept", dept, "err", err)
	}
}

// Deliveries reads dept's last n delivery records, oldest first.
func Deliveries(ctx context.Context, js jetstream.JetStream, dept catalog.DeptID, n int) ([]Delivery, error) {
	out, err := deliveriesSince(ctx, js, dept, time.Time{})
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, err
}

// deliveriesSince reads dept's delivery records, of every source, kept
// since from (zero: all), oldest first.
func deliveriesSince(ctx context.Context, js jetstream.JetStream, dept catalog.DeptID, from time.Time) ([]Delivery, error) {
	stream, err := js.Stream(ctx, bus.WebhookStream)
	if err != nil {
		return nil, err
	}
	cc := jetstream.ConsumerConfig{FilterSubjects: bus.WebhookRecordFilters(dept), AckPolicy: jetstream.AckNonePolicy,
		MemoryStorage: true, InactiveThreshold: time.Minute, DeliverPolicy: jetstream.DeliverAllPolicy,
		Metadata: map[string]string{bus.MetaHub: "webhooks"}}
	if !from.IsZero() {
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	cons, err := stream.CreateConsumer(ctx, cc)
	if err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	total := int(cons.CachedInfo().NumPending)
	var out []Delivery
	for read := 0; read < total; {
		batch, err := cons.Fetch(min(total-read, 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var del Delivery
			if json.Unmarshal(m.Data(), &del) == nil {
				out = append(out, del)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			break
		}
		read += got
	}
	return out, nil
}
