package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
)

// SubscribeInput starts a subscription.
type SubscribeInput struct {
	Dataset catalog.DatasetID
	Name    string // the durable subscription's name; default "default"
	From    string // new (default) or beginning; applies when the subscription is first made
}

// Delivery is one record sent to a subscriber.
type Delivery struct {
	ID          uint64
	Record      []byte
	PublishedAt time.Time
	seq         uint64 // its batch's stream sequence
}

// Subscription streams a dataset's published records to a grantee from a
// durable JetStream consumer per (grantee, name): at least once, each batch
// acknowledged to JetStream when all its records are acknowledged by the
// subscriber. While the subscription is open, the batches its subscriber
// holds are kept in progress (for at most Config.SubscriptionAckTimeout),
// so that the consumer's short AckWait (Config.SubscriptionRedelivery)
// runs out only once this node is gone; closed, it gives them back at
// once.
type Subscription struct {
	p       *Plane
	caller  vocab.Identity
	ds      catalog.Dataset
	name    string
	spec    durableSpec
	out     chan Delivery
	release func()

	mu      sync.Mutex
	iter    jetstream.MessagesContext
	next    uint64 // the stream sequence after the last batch pumped (its position)
	pending map[uint64]*batchState
	held    map[*batchState]struct{} // delivered, not yet acknowledged
	nextID  uint64
	err     error
	remade  int

	cancel context.CancelFunc
	done   chan struct{}
}

type batchState struct {
	msg       jetstream.Msg
	remaining int
	at        time.Time // when it reached this node's subscriber
}

// ValidateSubName checks a subscription name: [a-z0-9-]{1,32}.
func ValidateSubName(s string) error {
	if len(s) == 0 || len(s) > 32 {
		return vocab.Invalid("name", "%q must be 1 to 32 characters", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return vocab.Invalid("name", "%q may contain only a-z, 0-9 and '-'", s)
		}
	}
	return nil
}

// Subscribe opens (or resumes) a subscription.
func (p *Plane) Subscribe(ctx context.Context, caller vocab.Identity, in SubscribeInput) (*Subscription, error) {
	if in.Name == bus.OutSubscription {
		return nil, vocab.Invalid("name", "%q is the name of the hub's own NATS delivery: choose another", in.Name)
	}
	return p.subscribe(ctx, caller, in, durableSpec{bounded: true})
}

// subscribe is Subscribe, with the consumer d says: a department's own
// (bounded: counted against its subscription bounds) or one of the hub's
// (the NATS delivery is neither bounded nor made by the caller).
func (p *Plane) subscribe(ctx context.Context, caller vocab.Identity, in SubscribeInput, d durableSpec) (*Subscription, error) {
	ds, _, err := p.readable(ctx, caller, in.Dataset)
	if err != nil {
		return nil, err
	}
	if in.Name == "" {
		in.Name = "default"
	}
	if err := ValidateSubName(in.Name); err != nil {
		return nil, err
	}
	switch in.From {
	case "", "new":
	case "beginning":
		d.fromBeginning = true
	default:
		return nil, vocab.Invalid("from", "%q is not new or beginning", in.From)
	}
	release := func() {}
	if d.bounded {
		if release, err = p.subs.take(caller.Dept); err != nil {
			return nil, err
		}
	}
	cons, err := p.durable(ctx, caller, ds.ID, in.Name, d)
	if err != nil {
		release()
		return nil, err
	}
	// A short pull expiry: pull iterators sharing one connection now and
	// then stop receiving while the server holds no pull request (seen in
	// xhub bench); the missed heartbeat then re-pulls within seconds.
	iter, err := cons.Messages(jetstream.PullMaxMessages(64), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		release()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Subscription{
		p: p, caller: caller, ds: ds, name: in.Name, spec: d, iter: iter, out: make(chan Delivery, 256), release: release,
		next:    cons.CachedInfo().Delivered.Stream + 1,
		pending: map[uint64]*batchState{}, held: map[*batchState]struct{}{}, cancel: cancel, done: make(chan struct{}),
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.pump(sctx) }()
	go func() { defer wg.Done(); s.watch(sctx) }()
	go func() { defer wg.Done(); s.keep(sctx) }()
	p.m.subs.Inc()
	go func() {
		wg.Wait()
		close(s.out)
		release()
		p.m.subs.Dec()
		close(s.done)
	}()
	return s, nil
}

// Deliveries is closed when the subscription ends; Err then says why.
func (s *Subscription) Deliveries() <-chan Delivery { return s.out }

// Err is why the subscription ended (nil if closed by the subscriber).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription and waits for it. Unacknowledged records
// are delivered again: those the subscriber held at once (to it or
// another subscriber of the same subscription, on any node), those still
// on their way to it after the consumer's AckWait.
func (s *Subscription) Close() {
	s.cancel()
	s.stopIter()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for b := range s.held {
		_ = b.msg.Nak()
		delete(s.held, b)
	}
}

// keep marks the batches the subscriber holds in progress, every third
// of the consumer's AckWait, until each is acknowledged or has been held
// for SubscriptionAckTimeout: while this node serves the subscription,
// JetStream does not deliver them again; once it stops (killed, cut off
// from NATS), they are delivered again within one AckWait.
func (s *Subscription) keep(ctx context.Context) {
	t := time.NewTicker(s.p.cfg.SubscriptionRedelivery / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		s.mu.Lock()
		for b := range s.held {
			if now.Sub(b.at) < s.p.cfg.SubscriptionAckTimeout {
				_ = b.msg.InProgress()
			}
		}
		s.mu.Unlock()
	}
}

func (s *Subscription) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.cancel()
	s.stopIter()
}

func (s *Subscription) stopIter() {
	s.mu.Lock()
	it := s.iter
	s.mu.Unlock()
	it.Stop()
}

// Ack acknowledges deliveries; a batch is acknowledged to JetStream when
// all its records are.
func (s *Subscription) Ack(ids []uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		b, ok := s.pending[id]
		if !ok {
			continue // already acknowledged, or from before a reconnect
		}
		delete(s.pending, id)
		b.remaining--
		if b.remaining == 0 {
			delete(s.held, b)
			if err := b.msg.Ack(); err != nil {
				return err
			}
		}
	}
	return nil
}

// watch ends the subscription when its grant ends: it re-checks the grant
// each time this node applies an entry that ends access (revocation,
// expiry, retirement, a revoked credential) and when the grant's term is
// up by the clock. Nothing polls.
func (s *Subscription) watch(ctx context.Context) {
	for {
		ended := s.p.cp.AccessEnded()
		acc, err := s.p.access(s.caller, s.ds)
		if err != nil {
			s.fail(err)
			return
		}
		var expiry <-chan time.Time
		var t *time.Timer
		if !acc.ExpiresAt.IsZero() {
			t = time.NewTimer(acc.ExpiresAt.Sub(s.p.cfg.Now()))
			expiry = t.C
		}
		select {
		case <-ctx.Done():
		case <-ended:
		case <-expiry:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (s *Subscription) pump(ctx context.Context) {
	for {
		s.mu.Lock()
		iter := s.iter
		s.mu.Unlock()
		m, err := iter.Next()
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			continue // the iterator has already pulled again
		}
		if (errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound)) && ctx.Err() == nil {
			if err = s.remake(ctx); err == nil {
				continue
			}
			if vocab.KindOf(err) != 0 {
				s.fail(err) // the grant ended (PERMISSION_DENIED), the node is behind (UNAVAILABLE), …
				return
			}
		}
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				s.fail(&vocab.Error{Kind: vocab.KindUnavailable, Msg: "subscription: " + err.Error()})
			}
			return
		}
		// The grant is checked before every batch: nothing is sent once
		// this node has applied its revocation.
		acc, err := s.p.access(s.caller, s.ds)
		if err != nil {
			_ = m.Nak()
			s.fail(err)
			return
		}
		batchID, recs, err := decodeBatch(m.Data())
		if err != nil {
			s.p.lg.Error("stored batch is malformed", "dataset", s.ds.ID, "err", err)
			_ = m.Term()
			continue
		}
		md, _ := m.Metadata()
		var at time.Time
		if md != nil {
			at = md.Timestamp
		}
		var seq uint64
		if md != nil {
			seq = md.Sequence.Stream
			s.mu.Lock()
			s.next = max(s.next, seq+1)
			s.mu.Unlock()
		}
		ds := make([]Delivery, 0, len(recs))
		for _, raw := range recs {
			if ctx.Err() != nil {
				return // not acknowledged: delivered again
			}
			rec, err := decodeStoredObject(raw, 64<<20)
			if err != nil {
				continue
			}
			pr, err := projectRaw(raw, rec, acc.Fields)
			if err != nil {
				continue
			}
			ds = append(ds, Delivery{Record: pr, PublishedAt: at, seq: seq})
		}
		if len(ds) == 0 {
			_ = m.Ack()
			continue
		}
		s.mu.Lock()
		st := &batchState{msg: m, remaining: len(ds), at: time.Now()}
		for i := range ds {
			s.nextID++
			ds[i].ID = s.nextID
			s.pending[ds[i].ID] = st
		}
		s.held[st] = struct{}{}
		s.mu.Unlock()
		for _, d := range ds {
			select {
			case s.out <- d:
			case <-ctx.Done():
				return
			}
		}
		s.p.m.delivered.Add(float64(len(ds)))
		s.p.audit.record(AuditEntry{
			RequestID: batchID, Dept: s.caller.Dept, Identity: s.caller.URI(), Dataset: s.ds.ID, Action: ActionDeliver,
			Fields: acc.Fields, Records: int64(len(ds)), Subscription: s.name, Time: s.p.cfg.Now(),
		})
	}
}

// maxRemade bounds how often one subscription's consumer is made again.
const maxRemade = 16

// remake makes the subscription's consumer again where it stood, after it
// was removed while its subscriber reads and its grant holds: a sweep on
// a node behind judged it on a state from before the grant (it lists,
// then catches up, then removes; a new grant's subscriber may resume the
// consumer in between). Left removed, the subscriber's client would make
// it again "from new", and every record stored meanwhile would be lost.
// It starts at the first batch delivered and not acknowledged (given
// again: at least once), else after the last batch delivered. A consumer
// the department removed itself (xhub subscription delete) is not made
// again: DeleteSubscription refuses one a subscriber reads.
func (s *Subscription) remake(ctx context.Context) error {
	if s.spec.internal != "" {
		return jetstream.ErrConsumerDeleted // the NATS feed is made again by its own loop (natsout.go)
	}
	// The removal is itself a sign of a newer entry (a revocation another
	// node's sweep acted on): judged on the log's head, always.
	if err := s.p.cp.CatchUp(ctx); err != nil {
		return err
	}
	if _, _, err := s.p.readableNow(s.caller, s.ds.ID); err != nil {
		return err // the grant, or the dataset, has ended: so does the subscription
	}
	s.mu.Lock()
	if s.remade++; s.remade > maxRemade {
		s.mu.Unlock()
		return fmt.Errorf("its consumer was removed %d times while it was read", s.remade-1)
	}
	at := s.next
	for b := range s.held {
		if md, err := b.msg.Metadata(); err == nil && md.Sequence.Stream < at {
			at = md.Sequence.Stream
		}
	}
	// What was delivered and not acknowledged comes again from the new
	// consumer; acknowledgements of the old deliveries are moot.
	clear(s.held)
	clear(s.pending)
	s.mu.Unlock()
	d := s.spec
	d.bounded, d.fromBeginning, d.resumeAt = false, false, at
	cons, err := s.p.durable(ctx, s.caller, s.ds.ID, s.name, d)
	if err != nil {
		return err
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(64), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.iter
	s.iter = iter
	s.mu.Unlock()
	old.Stop()
	if ctx.Err() != nil {
		iter.Stop()
	}
	s.p.lg.Warn("subscription's consumer was removed while it was read under a grant; made again where it stood", "dept", s.caller.Dept, "dataset", s.ds.ID, "name", s.name, "resume_at", at)
	return nil
}
