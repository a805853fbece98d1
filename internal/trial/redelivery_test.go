package trial

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestSubscriberFailoverRedelivery: a durable subscriber holds some of its
// records unacknowledged; the hub node serving it is killed (SIGKILL) and
// it resumes on the other node, which must deliver every record it held
// again within --subscription-redelivery of the kill (with slack for a
// busy machine), not after JetStream's ack wait (30 s before issue 21,
// item 5). While its node is up, nothing it holds is delivered again
// (the node keeps it in progress) even though the ack wait is short.
func TestSubscriberFailoverRedelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a deployment of processes")
	}
	const bound = 3 * time.Second
	const slack = 12 * time.Second // a busy machine; today's ack wait was 30 s
	d := deployWith(t, "--subscription-redelivery", bound.String(), "--log-level", "info")
	ctx := context.Background()
	d.shareCases(t, "failover")
	publisher := d.dial(d.creds("health", vocab.RoleSystem, "registry"))
	consumer := d.dial(d.creds("tax", vocab.RoleSystem, "etl"))
	sub, err := consumer.Subscribe(ctx, "health.cases", "held", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	type got struct {
		id  int
		dl  *adapters.Delivery
		err error
	}
	recv := make(chan got, 1024)
	go func() {
		for {
			dl, err := sub.Recv()
			if err != nil {
				recv <- got{err: err}
				return
			}
			var r struct{ ID int }
			_ = json.Unmarshal(dl.Record, &r)
			recv <- got{id: r.ID, dl: dl}
		}
	}()

	// 10 batches of 3; the subscriber acknowledges the even batches and
	// holds the odd ones.
	const batches, per = 10, 3
	held := map[int]bool{}
	for b := range batches {
		recs := make([][]byte, per)
		for i := range recs {
			id := 100*b + i
			recs[i] = fmt.Appendf(nil, `{"id":%d,"ward":"w%d"}`, id, i)
			if b%2 == 1 {
				held[id] = true
			}
		}
		if _, err := publisher.Publish(ctx, "health.cases", recs, fmt.Sprintf("b%d", b)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int]int{}
	start := time.Now()
	var trace []string
	defer func() {
		if t.Failed() {
			t.Logf("deliveries:\n%s", strings.Join(trace, "\n"))
		}
	}()
	take := func(g got, phase string) {
		t.Helper()
		if g.err != nil {
			t.Fatalf("%s: the subscription ended: %v", phase, g.err)
		}
		trace = append(trace, fmt.Sprintf("%8s %-20s record %4d delivery %#x resumed %d", time.Since(start).Round(time.Millisecond), phase, g.id, g.dl.ID, sub.Resumed))
		seen[g.id]++
		if !held[g.id] || phase == "after the failover" {
			if err := sub.Ack(g.dl.ID); err != nil {
				t.Logf("%s: ack %d: %v", phase, g.id, err)
			}
		}
	}
	deadline := time.After(30 * time.Second)
	for len(seen) < batches*per {
		select {
		case g := <-recv:
			take(g, "first delivery")
		case <-deadline:
			t.Fatalf("received %d of %d records", len(seen), batches*per)
		}
	}

	// The acknowledgements have reached JetStream: only the held batches
	// are pending.
	js, err := jetstream.New(d.natsConn())
	if err != nil {
		t.Fatal(err)
	}
	cname := bus.SubscriptionConsumerName("tax", "health.cases", "held")
	testenv.WaitFor(t, 20*time.Second, "only the held batches pending", func() bool {
		c, err := js.Consumer(ctx, bus.DataStream, cname)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.NumAckPending == batches/2
	})

	// While the serving node is up, nothing held comes again, for two
	// ack waits.
	quiet := time.After(2 * bound)
hold:
	for {
		select {
		case g := <-recv:
			take(g, "held")
			t.Fatalf("record %d delivered again while its node was up and its subscriber connected (delivery %d, seen %d, resumed %d)", g.id, g.dl.ID, seen[g.id], sub.Resumed)
		case <-quiet:
			break hold
		}
	}

	// Kill the node that serves the subscription.
	serving := -1
	testenv.WaitFor(t, 20*time.Second, "the node serving the subscription", func() bool {
		for i, m := range d.metrics {
			if openSubscriptions(m) > 0 {
				serving = i
				return true
			}
		}
		return false
	})
	victim := d.hubs[serving]
	victim.kill()
	killed := time.Now()
	t.Logf("killed %s, which served the subscription", victim.name)

	limit := time.After(bound + slack)
	for {
		missing := 0
		for id := range held {
			if seen[id] < 2 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		select {
		case g := <-recv:
			take(g, "after the failover")
		case <-limit:
			t.Fatalf("%d of %d held records not delivered again within %s of the kill (--subscription-redelivery %s)", missing, len(held), bound+slack, bound)
		}
	}
	t.Logf("every held record delivered again %s after its node was killed (bound %s); resumed %d times", time.Since(killed).Round(10*time.Millisecond), bound, sub.Resumed)
	for id, n := range seen {
		if !held[id] && n > 1 {
			t.Errorf("record %d, acknowledged before the kill, delivered again", id)
		}
	}
}

// openSubscriptions reads xhub_open_subscriptions from a node's /metrics
// (-1 if it does not answer).
func openSubscriptions(addr string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "xhub_open_subscriptions "); ok {
			var n float64
			if _, err := fmt.Sscan(v, &n); err == nil {
				return int(n)
			}
		}
	}
	return -1
}
