package dataplane

import (
	"github.com/prometheus/client_golang/prometheus"
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
	}
}

// Collectors returns the data plane's metrics.
func (p *Plane) Collectors() []prometheus.Collector {
	m := p.m
	return []prometheus.Collector{m.queries, m.routes, m.returned, m.withheld, m.published, m.delivered, m.subs, m.providers}
}
