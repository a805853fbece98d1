package hub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestAttackDepartmentDeletesHubNATSFeed: the NATS feed's durable (`nats`)
// is the hub's own (xhub.internal=nats-delivery, no maker; Subscribe
// refuses the name), yet DeleteSubscription lists it among the
// department's subscriptions and deletes it for any of the department's
// identities (`xhub subscription delete nats --dataset D`). The hub makes
// it again within a second from the ack floor its last sweep saw (or
// the last batch this node published; from new on a node that has
// neither): each call makes the hub read again and republish up to a
// sweep interval's worth of batches (a minute by default) to every
// integrator of the department, a cheap lever on the hub's load and a
// way to get records twice or (on a node with no position) lose them.
func TestAttackDepartmentDeletesHubNATSFeed(t *testing.T) {
	f := newDataFixture(t, testenv.WithNATSListen())
	ctx := context.Background()
	feed := bus.SubscriptionConsumerName("tax", "health.cases", bus.OutSubscription)
	testenv.WaitFor(t, 10*time.Second, "the NATS delivery's subscription", func() bool {
		_, err := f.env.Node.JS.Consumer(ctx, bus.DataStream, feed)
		return err == nil
	})
	si, err := f.consumer.DeleteSubscription(ctx, bus.OutSubscription, "health.cases")
	if err == nil {
		t.Fatalf("tax's system deleted the hub's own NATS feed %s (internal %q): a department removes what only its grant should end", feed, si.Name)
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "ends with the grant") {
		t.Fatalf("refused, but not saying why: %v", err)
	}
	if _, err := f.env.Node.JS.Consumer(ctx, bus.DataStream, feed); err != nil {
		t.Fatalf("the feed is gone after a refused delete: %v", err)
	}
}
