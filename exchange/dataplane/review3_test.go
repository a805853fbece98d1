package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
)

// revokedAtHeadCP is the views of a node behind the log: it still holds
// tax's grant on health.cases, which another node has revoked (the
// revocation is at the log's head). Only CatchUp applies it.
type revokedAtHeadCP struct {
	sweepCP
	mu      sync.Mutex
	revoked bool // the revocation is at the log's head
	applied bool // ... and applied here
	catchUp int
}

func (c *revokedAtHeadCP) CheckAccess(catalog.DeptID, catalog.DatasetID, time.Time) (exchange.Access, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied {
		return exchange.Access{}, vocab.Denied("department tax holds no active grant on health.cases")
	}
	return exchange.Access{Fields: []string{"id"}, Grants: []shares.GrantID{"g-1"}}, nil
}

func (c *revokedAtHeadCP) CatchUp(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.catchUp++
	if c.revoked {
		c.applied = true
	}
	return nil
}

// TestReview3RemakeAfterRevocationAtHead: a subscription's consumer
// removed under its reader because its grant was revoked — by the sweep of
// a node that has applied the revocation — is made again by the reader's
// node while that node is behind: remake judges the grant on the node's
// own older state (readable re-judges only refusals on the head; a
// permission is never re-judged). The removal is the very signal that a
// newer entry exists, yet the consumer the log's head no longer allows
// comes back, with its maker set to the reader (up to maxRemade times per
// Subscription, each undoing another node's sweep).
func TestReview3RemakeAfterRevocationAtHead(t *testing.T) {
	ctx := context.Background()
	cp := &revokedAtHeadCP{}
	// This node's own first sweep is done (it judges on a caught-up
	// state: run after the revocation, it would apply it here).
	p, js := sweptPlane(t, cp)
	tax := vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "etl"}
	sub, err := p.Subscribe(ctx, tax, SubscribeInput{Dataset: "health.cases", Name: "etl"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := js.Publish(ctx, bus.DataPrefix+"health.cases", encodeBatch("b0", [][]byte{[]byte(`{"id":"0"}`)})); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-sub.Deliveries():
		_ = sub.Ack([]uint64{d.ID})
	case <-time.After(30 * time.Second):
		t.Fatal("no record within 30s")
	}
	// Another node applies the revocation and its sweep removes the
	// consumer; this node has not applied it yet.
	cp.mu.Lock()
	cp.revoked = true
	cp.mu.Unlock()
	cname := bus.SubscriptionConsumerName("tax", "health.cases", "etl")
	if err := js.DeleteConsumer(ctx, bus.DataStream, cname); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		c, err := js.Consumer(ctx, bus.DataStream, cname)
		if err == nil {
			cp.mu.Lock()
			n := cp.catchUp
			cp.mu.Unlock()
			t.Fatalf("the consumer was made again (maker %s) after its grant was revoked at the log's head; CatchUp calls: %d",
				c.CachedInfo().Config.Metadata[bus.MetaCreatedBy], n)
		}
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("consumer stayed removed; subscription error:", sub.Err())
}

// TestReview3DeleteRightAfterClose: a subscriber closed (xhub subscribe
// ended with Ctrl-C) leaves its pull request at the server until it
// expires: is the subscription "open" for a moment after?
func TestReview3DeleteRightAfterClose(t *testing.T) {
	ctx := context.Background()
	p, _ := sweptPlane(t, &behindCP{caughtUp: true})
	tax := vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "etl"}
	sub, err := p.Subscribe(ctx, tax, SubscribeInput{Dataset: "health.cases", Name: "etl"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	sub.Close()
	start := time.Now()
	for {
		_, err := p.DeleteSubscription(ctx, tax, "health.cases", "etl")
		if err == nil {
			t.Logf("deleted %s after the subscriber closed", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("still refused %s after the subscriber closed: %v", time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
