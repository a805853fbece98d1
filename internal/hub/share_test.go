package hub_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

// publishOpen registers a schema and publishes an open dataset.
func publishOpen(t *testing.T, owner *adapters.Client, id, share string) {
	t.Helper()
	ctx := context.Background()
	if _, err := testenv.RPC(owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: id, SchemaJson: []byte(schemaV1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(owner).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: id, Title: id, ShareType: share, SchemaSubject: id}); err != nil {
		t.Fatal(err)
	}
}

func countKind(t *testing.T, c *adapters.Client, kind string) int {
	t.Helper()
	n := 0
	for _, e := range entries(t, c, 0) {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// TestExpiryTwoNodesExactlyOnce: both nodes sweep for expired grants; the
// log lets exactly one grant.expired entry through per grant.
func TestExpiryTwoNodesExactlyOnce(t *testing.T) {
	clock := testenv.NewClock(t0)
	a := testenv.Start(t, testenv.WithNATSListen(), testenv.WithClock(clock), testenv.WithSweep(5*time.Millisecond))
	dirB := t.TempDir()
	a.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB, testenv.WithNATSURL(a.NATSURL()), testenv.WithClock(clock), testenv.WithSweep(5*time.Millisecond))
	ctx := context.Background()

	publishOpen(t, a.Officer("health"), "health.cases", "open")
	const grants = 8
	var top uint64
	for i := range grants {
		dept := fmt.Sprintf("dept-%d", i)
		node := []*testenv.Env{a, b}[i%2]
		r, err := testenv.RPC(node.Officer(dept)).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "p", Days: int32(1 + i%3)})
		if err != nil || r.Grant == nil {
			t.Fatalf("request %d: %v %v", i, r, err)
		}
		top = max(top, r.Seq)
	}
	if n := countKind(t, a.Admin, "grant.expired"); n != 0 {
		t.Fatalf("%d grants expired before their time", n)
	}
	clock.Advance(4 * 24 * time.Hour)
	deadline := time.Now().Add(20 * time.Second)
	for countKind(t, a.Admin, "grant.expired") < grants {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d grants expired", countKind(t, a.Admin, "grant.expired"), grants)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let both sweepers run many more rounds: still exactly one per grant.
	time.Sleep(200 * time.Millisecond)
	if n := countKind(t, a.Admin, "grant.expired"); n != grants {
		t.Fatalf("%d grant.expired entries for %d grants", n, grants)
	}
	r, err := testenv.RPC(b.Admin).Shares.ListShares(ctx, &xhubv1.ListSharesRequest{Status: "expired", MinSeq: a.Node.CP.Applied(), PageSize: 100})
	if err != nil || len(r.Grants) != grants {
		t.Fatalf("node B lists %d expired grants: %v", len(r.Grants), err)
	}
}

// TestExpiredGrantNeverCounts: once past its expiry a grant allows nothing,
// even if no node has appended its grant.expired entry yet.
func TestExpiredGrantNeverCounts(t *testing.T) {
	clock := testenv.NewClock(t0)
	env := testenv.Start(t, testenv.WithClock(clock), testenv.WithSweep(-1))
	ctx := context.Background()
	publishOpen(t, env.Officer("health"), "health.cases", "open")
	if _, err := testenv.RPC(env.Officer("tax")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "p", Days: 2}); err != nil {
		t.Fatal(err)
	}
	cp := env.Node.CP
	if _, err := cp.CheckAccess("tax", "health.cases", clock.Now()); err != nil {
		t.Fatalf("fresh grant: %v", err)
	}
	if _, err := cp.CheckAccess("tax", "health.cases", t0.Add(48*time.Hour-time.Nanosecond)); err != nil {
		t.Fatalf("grant just before expiry: %v", err)
	}
	if _, err := cp.CheckAccess("tax", "health.cases", t0.Add(48*time.Hour)); err == nil {
		t.Fatal("grant allowed access at its expiry time")
	}
	if _, err := cp.CheckAccess("police", "health.cases", clock.Now()); err == nil {
		t.Fatal("a department without a grant was allowed")
	}
	clock.Advance(72 * time.Hour)
	r, err := testenv.RPC(env.Admin).Shares.ListShares(ctx, &xhubv1.ListSharesRequest{Dataset: "health.cases"})
	if err != nil || len(r.Grants) != 1 || r.Grants[0].Status != "expired" {
		t.Fatalf("listing shows %v, want one expired grant: %v", r, err)
	}
	if n := countKind(t, env.Admin, "grant.expired"); n != 0 {
		t.Fatalf("sweeper off, yet %d expiry entries", n)
	}
}

func TestOverdueRequests(t *testing.T) {
	clock := testenv.NewClock(t0)
	env := testenv.Start(t, testenv.WithClock(clock), testenv.WithResponseDays(3))
	ctx := context.Background()
	owner := env.Officer("health")
	publishOpen(t, owner, "health.cases", "conditional")
	if _, err := testenv.RPC(env.Officer("tax")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "p"}); err != nil {
		t.Fatal(err)
	}
	in, err := testenv.RPC(owner).Shares.Inbox(ctx, &xhubv1.InboxRequest{})
	if err != nil || len(in.Requests) != 1 || in.Requests[0].Overdue {
		t.Fatalf("inbox: %v %v", in, err)
	}
	clock.Advance(3*24*time.Hour + time.Minute)
	in, _ = testenv.RPC(owner).Shares.Inbox(ctx, &xhubv1.InboxRequest{})
	if !in.Requests[0].Overdue {
		t.Fatal("request past the response deadline not shown overdue")
	}
	l, err := testenv.RPC(owner).Shares.ListShares(ctx, &xhubv1.ListSharesRequest{Requests: true, Status: "overdue"})
	if err != nil || len(l.Requests) != 1 {
		t.Fatalf("overdue list: %v %v", l, err)
	}
}

// TestGrantListsArePagedCompletely: every grant shows up exactly once
// across pages, whatever the page size.
func TestGrantListsArePagedCompletely(t *testing.T) {
	env := testenv.Start(t, testenv.WithSweep(-1))
	ctx := context.Background()
	publishOpen(t, env.Officer("health"), "health.cases", "open")
	const n = 23
	for i := range n {
		if _, err := testenv.RPC(env.Officer(fmt.Sprintf("d-%02d", i))).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	token := ""
	for {
		r, err := testenv.RPC(env.Admin).Shares.ListShares(ctx, &xhubv1.ListSharesRequest{Dataset: "health.cases", Status: "active", PageSize: 5, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range r.Grants {
			if seen[g.Id] {
				t.Fatalf("%s twice", g.Id)
			}
			seen[g.Id] = true
		}
		if token = r.NextPageToken; token == "" {
			break
		}
	}
	if len(seen) != n {
		t.Fatalf("%d grants across pages, want %d", len(seen), n)
	}
}

// TestShareEvents: a conditional request reaches the owner's officers on
// xhub.ev.<owner>, the decision the requester's on xhub.ev.<requester>.
func TestShareEvents(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	owner := env.Officer("health")
	publishOpen(t, owner, "health.cases", "conditional")
	evs := make(chan string, 4)
	for _, d := range []string{"health", "tax"} {
		sub, err := env.Node.NC.Subscribe("xhub.ev."+d, func(m *nats.Msg) { evs <- m.Subject + " " + string(m.Data) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	r, err := testenv.RPC(env.Officer("tax")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(owner).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`xhub.ev.health {"kind":"share.requested","id":"` + r.Request.Id + `"}`,
		`xhub.ev.tax {"kind":"share.approved","id":"` + r.Request.Id + `"}`,
	}
	for _, w := range want {
		select {
		case got := <-evs:
			if got != w {
				t.Fatalf("event %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event %q", w)
		}
	}
}

// TestNATSPortNeedsPassword: the embedded server's port, when opened,
// refuses clients without the hub's credentials.
func TestNATSPortNeedsPassword(t *testing.T) {
	env := testenv.Start(t, testenv.WithNATSListen())
	u, err := url.Parse(env.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	anon := "nats://" + u.Host
	if nc, err := nats.Connect(anon, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected to the hub's NATS without a password")
	}
	nc, err := nats.Connect(env.NATSURL(), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("with the hub's password: %v", err)
	}
	nc.Close()
}

// TestTwoNodesRaceToDecide: the owner's officers approve the same request
// through two nodes at once; the log lets exactly one decision through.
func TestTwoNodesRaceToDecide(t *testing.T) {
	a := testenv.Start(t, testenv.WithNATSListen())
	dirB := t.TempDir()
	a.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB, testenv.WithNATSURL(a.NATSURL()))
	ctx := context.Background()
	publishOpen(t, a.Officer("health"), "health.cases", "conditional")
	for round := range 5 {
		r, err := testenv.RPC(a.Officer(fmt.Sprintf("dept-%d", round))).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "p"})
		if err != nil {
			t.Fatal(err)
		}
		offA, offB := a.Officer("health"), b.Officer("health")
		errs := make(chan error, 2)
		go func() {
			_, err := testenv.RPC(offA).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id})
			errs <- err
		}()
		go func() {
			_, err := testenv.RPC(offB).Shares.Reject(ctx, &xhubv1.RejectRequest{RequestId: r.Request.Id, Reason: "no"})
			errs <- err
		}()
		e1, e2 := <-errs, <-errs
		ok, refused := 0, 0
		for _, err := range []error{e1, e2} {
			switch testenv.Code(err) {
			case codes.OK:
				ok++
			case codes.FailedPrecondition:
				refused++
			default:
				t.Fatalf("decision: %v", err)
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("round %d: %d decisions went through, %d refused; want 1 and 1", round, ok, refused)
		}
	}
}
