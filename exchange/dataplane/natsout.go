package dataplane

import (
	"context"
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
// permission.
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
	for {
		advanced := grants.Advanced()
		want := map[exchange.GrantPair]bool{}
		for _, gp := range grants.ActiveGrantPairs(p.cfg.Now()) {
			want[key(gp)] = true
		}
		failed := false
		for k, r := range feeds {
			select {
			case <-r.done:
				delete(feeds, k)
				failed = failed || want[k]
				continue
			default:
			}
			if !want[k] {
				r.cancel()
				<-r.done
				delete(feeds, k)
			}
		}
		for k := range want {
			if _, ok := feeds[k]; ok {
				continue
			}
			fctx, cancel := context.WithCancel(ctx)
			r := running{cancel: cancel, done: make(chan struct{})}
			feeds[k] = r
			go func() {
				defer close(r.done)
				p.feed(fctx, k.Dept, k.Dataset)
			}()
		}
		if failed {
			retry.Reset(time.Second) // a feed ended while its grant stands: again, soon
		}
		select {
		case <-ctx.Done():
			for _, r := range feeds {
				r.cancel()
				<-r.done
			}
			return
		case <-advanced:
		case <-retry.C:
		}
	}
}

// feed publishes dept's records of ds to its delivery subject until ctx
// ends or the grant does.
func (p *Plane) feed(ctx context.Context, dept catalog.DeptID, ds catalog.DatasetID) {
	caller := vocab.Identity{Dept: dept, Role: vocab.RoleSystem, Name: "nats-delivery"}
	sub, err := p.subscribe(ctx, caller, SubscribeInput{Dataset: ds, Name: bus.OutSubscription, From: "new"}, false)
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
		}
	}
}
