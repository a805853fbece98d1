package dataplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
)

// deptCounter bounds something a department holds open on this node
// (subscriptions, provider streams).
type deptCounter struct {
	what string
	mu   sync.Mutex
	n    map[catalog.DeptID]int
	max  int
}

func newDeptCounter(what string, max int) *deptCounter {
	return &deptCounter{what: what, n: map[catalog.DeptID]int{}, max: max}
}

// take counts one more for d, or refuses with RESOURCE_EXHAUSTED; the
// returned release (idempotent) gives it back.
func (c *deptCounter) take(d catalog.DeptID) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[d] >= c.max {
		return nil, vocab.Exhausted("dept:"+string(d), "department %s has %d %s open on this hub node, the most it allows (%d): close one first", d, c.n[d], c.what, c.max)
	}
	c.n[d]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.n[d]--; c.n[d] == 0 {
				delete(c.n, d)
			}
			c.mu.Unlock()
		})
	}, nil
}

// SubscriptionInfo describes one durable subscription.
type SubscriptionInfo struct {
	Dept       catalog.DeptID
	Dataset    catalog.DatasetID
	Name       string
	CreatedBy  string
	Created    time.Time
	Pending    uint64 // batches stored and not yet delivered
	AckPending int    // batches delivered and not yet acknowledged
	Open       bool   // a subscriber is connected (to some node)
	IdleExpiry time.Duration
	// Internal is the hub part that owns one of the hub's own
	// subscriptions (bus.MetaInternal), "" for a department's.
	Internal string
	ackFloor uint64 // the stream sequence up to which all is acknowledged
}

func subscriptionInfo(ci *jetstream.ConsumerInfo) (SubscriptionInfo, bool) {
	if !strings.HasPrefix(ci.Name, bus.SubscriptionPrefix) {
		return SubscriptionInfo{}, false
	}
	md := ci.Config.Metadata
	si := SubscriptionInfo{
		Dept: catalog.DeptID(md[bus.MetaDept]), Dataset: catalog.DatasetID(md[bus.MetaDataset]), Name: md[bus.MetaName],
		CreatedBy: md[bus.MetaCreatedBy], Created: ci.Created, Pending: ci.NumPending, AckPending: ci.NumAckPending,
		Open: ci.NumWaiting > 0, IdleExpiry: ci.Config.InactiveThreshold,
		Internal: md[bus.MetaInternal], ackFloor: ci.AckFloor.Stream,
	}
	if si.Dept == "" || si.Dataset == "" || si.Name == "" {
		// Made before subscriptions carried metadata: the name says it.
		parts := strings.Split(strings.TrimPrefix(ci.Name, bus.SubscriptionPrefix), "_")
		if len(parts) != 4 {
			return SubscriptionInfo{}, false
		}
		si.Dept, si.Dataset, si.Name = catalog.DeptID(parts[0]), catalog.DatasetID(parts[1]+"."+parts[2]), parts[3]
	}
	if si.Internal == "" && si.Name == bus.OutSubscription {
		// The NATS delivery as nodes made it before it was marked the
		// hub's (with a maker, <dept>/system/nats-delivery, that holds
		// no credential): the name is the hub's alone (Subscribe refuses
		// it).
		si.Internal, si.CreatedBy = bus.InternalNATSDelivery, ""
	}
	return si, true
}

// durableSpec says which consumer a subscription is served from.
type durableSpec struct {
	fromBeginning bool
	// bounded counts it against the department's bounds on
	// subscriptions.
	bounded bool
	// internal marks one of the hub's own consumers (bus.MetaInternal):
	// made by no identity, so never judged by a department's
	// credentials.
	internal string
	// resumeAt, when set, is where a hub consumer made again starts: the
	// stream sequence after the last its position covered.
	resumeAt uint64
}

// durable returns the subscription's consumer, making it if it does not
// exist yet, within the department's bound on durable subscriptions.
func (p *Plane) durable(ctx context.Context, caller vocab.Identity, ds catalog.DatasetID, name string, d durableSpec) (jetstream.Consumer, error) {
	cname := bus.SubscriptionConsumerName(string(caller.Dept), string(ds), name)
	cons, err := p.js.Consumer(ctx, bus.DataStream, cname)
	if err == nil {
		return p.keepCurrent(ctx, cons, d.internal), nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("subscription consumer: %w", err)
	}
	// One creation at a time on this node, so the count cannot be raced
	// past the bound from here. (Nodes racing each other can overshoot it
	// by at most one each.)
	p.durableMu.Lock()
	defer p.durableMu.Unlock()
	n, err := p.countDurable(ctx, caller.Dept)
	if err != nil {
		return nil, err
	}
	if d.bounded && n >= p.cfg.MaxDurableSubscriptions {
		return nil, vocab.Exhausted("dept:"+string(caller.Dept), "department %s has %d durable subscriptions, the most the hub allows (%d): delete one with `xhub subscription delete NAME`, or reuse a name", caller.Dept, n, p.cfg.MaxDurableSubscriptions)
	}
	spec := bus.SubscriptionSpec{
		Dept: string(caller.Dept), Dataset: string(ds), Name: name, FromBeginning: d.fromBeginning, StartSeq: d.resumeAt,
		Idle: p.cfg.SubscriptionIdle, AckWait: p.cfg.SubscriptionRedelivery,
	}
	if d.internal != "" {
		spec.Internal = d.internal
	} else {
		spec.CreatedBy = caller.URI()
	}
	cons, err = p.js.CreateConsumer(ctx, bus.DataStream, bus.Subscription(spec))
	if errors.Is(err, jetstream.ErrMaximumConsumersLimit) {
		p.lg.Error("the NATS server's consumer limit is reached", "dept", caller.Dept, "err", err)
		return nil, vocab.Exhausted("hub", "the hub holds as many subscriptions as its NATS server allows: the operator must lower --max-subscriptions or raise the server's limit")
	}
	if err != nil {
		return nil, fmt.Errorf("subscription consumer: %w", err)
	}
	if d.internal != "" {
		p.lg.Info("subscription made", "dept", caller.Dept, "dataset", ds, "name", name, "by", "hub "+d.internal, "resume_at", d.resumeAt)
	} else {
		p.lg.Info("subscription made", "dept", caller.Dept, "dataset", ds, "name", name, "by", caller.URI())
	}
	return cons, nil
}

// keepCurrent brings a consumer an older node made, or one made by a node
// configured otherwise, to this node's terms: the AckWait this node keeps
// in progress (Config.SubscriptionRedelivery), and, for one of the hub's
// own, its mark without a maker (older nodes named the NATS delivery's
// maker, and their sweeps removed it). A consumer that cannot be updated
// is used as it is.
func (p *Plane) keepCurrent(ctx context.Context, cons jetstream.Consumer, internal string) jetstream.Consumer {
	cfg := cons.CachedInfo().Config
	changed := false
	if cfg.AckWait != p.cfg.SubscriptionRedelivery {
		cfg.AckWait, changed = p.cfg.SubscriptionRedelivery, true
	}
	if internal != "" && (cfg.Metadata[bus.MetaInternal] != internal || cfg.Metadata[bus.MetaCreatedBy] != "") {
		md := maps.Clone(cfg.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		delete(md, bus.MetaCreatedBy)
		md[bus.MetaInternal] = internal
		cfg.Metadata, changed = md, true
	}
	if !changed {
		return cons
	}
	updated, err := p.js.UpdateConsumer(ctx, bus.DataStream, cfg)
	if err != nil {
		p.lg.Warn("subscription kept as it was made", "consumer", cfg.Durable, "err", err)
		return cons
	}
	return updated
}

func (p *Plane) countDurable(ctx context.Context, dept catalog.DeptID) (int, error) {
	stream, err := p.js.Stream(ctx, bus.DataStream)
	if err != nil {
		return 0, err
	}
	prefix := bus.DeptSubscriptionPrefix(string(dept))
	names := stream.ConsumerNames(ctx)
	n := 0
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix) && !strings.HasSuffix(name, "_"+bus.OutSubscription) {
			n++
		}
	}
	if err := names.Err(); err != nil {
		return 0, fmt.Errorf("count subscriptions: %w", err)
	}
	return n, nil
}

// eachSubscription calls fn for every durable subscription (of dept, if
// set).
func (p *Plane) eachSubscription(ctx context.Context, dept catalog.DeptID, fn func(SubscriptionInfo)) error {
	stream, err := p.js.Stream(ctx, bus.DataStream)
	if err != nil {
		return err
	}
	prefix := bus.SubscriptionPrefix
	if dept != "" {
		prefix = bus.DeptSubscriptionPrefix(string(dept))
	}
	l := stream.ListConsumers(ctx)
	for ci := range l.Info() {
		if !strings.HasPrefix(ci.Name, prefix) {
			continue
		}
		if si, ok := subscriptionInfo(ci); ok {
			fn(si)
		}
	}
	return l.Err()
}

// ListSubscriptions lists the durable subscriptions a viewer may see: its
// own department's (the operator: every department's, or dept's).
func (p *Plane) ListSubscriptions(ctx context.Context, viewer vocab.Identity, dept catalog.DeptID, dataset catalog.DatasetID) ([]SubscriptionInfo, error) {
	switch {
	case viewer.Role == vocab.RoleAdmin:
	case dept == "" || dept == viewer.Dept:
		dept = viewer.Dept
	default:
		return nil, vocab.Denied("%s: a department sees only its own subscriptions, not those of %s", viewer.URI(), dept)
	}
	var out []SubscriptionInfo
	err := p.eachSubscription(ctx, dept, func(si SubscriptionInfo) {
		if dataset == "" || si.Dataset == dataset {
			out = append(out, si)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return out, nil
}

// DeleteSubscription deletes one of the caller's department's durable
// subscriptions, its position with it. Without a dataset the name must be
// unique among the department's subscriptions. A subscriber still
// connected is ended.
func (p *Plane) DeleteSubscription(ctx context.Context, caller vocab.Identity, dataset catalog.DatasetID, name string) (SubscriptionInfo, error) {
	if err := ValidateSubName(name); err != nil {
		return SubscriptionInfo{}, err
	}
	subs, err := p.ListSubscriptions(ctx, caller, caller.Dept, dataset)
	if err != nil {
		return SubscriptionInfo{}, err
	}
	var match []SubscriptionInfo
	for _, si := range subs {
		if si.Name == name {
			match = append(match, si)
		}
	}
	switch {
	case len(match) == 0:
		return SubscriptionInfo{}, vocab.NotFound("department %s has no subscription named %q%s", caller.Dept, name, onDataset(dataset))
	case len(match) > 1:
		var ds []string
		for _, si := range match {
			ds = append(ds, string(si.Dataset))
		}
		return SubscriptionInfo{}, vocab.Invalid("dataset", "subscription %q exists on %s: name the dataset", name, strings.Join(ds, ", "))
	}
	si := match[0]
	if si.Internal != "" {
		// The hub's own NATS feed stands while the grant does: only the
		// grant's end removes it (a department that wants no records on
		// NATS closes its connections).
		return SubscriptionInfo{}, vocab.Precondition("HUB_INTERNAL", "subscription", "subscription %q%s is the hub's own NATS delivery for the department's integrators: it ends with the grant, not by hand", name, onDataset(si.Dataset))
	}
	if si.Open {
		// Its subscriber's node would make it again where it stood (a
		// consumer removed under a reader under a grant is taken for a
		// sweep's mistake, Subscription.remake).
		return SubscriptionInfo{}, vocab.Precondition("SUBSCRIPTION_OPEN", "subscription", "subscription %q%s has a subscriber reading it: close the subscriber first, then delete it", name, onDataset(si.Dataset))
	}
	if err := p.js.DeleteConsumer(ctx, bus.DataStream, bus.SubscriptionConsumerName(string(si.Dept), string(si.Dataset), si.Name)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return SubscriptionInfo{}, fmt.Errorf("delete subscription: %w", err)
	}
	p.lg.Info("subscription deleted", "dept", si.Dept, "dataset", si.Dataset, "name", si.Name, "by", caller.URI())
	return si, nil
}

func onDataset(ds catalog.DatasetID) string {
	if ds == "" {
		return ""
	}
	return " on " + string(ds)
}

// cleanupLoop removes durable subscriptions whose grant ended (revoked,
// expired, dataset retired) or, for a department's own, whose maker's
// credentials are all revoked: when this node applies an entry that ends
// access, and every Config.SubscriptionSweep. It decides on the caught-up
// state, never on an old entry, so a node catching up on the log does not
// delete a subscription made under a later grant. The hub's own
// subscriptions (the NATS delivery) have no maker: only their grant ends
// them.
func (p *Plane) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.SubscriptionSweep)
	defer t.Stop()
	for {
		ended := p.cp.AccessEnded()
		if err := p.cleanup(ctx); err != nil && ctx.Err() == nil {
			p.lg.Warn("subscription cleanup", "err", err)
		} else if err == nil {
			p.sweeps.Add(1)
			p.m.sweeps.Inc()
		}
		select {
		case <-ctx.Done():
			return
		case <-ended:
		case <-t.C:
		}
	}
}

// SubscriptionSweeps counts the passes of this node's subscription sweep
// that completed.
func (p *Plane) SubscriptionSweeps() uint64 { return p.sweeps.Load() }

func (p *Plane) cleanup(ctx context.Context) error {
	if p.cp.Integrity() != nil {
		return nil // a node whose state does not verify decides nothing
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The subscriptions first, then the state they are judged on: every
	// one listed was made after its grant and its maker's credential were
	// in the log, so a state caught up after the listing holds them (the
	// other order removed a subscription made while this node caught up,
	// its maker's credential not yet applied here).
	var subs []SubscriptionInfo
	if err := p.eachSubscription(cctx, "", func(si SubscriptionInfo) { subs = append(subs, si) }); err != nil {
		return err
	}
	if err := p.cp.CatchUp(cctx); err != nil {
		return err
	}
	now := p.cfg.Now()
	live := p.cp.IdentitiesWithCredential()
	var gone []SubscriptionInfo
	var why []string
	for _, si := range subs {
		reason := ""
		ds, err := p.cp.Dataset(si.Dataset)
		switch {
		case err != nil || ds.Status != catalog.StatusPublished:
			reason = "dataset retired"
		case si.Dept != ds.Owner():
			if _, err := p.cp.CheckAccess(si.Dept, si.Dataset, now); err != nil {
				reason = "grant ended"
			}
		}
		if reason == "" && si.Internal == "" && si.CreatedBy != "" && !live[si.CreatedBy] {
			reason = "its maker's credentials are revoked"
		}
		if reason != "" {
			gone, why = append(gone, si), append(why, reason)
		} else if si.Internal == bus.InternalNATSDelivery {
			p.feeds.sawFloor(bus.SubscriptionConsumerName(string(si.Dept), string(si.Dataset), si.Name), si.ackFloor)
		}
	}
	for i, si := range gone {
		err := p.js.DeleteConsumer(cctx, bus.DataStream, bus.SubscriptionConsumerName(string(si.Dept), string(si.Dataset), si.Name))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		if si.Internal != "" {
			// Its grant ended: a feed made under a later grant starts
			// from then, not where this one stood.
			p.feeds.forget(bus.SubscriptionConsumerName(string(si.Dept), string(si.Dataset), si.Name))
		}
		p.lg.Info("subscription removed", "dept", si.Dept, "dataset", si.Dataset, "name", si.Name, "reason", why[i])
	}
	return nil
}
