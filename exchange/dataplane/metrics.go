package dataplane

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/xhub-gov/xhub/internal/bus"
)

// metrics are the data plane's Prometheus counters; Collectors exposes
// them for the node's registry.
type metrics struct {
	queries   *prometheus.CounterVec
	routes    *prometheus.CounterVec
	returned  prometheus.Counter
	withheld  prometheus.Counter
	published prometheus.Counter
	delivered prometheus.Counter
	subs      prometheus.Gauge
	providers prometheus.Gauge
	sweeps    prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		queries:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xhub_queries_total", Help: "Queries answered or refused by this node, by outcome."}, []string{"outcome"}),
		routes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "xhub_query_routes_total", Help: "Queries sent to a provider, by route: local (a provider stream on this node) or nats (any node's, over NATS)."}, []string{"route"}),
		returned:  prometheus.NewCounter(prometheus.CounterOpts{Name: "xhub_query_records_total", Help: "Records returned to consumers."}),
		withheld:  prometheus.NewCounter(prometheus.CounterOpts{Name: "xhub_query_records_withheld_total", Help: "Provider records withheld (schema or filters)."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "xhub_published_records_total", Help: "Records stored by publish (duplicates not counted)."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "xhub_delivered_records_total", Help: "Records sent to subscribers."}),
		subs:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "xhub_open_subscriptions", Help: "Subscriptions open on this node."}),
		providers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "xhub_open_provider_streams", Help: "Provider streams connected to this node."}),
		sweeps:    prometheus.NewCounter(prometheus.CounterOpts{Name: "xhub_subscription_sweeps_total", Help: "Passes of this node's subscription sweep that completed (each entry that ends access, and every --subscription-sweep)."}),
	}
}

// Collectors returns the data plane's metrics.
func (p *Plane) Collectors() []prometheus.Collector {
	m := p.m
	return []prometheus.Collector{newAuditStream(p), newDataStream(p), p.stats, m.queries, m.routes, m.returned, m.withheld, m.published, m.delivered, m.subs, m.providers, m.sweeps}
}

// auditStream reports the audit stream's size and age on each scrape, and
// logs (at most hourly) when it nears its byte bound: the oldest entries
// are then removed before their retention ends.
type auditStream struct {
	p                     *Plane
	bytes, msgs, oldest   *prometheus.Desc
	retention, boundBytes *prometheus.Desc
	mu                    sync.Mutex
	warned                time.Time
}

func newAuditStream(p *Plane) *auditStream {
	return &auditStream{
		p:          p,
		bytes:      prometheus.NewDesc("xhub_audit_stream_bytes", "Bytes held by the audit stream.", nil, nil),
		msgs:       prometheus.NewDesc("xhub_audit_stream_messages", "Messages (batches of audit entries) in the audit stream.", nil, nil),
		oldest:     prometheus.NewDesc("xhub_audit_oldest_seconds", "Age of the oldest audit message kept (0 while the stream is empty).", nil, nil),
		retention:  prometheus.NewDesc("xhub_audit_retention_seconds", "How long the audit stream keeps entries.", nil, nil),
		boundBytes: prometheus.NewDesc("xhub_audit_max_bytes", "The audit stream's byte bound (-1: none).", nil, nil),
	}
}

func (a *auditStream) Describe(ch chan<- *prometheus.Desc) {
	ch <- a.bytes
	ch <- a.msgs
	ch <- a.oldest
	ch <- a.retention
	ch <- a.boundBytes
}

func (a *auditStream) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := a.p.js.Stream(ctx, bus.AuditStream)
	if err != nil {
		return
	}
	info, err := s.Info(ctx)
	if err != nil {
		return
	}
	st, cfg := info.State, info.Config
	ch <- prometheus.MustNewConstMetric(a.bytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(a.msgs, prometheus.GaugeValue, float64(st.Msgs))
	oldest := 0.0 // an empty stream
	if !st.FirstTime.IsZero() && st.Msgs > 0 {
		oldest = time.Since(st.FirstTime).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(a.oldest, prometheus.GaugeValue, oldest)
	ch <- prometheus.MustNewConstMetric(a.retention, prometheus.GaugeValue, cfg.MaxAge.Seconds())
	ch <- prometheus.MustNewConstMetric(a.boundBytes, prometheus.GaugeValue, float64(cfg.MaxBytes))
	if cfg.MaxBytes > 0 && float64(st.Bytes) > 0.8*float64(cfg.MaxBytes) {
		a.mu.Lock()
		if time.Since(a.warned) > time.Hour {
			a.warned = time.Now()
			a.p.lg.Warn("audit stream near its byte bound: the oldest entries go before their retention ends; export them (xhub audit export) or raise --audit-max-bytes",
				"bytes", st.Bytes, "max_bytes", cfg.MaxBytes, "oldest", st.FirstTime)
		}
		a.mu.Unlock()
	}
}
