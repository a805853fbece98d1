package testenv

import (
	"net"
	"sync"
	"time"

	"github.com/xhub-gov/xhub/internal/api"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
)

// Clock is a settable clock shared by the nodes of a test.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// WithClock makes the node read time from c.
func WithClock(c *Clock) Option { return func(cfg *hub.Config) { cfg.Now = c.Now } }

// WithSweep sets how often the node sweeps for expired grants (negative:
// never).
func WithSweep(d time.Duration) Option { return func(cfg *hub.Config) { cfg.SweepInterval = d } }

// WithResponseDays sets the response deadline for conditional requests.
func WithResponseDays(n int) Option { return func(cfg *hub.Config) { cfg.ResponseDays = n } }

// WithMetrics serves /metrics on a free loopback port.
func WithMetrics() Option { return func(cfg *hub.Config) { cfg.MetricsListen = "127.0.0.1:0" } }

// WithLimits sets the node's per-department bounds.
func WithLimits(l hub.Limits) Option { return func(cfg *hub.Config) { cfg.Limits = l } }

// WithWebhooks lets webhooks reach loopback (test servers), with retries
// after the given waits.
func WithWebhooks(backoff ...time.Duration) Option {
	return func(cfg *hub.Config) { cfg.WebhookAllowPrivate, cfg.WebhookBackoff = true, backoff }
}

// WithWebhookBackoff keeps webhooks public-only, with retries after the
// given waits.
func WithWebhookBackoff(backoff ...time.Duration) Option {
	return func(cfg *hub.Config) { cfg.WebhookBackoff = backoff }
}

// WithWebhookQueue bounds the node's webhook queue.
func WithWebhookQueue(l bus.WebhookQueueLimits) Option {
	return func(cfg *hub.Config) { cfg.WebhookQueue = l }
}

// WithoutWebhookDispatch: the node posts no webhooks (it still queues them).
func WithoutWebhookDispatch() Option { return func(cfg *hub.Config) { cfg.NoWebhookDispatch = true } }

// WithStore sets the node's store bounds (quotas, data bound, retention).
func WithStore(s hub.StoreBounds) Option { return func(cfg *hub.Config) { cfg.Store = s } }

// WithConn sets the node's connection bounds and timeouts (short ones in
// tests).
func WithConn(l api.ConnLimits) Option { return func(cfg *hub.Config) { cfg.Conn = l } }

// WithListener wraps the node's API listener (injected faults, byte
// counts).
func WithListener(wrap func(net.Listener) net.Listener) Option {
	return func(cfg *hub.Config) { cfg.WrapListener = wrap }
}
