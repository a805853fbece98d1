package dataplane

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
)

// ActiveGrants is what the NATS delivery asks the control plane: which
// departments hold active grants on which datasets, and when that may
// have changed.
type ActiveGrants interface {
	ActiveGrantPairs(now time.Time) []exchange.GrantPair
	Advanced() <-chan struct{}
}

var _ ActiveGrants = (*exchange.ControlPlane)(nil)

// PublishedAtHeader carries a delivered record's publication time.
const PublishedAtHeader = "Xhub-Published-At"

// DeliverToNATS feeds NATS-native integrators until ctx ends: for every
// department with an active grant on a dataset, the dataset's records, cut
// to the grant exactly as Exchange.Subscribe cuts them, are published on
// bus.OutSubject(dept, dataset). Each pair is fed by the durable
// subscription bus.OutSubscription, shared by every node (a record is
// published once in the deployment) and not counted against the
// department's bounds. The subject is core NATS: an integrator receives
// what is published while it is connected (durable, acknowledged delivery
// is Exchange.Subscribe). A pair whose grants end stops at once, as any
// subscription does; the hub's auth callout removes the integrator's
// permission. The subscription is the hub's own (bus.MetaInternal): no
// department's credential decides whether it stands, only the grant; one
// removed from outside while its grant stands is made again where it
// stood (feedPositions), not from new.
func (p *Plane) DeliverToNATS(ctx context.Context, grants ActiveGrants) {
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	feeds := map[exchange.GrantPair]running{}
	key := func(gp exchange.GrantPair) exchange.GrantPair {
		return exchange.GrantPair{Dept: gp.Dept, Dataset: gp.Dataset}
	}
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	// A feed that ends on its own (its consumer gone, NATS away) says so
	// here, and is made again at the next retry, without waiting for a
	// ledger entry; held are those waiting for it.
	ended := make(chan struct{}, 1)
	held := map[exchange.GrantPair]bool{}
	for {
		advanced := grants.Advanced()
		want := map[exchange.GrantPair]bool{}
		for _, gp := range grants.ActiveGrantPairs(p.cfg.Now()) {
			want[key(gp)] = true
		}
		for k, r := range feeds {
			select {
			case <-r.done:
				delete(feeds, k)
				if want[k] && !held[k] {
					held[k] = true
					retry.Reset(time.Second) // a feed ended while its grant stands: again, soon
				}
			default:
				if !want[k] {
					r.cancel()
					<-r.done
					delete(feeds, k)
				}
			}
		}
		for k := range held {
			if !want[k] {
				delete(held, k)
			}
		}
		for k := range want {
			if _, ok := feeds[k]; ok || held[k] {
				continue
			}
			fctx, cancel := context.WithCancel(ctx)
			r := running{cancel: cancel, done: make(chan struct{})}
			feeds[k] = r
			go func() {
				defer func() {
					close(r.done)
					select {
					case ended <- struct{}{}:
					default:
					}
				}()
				p.feed(fctx, k.Dept, k.Dataset)
			}()
		}
		names := make(map[string]bool, len(want))
		for k := range want {
			names[outConsumer(k.Dept, k.Dataset)] = true
		}
		p.feeds.keepOnly(names)
		select {
		case <-ctx.Done():
			for _, r := range feeds {
				r.cancel()
				<-r.done
			}
			return
		case <-advanced:
		case <-ended:
		case <-retry.C:
			clear(held)
		}
	}
}

// feed publishes dept's records of ds to its delivery subject until ctx
// ends or the grant does.
func (p *Plane) feed(ctx context.Context, dept catalog.DeptID, ds catalog.DatasetID) {
	caller := vocab.Identity{Dept: dept, Role: vocab.RoleSystem, Name: bus.InternalNATSDelivery}
	cname := outConsumer(dept, ds)
	sub, err := p.subscribe(ctx, caller, SubscribeInput{Dataset: ds, Name: bus.OutSubscription, From: "new"},
		durableSpec{internal: bus.InternalNATSDelivery, resumeAt: p.feeds.resumeAt(cname)})
	if err != nil {
		if ctx.Err() == nil {
			p.lg.Warn("NATS delivery not started", "dept", dept, "dataset", ds, "err", err)
		}
		return
	}
	defer sub.Close()
	subject := bus.OutSubject(string(dept), string(ds))
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-sub.Deliveries():
			if !ok {
				if err := sub.Err(); err != nil && ctx.Err() == nil {
					p.lg.Info("NATS delivery ended", "dept", dept, "dataset", ds, "reason", err)
				}
				return
			}
			m := &nats.Msg{Subject: subject, Data: d.Record, Header: nats.Header{}}
			if !d.PublishedAt.IsZero() {
				m.Header.Set(PublishedAtHeader, d.PublishedAt.UTC().Format(time.RFC3339Nano))
			}
			if err := p.nc.PublishMsg(m); err != nil {
				p.lg.Warn("NATS delivery: publish", "subject", subject, "err", err)
				return // not acknowledged: delivered again by the next feed
			}
			_ = sub.Ack([]uint64{d.ID})
			p.feeds.acked(cname, d.seq)
		}
	}
}

func outConsumer(dept catalog.DeptID, ds catalog.DatasetID) string {
	return bus.SubscriptionConsumerName(string(dept), string(ds), bus.OutSubscription)
}

// feedPositions are where this node last knew each NATS feed's consumer
// stood, so that a feed whose consumer is gone while its grant stands
// (deleted by hand, lost with a NATS server, removed by an older node's
// sweep) is made again there rather than from new: at the ack floor the
// last subscription sweep saw (every node's deliveries acknowledged up to
// it, so nothing is lost; what was acknowledged after it is published
// again), or, before any sweep saw it, after the last batch this node
// published. A pair whose grant ends is forgotten: a later grant's feed
// starts from new.
type feedPositions struct {
	mu  sync.Mutex
	pos map[string]feedPosition // by consumer name
}

type feedPosition struct {
	floor uint64 // the consumer's ack floor, as a sweep saw it
	acked uint64 // the last batch this node's feed acknowledged
}

func newFeedPositions() *feedPositions {
	return &feedPositions{pos: map[string]feedPosition{}}
}

// resumeAt is the stream sequence a feed made again starts at (0: from
// new).
func (f *feedPositions) resumeAt(consumer string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp, ok := f.pos[consumer]
	switch {
	case !ok:
		return 0
	case fp.floor > 0:
		return fp.floor + 1
	case fp.acked > 0:
		return fp.acked + 1
	}
	return 0
}

func (f *feedPositions) acked(consumer string, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.pos[consumer]
	fp.acked = max(fp.acked, seq)
	f.pos[consumer] = fp
}

func (f *feedPositions) sawFloor(consumer string, floor uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.pos[consumer]
	fp.floor = max(fp.floor, floor)
	f.pos[consumer] = fp
}

// keepOnly forgets the feeds whose grant has ended on this node.
func (f *feedPositions) keepOnly(wanted map[string]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.pos {
		if !wanted[c] {
			delete(f.pos, c)
		}
	}
}

func (f *feedPositions) forget(consumer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pos, consumer)
}
