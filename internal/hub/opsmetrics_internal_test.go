package hub

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestStalledFor: a consumer with batches to move and no delivery or
// acknowledgement since a time is stalled since then; one with nothing to
// move, or a subscription with no subscriber connected, is not.
func TestStalledFor(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	for _, c := range []struct {
		name string
		ci   jetstream.ConsumerInfo
		kind string
		want time.Duration
	}{
		{"idle feed", jetstream.ConsumerInfo{Created: now.Add(-time.Hour)}, kindNATSFeed, 0},
		{"feed never delivered", jetstream.ConsumerInfo{Created: now.Add(-time.Hour), NumPending: 3}, kindNATSFeed, time.Hour},
		{"feed delivered lately", jetstream.ConsumerInfo{Created: now.Add(-time.Hour), NumPending: 3, Delivered: jetstream.SequenceInfo{Last: ago(time.Second)}}, kindNATSFeed, time.Second},
		{"acknowledged lately", jetstream.ConsumerInfo{Created: now.Add(-time.Hour), NumAckPending: 1, Delivered: jetstream.SequenceInfo{Last: ago(time.Minute)}, AckFloor: jetstream.SequenceInfo{Last: ago(2 * time.Second)}}, kindNATSFeed, 2 * time.Second},
		{"subscription, nobody connected", jetstream.ConsumerInfo{Created: now.Add(-time.Hour), NumPending: 9}, kindSubscription, 0},
		{"subscription, subscriber waiting", jetstream.ConsumerInfo{Created: now.Add(-time.Hour), NumPending: 9, NumWaiting: 1, Delivered: jetstream.SequenceInfo{Last: ago(10 * time.Minute)}}, kindSubscription, 10 * time.Minute},
	} {
		if got := stalledFor(&c.ci, c.kind, now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
