package dataplane

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
)

// TestSubscriptionConsumerRemovedUnderItIsRemade: a durable subscription
// whose consumer is removed while its subscriber reads and its grant
// holds — by a sweep that judged it on a state from before the grant, on
// a node behind — is made again where it stood, on the same stream: no
// record stored in between is lost. Found by the hour-long province: a
// sweep removed edu's subscription just after edu resumed it under a new
// grant, and the 120 records published before edu's client made it again
// "from new" never reached edu.
func TestSubscriptionConsumerRemovedUnderItIsRemade(t *testing.T) {
	ctx := context.Background()
	p, js := sweptPlane(t, &behindCP{caughtUp: true})
	tax := vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "etl"}
	sub, err := p.Subscribe(ctx, tax, SubscribeInput{Dataset: "health.cases", Name: "etl"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := js.Publish(ctx, bus.DataPrefix+"health.cases", encodeBatch(fmt.Sprint("b", i), [][]byte{[]byte(fmt.Sprintf(`{"id":"%d"}`, i))})); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string]bool{}
	receive := func(n int) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for len(got) < n {
			select {
			case d, ok := <-sub.Deliveries():
				if !ok {
					t.Fatalf("the subscription ended: %v (%d of %d records)", sub.Err(), len(got), n)
				}
				got[string(d.Record)] = true
				if err := sub.Ack([]uint64{d.ID}); err != nil {
					t.Fatal(err)
				}
			case <-deadline:
				t.Fatalf("%d of %d records within 30s", len(got), n)
			}
		}
	}
	publish(0, 5)
	receive(5)
	cname := bus.SubscriptionConsumerName("tax", "health.cases", "etl")
	if err := js.DeleteConsumer(ctx, bus.DataStream, cname); err != nil {
		t.Fatal(err)
	}
	publish(5, 10)
	receive(10)
	if _, err := js.Consumer(ctx, bus.DataStream, cname); err != nil {
		t.Errorf("the subscription's consumer: %v", err)
	}
	// The department itself does not delete one a subscriber reads (its
	// node would make it again): it closes the subscriber first.
	if _, err := p.DeleteSubscription(ctx, tax, "health.cases", "etl"); vocab.KindOf(err) != vocab.KindPrecondition || !strings.Contains(err.Error(), "close the subscriber first") {
		t.Errorf("deleting a subscription a subscriber reads: %v", err)
	}
}

// sweptPlane is a data plane on the data bus and cp whose first
// subscription sweep is done (that sweep would remove a consumer whose
// maker cp does not know).
func sweptPlane(t *testing.T, cp ControlPlane) (*Plane, jetstream.JetStream) {
	t.Helper()
	nc, js := dataBus(t)
	p, err := New(Config{CP: cp, NC: nc, JS: js, PageTokenKey: make([]byte, PageTokenKeySize), SubscriptionSweep: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	for p.SubscriptionSweeps() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	return p, js
}
