package dataplane

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xhub-gov/xhub/catalog"
)

// Per-dataset metrics, with bounded series. A province's catalog holds
// thousands of datasets and a scrape should not: the busiest
// MaxDatasetSeries datasets are reported by name and the rest summed under
// dataset="other". Counts are kept only for datasets of the catalog, so a
// caller naming datasets that do not exist grows nothing.

// MaxDatasetSeries bounds the datasets reported by name.
const MaxDatasetSeries = 50

// queryOutcomes are the outcome label's values, in counter order.
var queryOutcomes = [...]string{"ok", "denied", "unavailable", "error"}

type datasetCounts struct {
	queries   [len(queryOutcomes)]uint64
	records   uint64
	withheld  uint64
	published uint64
}

func (c *datasetCounts) total() uint64 {
	var n uint64
	for _, q := range c.queries {
		n += q
	}
	return n + c.published
}

type datasetStats struct {
	p  *Plane
	mu sync.Mutex
	by map[catalog.DatasetID]*datasetCounts

	queries, records, withheld, published, providers *prometheus.Desc
	pending, ackPending                              *prometheus.Desc
}

func newDatasetStats(p *Plane) *datasetStats {
	ds := []string{"dataset"}
	return &datasetStats{
		p:          p,
		by:         map[catalog.DatasetID]*datasetCounts{},
		queries:    prometheus.NewDesc("xhub_dataset_queries_total", "Queries of a dataset answered or refused by this node, by outcome (the busiest datasets by name, the rest as dataset=\"other\").", []string{"dataset", "outcome"}, nil),
		records:    prometheus.NewDesc("xhub_dataset_query_records_total", "Records of a dataset returned to consumers by this node.", ds, nil),
		withheld:   prometheus.NewDesc("xhub_dataset_query_records_withheld_total", "Provider records of a dataset withheld by this node (schema or filters).", ds, nil),
		published:  prometheus.NewDesc("xhub_dataset_published_records_total", "Records of a dataset stored by publish through this node.", ds, nil),
		providers:  prometheus.NewDesc("xhub_dataset_provider_streams", "Provider streams connected to this node that serve a dataset.", ds, nil),
		pending:    prometheus.NewDesc("xhub_subscription_pending", "Batches stored and not yet delivered to a durable subscription (its lag; the same on every node), by subscriber department and dataset.", []string{"dept", "dataset", "name"}, nil),
		ackPending: prometheus.NewDesc("xhub_subscription_ack_pending", "Batches delivered to a durable subscription and not yet acknowledged.", []string{"dept", "dataset", "name"}, nil),
	}
}

// counts returns the counts of dataset id, made on first use if the
// dataset is in the catalog (nil otherwise). Caller holds s.mu.
func (s *datasetStats) counts(id catalog.DatasetID) *datasetCounts {
	if c, ok := s.by[id]; ok {
		return c
	}
	if _, err := s.p.cp.Dataset(id); err != nil {
		return nil
	}
	c := &datasetCounts{}
	s.by[id] = c
	return c
}

func (s *datasetStats) query(id catalog.DatasetID, outcome int, records, withheld int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.counts(id); c != nil {
		c.queries[outcome]++
		c.records += uint64(records)
		c.withheld += uint64(withheld)
	}
}

func (s *datasetStats) publish(id catalog.DatasetID, records int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.counts(id); c != nil {
		c.published += uint64(records)
	}
}

func (s *datasetStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.queries, s.records, s.withheld, s.published, s.providers, s.pending, s.ackPending} {
		ch <- d
	}
}

func (s *datasetStats) Collect(ch chan<- prometheus.Metric) {
	s.collectDatasets(ch)
	s.collectSubscriptions(ch)
}

// collectDatasets reports queries, records and provider streams by
// dataset.
func (s *datasetStats) collectDatasets(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	ids := make([]catalog.DatasetID, 0, len(s.by))
	for id := range s.by {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b catalog.DatasetID) int {
		return cmp.Or(cmp.Compare(s.by[b].total(), s.by[a].total()), cmp.Compare(a, b))
	})
	named := map[catalog.DatasetID]bool{}
	var other datasetCounts
	emit := func(label string, c *datasetCounts) {
		for i, o := range queryOutcomes {
			ch <- prometheus.MustNewConstMetric(s.queries, prometheus.CounterValue, float64(c.queries[i]), label, o)
		}
		ch <- prometheus.MustNewConstMetric(s.records, prometheus.CounterValue, float64(c.records), label)
		ch <- prometheus.MustNewConstMetric(s.withheld, prometheus.CounterValue, float64(c.withheld), label)
		ch <- prometheus.MustNewConstMetric(s.published, prometheus.CounterValue, float64(c.published), label)
	}
	for i, id := range ids {
		c := s.by[id]
		if i < MaxDatasetSeries {
			named[id] = true
			emit(string(id), c)
			continue
		}
		for k := range other.queries {
			other.queries[k] += c.queries[k]
		}
		other.records += c.records
		other.withheld += c.withheld
		other.published += c.published
	}
	if len(ids) > MaxDatasetSeries {
		emit("other", &other)
	}
	s.mu.Unlock()

	// Provider streams: the datasets named above, and every other one
	// that has a stream here, summed.
	streams := s.p.local.counts()
	otherStreams := 0
	for id, n := range streams {
		if named[id] || len(named) < MaxDatasetSeries && len(streams) <= MaxDatasetSeries {
			ch <- prometheus.MustNewConstMetric(s.providers, prometheus.GaugeValue, float64(n), string(id))
			continue
		}
		otherStreams += n
	}
	if otherStreams > 0 {
		ch <- prometheus.MustNewConstMetric(s.providers, prometheus.GaugeValue, float64(otherStreams), "other")
	}
}

// collectSubscriptions reports the durable subscriptions' lag.
func (s *datasetStats) collectSubscriptions(ch chan<- prometheus.Metric) {

	// Subscription lag, from JetStream's consumers (bounded by the
	// per-department subscription limit): the most behind by name.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var subs []SubscriptionInfo
	if err := s.p.eachSubscription(ctx, "", func(si SubscriptionInfo) { subs = append(subs, si) }); err != nil {
		return
	}
	slices.SortFunc(subs, func(a, b SubscriptionInfo) int { return cmp.Compare(b.Pending, a.Pending) })
	var otherPending, otherAck float64
	for i, si := range subs {
		if i < MaxSubscriptionSeries {
			ch <- prometheus.MustNewConstMetric(s.pending, prometheus.GaugeValue, float64(si.Pending), string(si.Dept), string(si.Dataset), si.Name)
			ch <- prometheus.MustNewConstMetric(s.ackPending, prometheus.GaugeValue, float64(si.AckPending), string(si.Dept), string(si.Dataset), si.Name)
			continue
		}
		otherPending += float64(si.Pending)
		otherAck += float64(si.AckPending)
	}
	if len(subs) > MaxSubscriptionSeries {
		ch <- prometheus.MustNewConstMetric(s.pending, prometheus.GaugeValue, otherPending, "other", "other", "other")
		ch <- prometheus.MustNewConstMetric(s.ackPending, prometheus.GaugeValue, otherAck, "other", "other", "other")
	}
}

// MaxSubscriptionSeries bounds the subscriptions reported by name (the
// most behind); the rest are summed under "other".
const MaxSubscriptionSeries = 100

// counts is how many provider streams on this node serve each dataset.
func (l *localProviders) counts() map[catalog.DatasetID]int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[catalog.DatasetID]int, len(l.by))
	for id, list := range l.by {
		out[id] = len(list)
	}
	return out
}
