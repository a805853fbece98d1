package webhook

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	deliveries *prometheus.CounterVec
	attempts   *prometheus.CounterVec
}

func newMetrics() metrics {
	m := metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xhub_webhook_deliveries_total",
			Help: "Webhook deliveries this node ended, by outcome: delivered, failed (every attempt failed, or the address is refused), dropped (the department's queue was full, or its webhook removed).",
		}, []string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xhub_webhook_attempts_total",
			Help: "Webhook delivery attempts this node made, by result: ok (2xx) or failed.",
		}, []string{"result"}),
	}
	for _, o := range []string{StatusDelivered, StatusFailed, StatusDropped} {
		m.deliveries.WithLabelValues(o)
	}
	m.attempts.WithLabelValues("ok")
	m.attempts.WithLabelValues("failed")
	return m
}

// Collectors are the dispatcher's metrics.
func (d *Dispatcher) Collectors() []prometheus.Collector {
	return []prometheus.Collector{d.metrics.deliveries, d.metrics.attempts}
}
