package hub

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/buildinfo"
	"github.com/xhub-gov/xhub/internal/bus"
)

// The metrics an operator pages on (deploy/prometheus/alerts.yml): what
// the node runs, its webhook deliveries, the share requests waiting for
// an answer, the durable consumers of the data stream (subscriptions and
// the NATS feeds) and whether they move, and the JetStream store against
// its bound. Every series is bounded: requests by owning department (the
// departments the operator registered), consumers summed by kind
// (subscription or nats_feed) with the largest and the longest stalled;
// the busiest consumers by name are xhub_subscription_pending's.

// Durable consumer kinds, the kind label's values.
const (
	kindSubscription = "subscription"
	kindNATSFeed     = "nats_feed"
)

// The share requests are counted again (a scan of the requests view) at
// most every requestsMinAge while the log advances, else every
// requestsMaxAge (overdue is a matter of time too).
const (
	requestsMinAge = 5 * time.Second
	requestsMaxAge = 30 * time.Second
)

type opsMetrics struct {
	n     *Node
	build prometheus.Gauge

	reqPending, reqOverdue                        *prometheus.Desc
	durables, durPending, durPendingMax, durStall *prometheus.Desc
	feedsExpected, feedsMissing                   *prometheus.Desc
	storeBytes, storeMax                          *prometheus.Desc

	mu       sync.Mutex // the requests count
	reqAt    time.Time
	reqSeq   uint64
	reqCount map[catalog.DeptID]*[2]int // pending, overdue
}

func newOpsMetrics(n *Node) *opsMetrics {
	bi := buildinfo.Get()
	rev := bi.Commit
	if rev == "" {
		rev = "unknown"
	}
	if bi.Modified {
		rev += "-modified"
	}
	m := &opsMetrics{
		n: n,
		build: prometheus.NewGauge(prometheus.GaugeOpts{Name: "xhub_build_info", Help: "1, labelled with the version, Go version and commit this node was built from.",
			ConstLabels: prometheus.Labels{"version": bi.Version, "go_version": bi.GoVersion, "revision": rev}}),
		reqPending:    prometheus.NewDesc("xhub_share_requests_pending", "Share requests waiting for the owning department's answer, by owning department (the same on every node).", []string{"dept"}, nil),
		reqOverdue:    prometheus.NewDesc("xhub_share_requests_overdue", "Share requests still pending past their response deadline (--response-days), by owning department.", []string{"dept"}, nil),
		durables:      prometheus.NewDesc("xhub_durables", "Durable consumers of the data stream, by kind: subscription (departments' durable subscriptions) or nats_feed (the hub's NATS delivery, one per department and granted dataset).", []string{"kind"}, nil),
		durPending:    prometheus.NewDesc("xhub_durables_pending", "Batches stored and not yet delivered to the durable consumers of a kind, summed.", []string{"kind"}, nil),
		durPendingMax: prometheus.NewDesc("xhub_durables_pending_max", "Batches not yet delivered to the most behind durable consumer of a kind (by name: xhub_subscription_pending).", []string{"kind"}, nil),
		durStall:      prometheus.NewDesc("xhub_durables_stalled_seconds", "The longest time a durable consumer of a kind that has batches to deliver has delivered and acknowledged nothing (0: none stalled). A subscription counts only while a subscriber is connected; a NATS feed always.", []string{"kind"}, nil),
		feedsExpected: prometheus.NewDesc("xhub_nats_feeds_expected", "NATS feeds this node runs the delivery for: departments and datasets with an active grant (0 on a node without departments' systems on NATS).", nil, nil),
		feedsMissing:  prometheus.NewDesc("xhub_nats_feeds_missing", "Of xhub_nats_feeds_expected, those with no durable consumer: what is published meanwhile never reaches the department's integrators.", nil, nil),
		storeBytes:    prometheus.NewDesc("xhub_jetstream_store_bytes", "Bytes JetStream stores for the hub, every stream together.", nil, nil),
		storeMax:      prometheus.NewDesc("xhub_jetstream_max_store_bytes", "What JetStream may store for the hub (the embedded server's store, or the account's limit; -1: none known).", nil, nil),
	}
	m.build.Set(1)
	return m
}

// Collectors returns the metrics for the node's registry.
func (m *opsMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.build, m}
}

func (m *opsMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.reqPending, m.reqOverdue, m.durables, m.durPending, m.durPendingMax, m.durStall, m.feedsExpected, m.feedsMissing, m.storeBytes, m.storeMax} {
		ch <- d
	}
}

func (m *opsMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.collectRequests(ch)
	m.collectDurables(ctx, ch)
	m.collectStore(ctx, ch)
}

// collectRequests reports pending and overdue requests by the department
// that owns the dataset (the one that must answer).
func (m *opsMetrics) collectRequests(ch chan<- prometheus.Metric) {
	if m.n.CP.Integrity() != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now, seq := m.n.cfg.Now(), m.n.CP.Applied()
	age := now.Sub(m.reqAt)
	if m.reqCount == nil || age < 0 || age > requestsMaxAge || seq != m.reqSeq && age > requestsMinAge {
		counts, err := countRequests(m.n.CP, now)
		if err != nil {
			m.n.cfg.Logger.Warn("metrics: share requests not counted", "err", err)
			return
		}
		m.reqAt, m.reqSeq, m.reqCount = now, seq, counts
	}
	for dept, c := range m.reqCount {
		ch <- prometheus.MustNewConstMetric(m.reqPending, prometheus.GaugeValue, float64(c[0]), string(dept))
		ch <- prometheus.MustNewConstMetric(m.reqOverdue, prometheus.GaugeValue, float64(c[1]), string(dept))
	}
}

// countRequests counts the pending requests of every registered
// department (zero included, so a board shows every department), and the
// overdue among them, page by page.
func countRequests(cp *exchange.ControlPlane, now time.Time) (map[catalog.DeptID]*[2]int, error) {
	out := map[catalog.DeptID]*[2]int{}
	var afterDept catalog.DeptID
	for {
		depts, next, err := cp.Departments(afterDept, 1000)
		if err != nil {
			return nil, err
		}
		for _, d := range depts {
			out[d.ID] = new([2]int)
		}
		if next == "" {
			break
		}
		afterDept = next
	}
	f := exchange.ShareFilter{Status: string(shares.RequestPending), Viewer: vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin}}
	var after shares.RequestID
	for {
		page, next, err := cp.ListRequests(f, after, 1000, now)
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			c := out[r.Dataset.Owner()]
			if c == nil {
				c = new([2]int)
				out[r.Dataset.Owner()] = c
			}
			c[0]++
			if r.Overdue(now) {
				c[1]++
			}
		}
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// durableStats are the durable consumers of one kind.
type durableStats struct {
	count            int
	pending, maxPend uint64
	stalled          time.Duration
}

// collectDurables reports the data stream's durable consumers by kind.
// The consumers are the deployment's, so every node reports the same.
func (m *opsMetrics) collectDurables(ctx context.Context, ch chan<- prometheus.Metric) {
	by := map[string]*durableStats{kindSubscription: {}, kindNATSFeed: {}}
	stream, err := m.n.JS.Stream(ctx, bus.DataStream)
	if err != nil {
		return
	}
	now := time.Now() // JetStream's times are the servers' clocks
	names := map[string]bool{}
	l := stream.ListConsumers(ctx)
	for ci := range l.Info() {
		if !strings.HasPrefix(ci.Name, bus.SubscriptionPrefix) {
			continue
		}
		names[ci.Name] = true
		kind := kindSubscription
		if name := ci.Config.Metadata[bus.MetaName]; name == bus.OutSubscription || name == "" && strings.HasSuffix(ci.Name, "_"+bus.OutSubscription) {
			kind = kindNATSFeed
		}
		s := by[kind]
		s.count++
		s.pending += ci.NumPending
		s.maxPend = max(s.maxPend, ci.NumPending)
		if d := stalledFor(ci, kind, now); d > s.stalled {
			s.stalled = d
		}
	}
	if l.Err() != nil {
		return // a partial list would under-report
	}
	for _, kind := range []string{kindSubscription, kindNATSFeed} {
		s := by[kind]
		ch <- prometheus.MustNewConstMetric(m.durables, prometheus.GaugeValue, float64(s.count), kind)
		ch <- prometheus.MustNewConstMetric(m.durPending, prometheus.GaugeValue, float64(s.pending), kind)
		ch <- prometheus.MustNewConstMetric(m.durPendingMax, prometheus.GaugeValue, float64(s.maxPend), kind)
		ch <- prometheus.MustNewConstMetric(m.durStall, prometheus.GaugeValue, s.stalled.Seconds(), kind)
	}
	// The feeds this node runs (with departments' systems on NATS): one
	// per department and dataset with an active grant.
	feeds := map[string]bool{}
	if m.n.Integrators != nil && m.n.CP.Integrity() == nil {
		for _, gp := range m.n.CP.ActiveGrantPairs(m.n.cfg.Now()) {
			feeds[bus.SubscriptionConsumerName(string(gp.Dept), string(gp.Dataset), bus.OutSubscription)] = true
		}
	}
	missing := 0
	for name := range feeds {
		if !names[name] {
			missing++
		}
	}
	ch <- prometheus.MustNewConstMetric(m.feedsExpected, prometheus.GaugeValue, float64(len(feeds)))
	ch <- prometheus.MustNewConstMetric(m.feedsMissing, prometheus.GaugeValue, float64(missing))
}

// stalledFor is how long a consumer that has batches to deliver (or
// delivered and not acknowledged) has neither delivered nor had an
// acknowledgement, since it was made at the earliest; 0 when it has
// nothing to do. A subscription with no subscriber connected is waiting,
// not stalled.
func stalledFor(ci *jetstream.ConsumerInfo, kind string, now time.Time) time.Duration {
	if ci.NumPending == 0 && ci.NumAckPending == 0 {
		return 0
	}
	if kind == kindSubscription && ci.NumWaiting == 0 {
		return 0
	}
	last := ci.Created
	for _, t := range []*time.Time{ci.Delivered.Last, ci.AckFloor.Last} {
		if t != nil && t.After(last) {
			last = *t
		}
	}
	return max(now.Sub(last), 0)
}

// collectStore reports JetStream's store against its bound.
func (m *opsMetrics) collectStore(ctx context.Context, ch chan<- prometheus.Metric) {
	ai, err := m.n.JS.AccountInfo(ctx)
	if err != nil {
		return
	}
	bound := ai.Limits.MaxStore
	if m.n.Embedded != nil {
		bound = m.n.Embedded.MaxStore()
	}
	if bound <= 0 {
		bound = -1
	}
	ch <- prometheus.MustNewConstMetric(m.storeBytes, prometheus.GaugeValue, float64(ai.Store))
	ch <- prometheus.MustNewConstMetric(m.storeMax, prometheus.GaugeValue, float64(bound))
}
