package dataplane

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
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
	queries   [len(queryOutcomes)]atomic.Uint64
	records   atomic.Uint64
	withheld  atomic.Uint64
	published atomic.Uint64
}

// counted is a snapshot of datasetCounts.
type counted struct {
	queries                      [len(queryOutcomes)]uint64
	records, withheld, published uint64
}

func (c *datasetCounts) load() counted {
	var v counted
	for i := range c.queries {
		v.queries[i] = c.queries[i].Load()
	}
	v.records, v.withheld, v.published = c.records.Load(), c.withheld.Load(), c.published.Load()
	return v
}

func (v counted) total() uint64 {
	n := v.published
	for _, q := range v.queries {
		n += q
	}
	return n
}

// datasetStats counts per dataset without a lock on the query path: a
// dataset's counters are made once (under mu, after checking the catalog)
// and then only added to.
type datasetStats struct {
	p  *Plane
	mu sync.Mutex // making counters
	by sync.Map   // catalog.DatasetID → *datasetCounts

	queries, records, withheld, published, providers *prometheus.Desc
	pending, ackPending                              *prometheus.Desc
}

func newDatasetStats(p *Plane) *datasetStats {
	ds := []string{"dataset"}
	return &datasetStats{
		p:          p,
		queries:    prometheus.NewDesc("xhub_dataset_queries_total", "Queries of a dataset answered or refused by this node, by outcome (the busiest datasets by name, the rest as dataset=\"other\").", []string{"dataset", "outcome"}, nil),
		records:    prometheus.NewDesc("xhub_dataset_query_records_total", "Records of a dataset returned to consumers by this node.", ds, nil),
		withheld:   prometheus.NewDesc("xhub_dataset_query_records_withheld_total", "Provider records of a dataset withheld by this node (schema or filters).", ds, nil),
		published:  prometheus.NewDesc("xhub_dataset_published_records_total", "Records of a dataset stored by publish through this node.", ds, nil),
		providers:  prometheus.NewDesc("xhub_dataset_provider_streams", "Provider streams connected to this node that serve a dataset.", ds, nil),
		pending:    prometheus.NewDesc("xhub_subscription_pending", "Batches stored and not yet delivered to a durable subscription (its lag; the same on every node), by subscriber department and dataset.", []string{"dept", "dataset", "name"}, nil),
		ackPending: prometheus.NewDesc("xhub_subscription_ack_pending", "Batches delivered to a durable subscription and not yet acknowledged.", []string{"dept", "dataset", "name"}, nil),
	}
}

// counts returns the counters of dataset id, made on first use if the
// dataset is in the catalog (nil otherwise).
func (s *datasetStats) counts(id catalog.DatasetID) *datasetCounts {
	if c, ok := s.by.Load(id); ok {
		return c.(*datasetCounts)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.by.Load(id); ok {
		return c.(*datasetCounts)
	}
	if _, err := s.p.cp.Dataset(id); err != nil {
		return nil
	}
	c := &datasetCounts{}
	s.by.Store(id, c)
	return c
}

func (s *datasetStats) query(id catalog.DatasetID, outcome int, records, withheld int) {
	if c := s.counts(id); c != nil {
		c.queries[outcome].Add(1)
		c.records.Add(uint64(records))
		c.withheld.Add(uint64(withheld))
	}
}

func (s *datasetStats) publish(id catalog.DatasetID, records int) {
	if c := s.counts(id); c != nil {
		c.published.Add(uint64(records))
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
	type row struct {
		id catalog.DatasetID
		v  counted
	}
	var rows []row
	s.by.Range(func(k, c any) bool {
		rows = append(rows, row{k.(catalog.DatasetID), c.(*datasetCounts).load()})
		return true
	})
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(b.v.total(), a.v.total()), cmp.Compare(a.id, b.id)) })
	emit := func(label string, v counted) {
		for i, o := range queryOutcomes {
			ch <- prometheus.MustNewConstMetric(s.queries, prometheus.CounterValue, float64(v.queries[i]), label, o)
		}
		ch <- prometheus.MustNewConstMetric(s.records, prometheus.CounterValue, float64(v.records), label)
		ch <- prometheus.MustNewConstMetric(s.withheld, prometheus.CounterValue, float64(v.withheld), label)
		ch <- prometheus.MustNewConstMetric(s.published, prometheus.CounterValue, float64(v.published), label)
	}
	named := map[catalog.DatasetID]bool{}
	var other counted
	for i, r := range rows {
		if i < MaxDatasetSeries {
			named[r.id] = true
			emit(string(r.id), r.v)
			continue
		}
		for k := range other.queries {
			other.queries[k] += r.v.queries[k]
		}
		other.records += r.v.records
		other.withheld += r.v.withheld
		other.published += r.v.published
	}
	if len(rows) > MaxDatasetSeries {
		emit("other", other)
	}

	// Provider streams: by name when few datasets have streams here or
	// the dataset is named above; the rest summed.
	streams := s.p.local.counts()
	otherStreams := 0
	for id, n := range streams {
		if named[id] || len(streams) <= MaxDatasetSeries {
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
