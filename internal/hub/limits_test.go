package hub_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// exhausted checks a RESOURCE_EXHAUSTED refusal that names its bound,
// with a QuotaFailure detail.
func exhausted(t *testing.T, err error, bound string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), bound) {
		t.Fatalf("got %v, want ResourceExhausted naming %q", err, bound)
	}
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.QuotaFailure); ok {
			return
		}
	}
	t.Fatalf("no QuotaFailure detail in %v", err)
}

func subscriptions(t *testing.T, c *adapters.Client, dept string) []string {
	t.Helper()
	r, err := testenv.RPC(c).Exchange.ListSubscriptions(context.Background(), &xhubv1.ListSubscriptionsRequest{Dept: dept})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range r.Subscriptions {
		out = append(out, s.Dept+"/"+s.Name)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSubscriptionsBounded is the exhaustion attack: one department
// making subscription after subscription. It reaches its own bound, and
// nobody else's subscriptions are affected; it can list and delete its
// own, not others'; subscriptions whose grant ends are removed.
func TestSubscriptionsBounded(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward"}, testenv.WithLimits(hub.Limits{MaxDurableSubscriptions: 3}))
	ctx := context.Background()
	police, policeOfficer := f.env.System("police", "ops"), f.env.Officer("police")
	r, err := testenv.RPC(policeOfficer).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "p", Fields: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(f.owner).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id}); err != nil {
		t.Fatal(err)
	}
	open := func(c *adapters.Client, name string) error {
		s, err := c.Subscribe(ctx, "health.cases", name, "")
		if err == nil {
			s.Close()
		}
		return err
	}
	for i := range 3 {
		if err := open(f.consumer, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	exhausted(t, open(f.consumer, "s3"), "(3)")
	if err := open(f.consumer, "s1"); err != nil { // resuming is not making
		t.Fatalf("resume an existing subscription at the bound: %v", err)
	}
	if err := open(police, "ops"); err != nil {
		t.Fatalf("another department blocked by tax's subscriptions: %v", err)
	}

	if got := subscriptions(t, f.consumer, ""); len(got) != 3 || !strings.HasPrefix(got[0], "tax/") {
		t.Fatalf("tax lists %v", got)
	}
	if got := subscriptions(t, policeOfficer, ""); len(got) != 1 || got[0] != "police/ops" {
		t.Fatalf("police lists %v", got)
	}
	if _, err := testenv.RPC(police).Exchange.ListSubscriptions(ctx, &xhubv1.ListSubscriptionsRequest{Dept: "tax"}); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("police listing tax's subscriptions: %v", err)
	}
	if _, err := testenv.RPC(police).Exchange.DeleteSubscription(ctx, &xhubv1.DeleteSubscriptionRequest{Name: "s0"}); testenv.Code(err) != codes.NotFound {
		t.Fatalf("police deleting tax's subscription: %v", err)
	}
	if got := subscriptions(t, f.env.Admin, ""); len(got) != 4 {
		t.Fatalf("the operator lists %v", got)
	}
	if _, err := testenv.RPC(f.grantee).Exchange.DeleteSubscription(ctx, &xhubv1.DeleteSubscriptionRequest{Name: "s0"}); err != nil {
		t.Fatal(err)
	}
	if err := open(f.consumer, "s3"); err != nil {
		t.Fatalf("after a delete, a new subscription: %v", err)
	}

	// The grant ends: tax's subscriptions go, police's stay.
	if _, err := testenv.RPC(f.owner).Shares.RevokeGrant(ctx, &xhubv1.RevokeGrantRequest{GrantId: f.grant, Reason: "ended"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "tax's subscriptions removed after revocation", func() bool { return len(subscriptions(t, f.env.Admin, "tax")) == 0 })
	if got := subscriptions(t, f.env.Admin, ""); len(got) != 1 || got[0] != "police/ops" {
		t.Fatalf("after tax's revocation: %v", got)
	}
}

// TestSubscriptionsExpire: one idle too long is deleted by the server;
// one made by a credential later revoked is removed.
func TestSubscriptionsExpire(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward"}, testenv.WithLimits(hub.Limits{SubscriptionIdle: time.Second}))
	ctx := context.Background()
	s, err := f.consumer.Subscribe(ctx, "health.cases", "idle", "")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	eventually(t, "idle subscription deleted", func() bool { return len(subscriptions(t, f.grantee, "")) == 0 })

	id := vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "laptop"}
	c := f.env.Dial(f.env.Creds("tax", vocab.RoleSystem, "laptop"))
	s, err = c.Subscribe(ctx, "health.cases", "lost", "")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := testenv.RPC(f.env.Admin).Credentials.ListCredentials(ctx, &xhubv1.ListCredentialsRequest{Dept: "tax"})
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range creds.Credentials {
		if cr.Identity == id.URI() {
			if _, err := testenv.RPC(f.grantee).Credentials.RevokeCredential(ctx, &xhubv1.RevokeCredentialRequest{Serial: cr.Serial, Reason: "lost laptop"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.Recv(); testenv.Code(err) != codes.Unauthenticated {
		t.Fatalf("the revoked credential's stream ended with %v", err)
	}
	eventually(t, "subscription of a revoked credential removed", func() bool { return len(subscriptions(t, f.grantee, "")) == 0 })
}

// TestOtherBoundsPerDepartment: pending share requests and open provider
// streams are bounded per department with the same refusal.
func TestOtherBoundsPerDepartment(t *testing.T) {
	env := testenv.Start(t, testenv.WithLimits(hub.Limits{MaxPendingRequests: 2, MaxProviderStreams: 1}))
	ctx := context.Background()
	owner, tax := env.Officer("health"), env.Officer("tax")
	for i := range 3 {
		id := fmt.Sprintf("health.d%d", i)
		if _, err := testenv.RPC(owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: id, SchemaJson: []byte(casesSchema)}); err != nil {
			t.Fatal(err)
		}
		if _, err := testenv.RPC(owner).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: id, Title: id, ShareType: "conditional", SchemaSubject: id}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if _, err := testenv.RPC(tax).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: fmt.Sprintf("health.d%d", i), Purpose: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := testenv.RPC(tax).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.d2", Purpose: "p"})
	exhausted(t, err, "(2)")
	if _, err := testenv.RPC(env.Officer("police")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.d2", Purpose: "p"}); err != nil {
		t.Fatalf("police blocked by tax's pending requests: %v", err)
	}

	p1, p2 := env.System("health", "a"), env.System("health", "b")
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := make(chan error, 1)
	go func() {
		first <- p1.Serve(pctx, []string{"health.d0"}, func(context.Context, adapters.ProviderQuery) ([][]byte, string, error) { return nil, "", nil })
	}()
	// The owner's own system reads its dataset: once that answers, the
	// first provider stream is open.
	eventually(t, "first provider stream open", func() bool {
		_, err := p2.Query(ctx, "health.d0", adapters.QueryOptions{})
		return err == nil
	})
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	exhausted(t, p2.Serve(actx, []string{"health.d0"}, nil), "(1)")
	cancel()
	<-first
}

// TestSilentProvider: a provider that takes calls and never answers costs
// each consumer at most the query timeout, with a reason; a flood of
// queries is refused as busy beyond what one provider stream holds,
// rather than queued without bound; once the provider leaves, queries
// are told at once.
func TestSilentProvider(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward"}, testenv.WithLimits(hub.Limits{QueryTimeout: 3 * time.Second, MaxPendingCalls: 50}))
	ctx := context.Background()
	pctx, stop := context.WithCancel(ctx)
	served := make(chan struct{}, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.provider.Serve(pctx, []string{"health.cases"}, func(ctx context.Context, _ adapters.ProviderQuery) ([][]byte, string, error) {
			served <- struct{}{}
			<-ctx.Done()
			return nil, "", ctx.Err()
		})
	}()
	eventually(t, "provider connected", func() bool {
		_, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{})
		return err != nil && strings.Contains(err.Error(), "did not answer within 3s")
	})

	// More than one provider stream holds unanswered (50 here), all in
	// flight within the timeout even on a slow machine.
	const flood = 150
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{})
			key := "other: " + fmt.Sprint(err)
			switch {
			case testenv.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "did not answer within"):
				key = "timeout"
			case testenv.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "busy"):
				key = "busy"
			}
			mu.Lock()
			outcomes[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if outcomes["timeout"]+outcomes["busy"] != flood || outcomes["busy"] == 0 || outcomes["timeout"] == 0 {
		t.Fatalf("flood of %d queries on a silent provider: %v", flood, outcomes)
	}
	stop()
	<-done
	eventually(t, "provider gone", func() bool {
		_, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{})
		return err != nil && strings.Contains(err.Error(), "no provider")
	})
}

// TestAuditStreamCost: the audit stream's size is a metric; the figure it
// gives per query goes in the README (go test -run TestAuditStreamCost -v).
func TestAuditStreamCost(t *testing.T) {
	f := newDataFixture(t, testenv.WithMetrics())
	f.serve(t, nil)
	ctx := context.Background()
	bytesNow := func() float64 {
		for _, l := range strings.Split(metricsText(t, f.env), "\n") {
			if v, ok := strings.CutPrefix(l, "xhub_audit_stream_bytes "); ok {
				var x float64
				fmt.Sscan(v, &x)
				return x
			}
		}
		t.Fatal("no xhub_audit_stream_bytes metric")
		return 0
	}
	const n = 300
	var before float64
	eventually(t, "audit of the readiness probe stored", func() bool { before = bytesNow(); return before > 0 })
	for range n {
		if _, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{Fields: []string{"id", "ward"}}); err != nil {
			t.Fatal(err)
		}
	}
	var after float64
	eventually(t, "audit entries stored", func() bool { after = bytesNow(); return after-before > n*100 })
	t.Logf("audit stream: %.0f bytes per query (%d queries of 3 records, one withheld)", (after-before)/n, n)
	// The audit stream has its own bound by default: half the store's
	// control reserve (hub.StoreBounds).
	if m := metricsText(t, f.env); strings.Contains(m, "xhub_audit_max_bytes -1") || !strings.Contains(m, "xhub_audit_max_bytes ") {
		t.Fatal("the audit stream has no byte bound by default")
	}
	for _, m := range []string{"xhub_audit_stream_messages", "xhub_audit_retention_seconds 1.5552e+07", "xhub_audit_oldest_seconds"} {
		if !strings.Contains(metricsText(t, f.env), m) {
			t.Fatalf("metrics lack %s", m)
		}
	}
}
