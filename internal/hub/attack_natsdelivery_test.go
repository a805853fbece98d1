package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// TestNATSDeliverySurvivesSubscriptionSweep: the hub's own durable
// subscription that feeds xhub.out.<dept>.<dataset> is the hub's, not a
// department's: the sweep that removes subscriptions whose maker's
// credentials are all revoked never removes it, on either node, whether
// it runs on its interval or on an entry that ends someone else's access;
// one removed from outside is made again where it stood; and its own
// grant's end still stops it. Found by the issue 20 attack and issue 21:
// every SubscriptionSweep (a minute), or at once on any entry that ends
// anyone's access, the sweep deleted every NATS feed ("its maker's
// credentials are revoked": <dept>/system/nats-delivery holds no
// credential), and the feed came back only later, from "new": records
// published in between never reached a NATS-native integrator.
//
// Two nodes on one NATS, sweeping every 200 ms; the integrator on the
// first node's NATS port. Every record published in every phase must
// arrive on the integrator's subject exactly once.
func TestNATSDeliverySurvivesSubscriptionSweep(t *testing.T) {
	const sweep = 200 * time.Millisecond
	var logs syncBuffer
	configure := func(c *hub.Config) {
		c.SubscriptionSweep = sweep
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	}
	f := newDataFixture(t, testenv.WithNATSListen(), configure)
	t.Cleanup(func() {
		if t.Failed() {
			l := logs.String()
			t.Logf("the nodes' log (tail):\n%s", l[max(0, len(l)-6000):])
		}
	})
	a := f.env
	dirB := t.TempDir()
	a.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB, testenv.WithNATSURL(a.NATSURL()), configure)
	nodes := []*testenv.Env{a, b}
	ctx := context.Background()

	tax, err := dialNATS(t, a, f.consumerCreds)
	if err != nil {
		t.Fatal(err)
	}
	subject := bus.OutSubject("tax", "health.cases")
	sub, err := tax.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := tax.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	feed := bus.SubscriptionConsumerName("tax", "health.cases", bus.OutSubscription)
	testenv.WaitFor(t, 10*time.Second, "the NATS delivery's subscription", func() bool {
		_, err := a.Node.JS.Consumer(ctx, bus.DataStream, feed)
		return err == nil
	})

	// What the integrator received, by record id, and in which phase
	// each id was published.
	got := map[int]int{}
	phaseOf := map[int]string{}
	next := 1000
	publish := func(phase string) {
		t.Helper()
		recs := records(3, next)
		for i := range recs {
			phaseOf[next+i] = phase
		}
		next += len(recs)
		if _, err := f.provider.Publish(ctx, "health.cases", recs, ""); err != nil {
			t.Fatalf("%s: publish: %v", phase, err)
		}
	}
	// receive reads the subject until every id published so far has
	// arrived.
	receive := func(phase string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for len(got) < len(phaseOf) {
			m, err := sub.NextMsg(time.Until(deadline))
			if err != nil {
				var missing []string
				for id, ph := range phaseOf {
					if got[id] == 0 {
						missing = append(missing, fmt.Sprintf("%d (%s)", id, ph))
					}
				}
				slices.Sort(missing)
				t.Fatalf("%s: %d of %d records never reached the NATS integrator (%v): %s", phase, len(missing), len(phaseOf), err, strings.Join(missing, ", "))
			}
			var r struct {
				ID   int    `json:"id"`
				Name string `json:"name"`
			}
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Fatalf("%s: record %s: %v", phase, m.Data, err)
			}
			if r.Name != "" {
				t.Fatalf("%s: a field outside the grant reached the integrator: %s", phase, m.Data)
			}
			got[r.ID]++
		}
	}
	// sweeps waits until every node has completed n more subscription
	// sweeps.
	sweeps := func(what string, n uint64) {
		t.Helper()
		for _, e := range nodes {
			from := e.Node.DP.SubscriptionSweeps()
			testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("%d sweeps on %s (%s)", n, e.Node.Addr(), what), func() bool {
				return e.Node.DP.SubscriptionSweeps() >= from+n
			})
		}
	}

	// 1. Sweeps on their interval, with no ledger entry to bring a
	// removed feed back.
	for range 3 {
		publish("interval sweeps")
		sweeps("interval", 3)
	}
	publish("interval sweeps")
	receive("interval sweeps")

	// The feed as older nodes made it (a maker with no credential, no
	// mark) is known by its reserved name.
	cons, err := a.Node.JS.Consumer(ctx, bus.DataStream, feed)
	if err != nil {
		t.Fatal(err)
	}
	old := cons.CachedInfo().Config
	old.Metadata = map[string]string{bus.MetaDept: "tax", bus.MetaDataset: "health.cases", bus.MetaName: bus.OutSubscription,
		bus.MetaCreatedBy: vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "nats-delivery"}.URI()}
	if _, err := a.Node.JS.UpdateConsumer(ctx, bus.DataStream, old); err != nil {
		t.Fatal(err)
	}
	publish("an older node's feed")
	sweeps("an older node's feed", 3)
	publish("an older node's feed")
	receive("an older node's feed")

	// 2. Another department revokes one of its own credentials: an entry
	// that ends access, swept at once by both nodes.
	edu := a.Officer("edu")
	for i := range 3 {
		c, _, err := edu.IssueCredential(ctx, vocab.Identity{Dept: "edu", Role: vocab.RoleSystem, Name: fmt.Sprintf("app-%d", i)}, 1)
		if err != nil {
			t.Fatal(err)
		}
		publish("an unrelated credential revoked")
		if _, _, err := edu.RevokeCredential(ctx, c.Serial, "rotated"); err != nil {
			t.Fatal(err)
		}
		publish("an unrelated credential revoked")
		sweeps("after a revoked credential", 2)
	}
	receive("an unrelated credential revoked")

	// 3. Other departments' grants end: their subscriptions are removed
	// (the sweep still does its work), tax's feed stays.
	for _, dept := range []string{"edu", "lab"} {
		officer := a.Officer(dept)
		r, err := testenv.RPC(officer).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "probe"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := testenv.RPC(f.owner).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		s, err := a.Dial(a.Creds(dept, vocab.RoleSystem, "probe")).Subscribe(cctx, "health.cases", "probe", "new")
		if err != nil {
			t.Fatal(err)
		}
		probe := bus.SubscriptionConsumerName(dept, "health.cases", "probe")
		testenv.WaitFor(t, 10*time.Second, dept+"'s subscription", func() bool {
			_, err := a.Node.JS.Consumer(ctx, bus.DataStream, probe)
			return err == nil
		})
		publish("another department's grant revoked")
		if _, err := testenv.RPC(f.owner).Shares.RevokeGrant(ctx, &xhubv1.RevokeGrantRequest{GrantId: d.Grant.Id, Reason: "probe"}); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 20*time.Second, dept+"'s subscription removed by the sweep", func() bool {
			_, err := a.Node.JS.Consumer(ctx, bus.DataStream, probe)
			return err != nil
		})
		publish("another department's grant revoked")
		cancel()
		_ = s
	}
	sweeps("after the grants ended", 2)
	receive("another department's grant revoked")

	// A department's subscription whose maker's credentials are all
	// revoked is still removed.
	lab := a.Officer("lab")
	r, err := testenv.RPC(lab).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "maker"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(f.owner).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id}); err != nil {
		t.Fatal(err)
	}
	mc, mfile, err := a.Admin.IssueCredential(ctx, vocab.Identity{Dept: "lab", Role: vocab.RoleSystem, Name: "maker"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(t.TempDir(), "maker.creds")
	if err := os.WriteFile(mpath, mfile, 0o600); err != nil {
		t.Fatal(err)
	}
	mctx, mcancel := context.WithCancel(ctx)
	if _, err := a.Dial(mpath).Subscribe(mctx, "health.cases", "maker", "new"); err != nil {
		t.Fatal(err)
	}
	mcancel()
	made := bus.SubscriptionConsumerName("lab", "health.cases", "maker")
	testenv.WaitFor(t, 10*time.Second, "lab's subscription", func() bool {
		_, err := a.Node.JS.Consumer(ctx, bus.DataStream, made)
		return err == nil
	})
	if _, _, err := lab.RevokeCredential(ctx, mc.Serial, "left"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the subscription of a revoked maker removed", func() bool {
		_, err := a.Node.JS.Consumer(ctx, bus.DataStream, made)
		return err != nil
	})

	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "subscription removed") && strings.Contains(line, "dept=tax") && strings.Contains(line, "name="+bus.OutSubscription) {
			t.Errorf("the sweep removed tax's NATS delivery, whose grant stands: %s", line)
		}
	}

	// 4. The feed's consumer removed from outside (by hand, or by an
	// older node's sweep in a rolling upgrade): made again where it
	// stood, so what is published meanwhile still arrives.
	sweeps("before the feed is removed", 2) // the sweeps have seen where it stands
	if err := a.Node.JS.DeleteConsumer(ctx, bus.DataStream, feed); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		publish("the feed removed from outside")
	}
	testenv.WaitFor(t, 20*time.Second, "the NATS delivery made again", func() bool {
		_, err := a.Node.JS.Consumer(ctx, bus.DataStream, feed)
		return err == nil
	})
	publish("the feed removed from outside")
	receive("the feed removed from outside")

	// Every record once: none lost, none twice.
	for id, n := range got {
		if n != 1 {
			t.Errorf("record %d (%s) reached the integrator %d times", id, phaseOf[id], n)
		}
	}

	// 5. Tax's own grant ends: the feed stops (seen from the hub's own
	// connection, which may read every subject; the integrator's is
	// closed by the revocation).
	watch, err := a.Node.NC.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Unsubscribe() }()
	if err := a.Node.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(f.owner).Shares.RevokeGrant(ctx, &xhubv1.RevokeGrantRequest{GrantId: f.grant, Reason: "ended"}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "tax's feed removed when its grant ended", func() bool {
		_, err := a.Node.JS.Consumer(ctx, bus.DataStream, feed)
		return err != nil
	})
	for _, e := range nodes {
		testenv.WaitFor(t, 20*time.Second, "the revocation applied on "+e.Node.Addr(), func() bool {
			_, err := e.Node.CP.CheckAccess("tax", catalog.DatasetID("health.cases"), time.Now())
			return err != nil
		})
	}
	publish("after tax's grant ended")
	sweeps("after tax's grant ended", 3)
	if m, err := watch.NextMsg(100 * time.Millisecond); err != nats.ErrTimeout {
		t.Fatalf("a record reached tax's subject after its grant ended: %s (%v)", msgData(m), err)
	}
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}
