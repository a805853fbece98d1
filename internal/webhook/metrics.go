package webhook

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of a delivery, as recorded (Delivery.Status) and counted.
var Outcomes = []string{"delivered", "failed", "dropped"}

// Metrics count a node's webhook deliveries by outcome. One per node;
// nil counts nothing.
type Metrics struct {
	deliveries *prometheus.CounterVec
}

// NewMetrics makes the counters, every outcome at zero so that an alert
// on failures has a series before the first one.
func NewMetrics() *Metrics {
	m := &Metrics{deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xhub_webhook_deliveries_total",
		Help: "Webhook deliveries this node ended, by outcome: delivered, failed (every attempt failed, or the address was refused) or dropped (too many in flight for the department).",
	}, []string{"outcome"})}
	for _, o := range Outcomes {
		m.deliveries.WithLabelValues(o)
	}
	return m
}

// Collectors returns the counters for a registry.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.deliveries}
}

// ended counts one delivery with its final status.
func (m *Metrics) ended(status string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(status).Inc()
}
