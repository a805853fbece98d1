package dataplane

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/schemas"
)

// sweepCP is a control plane whose state is what it holds at its last
// CatchUp: the credentials recorded then.
type sweepCP struct {
	mu        sync.Mutex
	live      map[string]bool
	onCatchUp func() map[string]bool
}

func (c *sweepCP) Dataset(id catalog.DatasetID) (catalog.Dataset, error) {
	return catalog.Dataset{Published: catalog.Published{ID: id}, Status: catalog.StatusPublished}, nil
}
func (c *sweepCP) DatasetSchema(catalog.Dataset) (*schemas.Schema, error) {
	return nil, errors.New("no schema")
}
func (c *sweepCP) CheckAccess(catalog.DeptID, catalog.DatasetID, time.Time) (exchange.Access, error) {
	return exchange.Access{Fields: []string{"id"}}, nil
}
func (c *sweepCP) Applied() uint64              { return 1 }
func (c *sweepCP) AccessEnded() <-chan struct{} { return make(chan struct{}) }
func (c *sweepCP) Integrity() error             { return nil }
func (c *sweepCP) CatchUp(ctx context.Context) error {
	c.mu.Lock()
	f := c.onCatchUp
	c.mu.Unlock()
	live := f()
	c.mu.Lock()
	c.live = live
	c.mu.Unlock()
	return nil
}
func (c *sweepCP) IdentitiesWithCredential() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// dataBus starts an embedded NATS with the data stream and connects to it.
func dataBus(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	e, err := bus.StartEmbedded(bus.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(context.Background(), js, []jetstream.StreamConfig{bus.Data(1, bus.DataLimits{}), bus.Audit(1, time.Hour, 1<<20)}, nil); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestSweepJudgesOnAStateNewerThanItsListing: a subscription made while
// another node's sweep catches up is not removed as if its maker held no
// credential. The sweep used to catch up first and list the
// subscriptions after, so one made in between (its maker's credential in
// the log, not in the state the sweep had caught up to) was removed:
// seen in TestSubscriberFailoverRedelivery, the second node's first sweep
// removing a subscription made a moment after it started ("its maker's
// credentials are revoked"), which then came back from the beginning.
func TestSweepJudgesOnAStateNewerThanItsListing(t *testing.T) {
	nc, js := dataBus(t)
	ctx := context.Background()
	const maker = "spiffe://xhub/dept/tax/system/etl"
	cname := bus.SubscriptionConsumerName("tax", "health.cases", "etl")
	exists := func() bool {
		_, err := js.Consumer(ctx, bus.DataStream, cname)
		return err == nil
	}
	var (
		mu    sync.Mutex
		armed bool
	)
	cp := &sweepCP{live: map[string]bool{}}
	cp.onCatchUp = func() map[string]bool {
		// The state: the maker's credential is recorded once the
		// subscription exists (it was issued before it was made).
		live := map[string]bool{}
		if exists() {
			live[maker] = true
		}
		mu.Lock()
		defer mu.Unlock()
		if armed {
			// Another node makes the subscription right after this
			// node's state was taken.
			armed = false
			if _, err := js.CreateConsumer(ctx, bus.DataStream, bus.Subscription(bus.SubscriptionSpec{
				Dept: "tax", Dataset: "health.cases", Name: "etl", CreatedBy: maker, AckWait: 30 * time.Second,
			})); err != nil {
				t.Error(err)
			}
		}
		return live
	}
	p, err := New(Config{CP: cp, NC: nc, JS: js, PageTokenKey: make([]byte, PageTokenKeySize), SubscriptionSweep: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	deadline := time.Now().Add(30 * time.Second)
	for p.SubscriptionSweeps() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first sweep never completed")
		}
		time.Sleep(10 * time.Millisecond)
	}

	mu.Lock()
	armed = true
	mu.Unlock()
	for range 2 {
		if err := p.cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if !exists() {
			t.Fatal("the sweep removed a subscription made while it caught up, its maker's credential recorded")
		}
	}

	// A maker whose credentials are all revoked still loses it.
	cp.mu.Lock()
	cp.onCatchUp = func() map[string]bool { return map[string]bool{} }
	cp.mu.Unlock()
	if err := p.cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if exists() {
		t.Fatal("the subscription of a revoked maker stays")
	}
}
