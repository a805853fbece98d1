package hub_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
	"google.golang.org/grpc/codes"
)

// TestFailover: on a NATS cluster with two hub nodes (the second joined
// with a token), clients naming both keep working when the node they use
// stops: calls go to the other, a subscription resumes from its durable
// position without losing a record, and a write retried with its request
// id on the other node is applied once and answered the same.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	cluster := testenv.StartNATSCluster(t, 3)
	a := testenv.Start(t, testenv.WithNATSURL(cluster.URL()), testenv.WithReplicas(3), testenv.WithName("hub-a"))
	ctx := context.Background()
	tok, _, err := a.Admin.CreateJoinToken(ctx, "hub-b", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := testenv.Start(t, testenv.WithJoin(tok), testenv.WithName("hub-b"))
	both := a.Addr() + "," + b.Addr()
	dialBoth := func(creds string) *adapters.Client {
		c, err := adapters.Dial(ctx, creds, adapters.WithHub(both))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	f := &dataFixture{env: a, owner: a.Officer("health"), grantee: a.Officer("tax")}
	mustSetUp(t, f, "open")
	admin := dialBoth(a.Node.AdminCreds)
	publisher := dialBoth(a.Creds("health", vocab.RoleSystem, "registry"))
	subscriber := dialBoth(a.Creds("tax", vocab.RoleSystem, "etl"))

	// A write retried with its request id, on the other node, is applied
	// once and answered the same.
	rctx := adapters.WithRequestID(ctx, "add-finance-1")
	d1, err := a.Admin.AddDepartment(rctx, "finance", "Finance")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := b.Dial(a.Node.AdminCreds).AddDepartment(rctx, "finance", "Finance") // the same caller
	if err != nil || d2 != d1 {
		t.Fatalf("retried write on the other node: %+v, %v; first answer %+v", d2, err, d1)
	}
	ents, err := b.Admin.Entries(ctx, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if e.Kind == "dept.added" && e.Subject == "finance" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the department was added %d times", n)
	}
	// Another caller's request id is its own.
	if _, err := b.Admin.AddDepartment(rctx, "finance", "Finance"); testenv.Code(err) != codes.AlreadyExists {
		t.Fatalf("another caller reusing the id: %v", err)
	}

	sub, err := subscriber.Subscribe(ctx, "health.cases", "failover", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	publish := func(batch int) {
		t.Helper()
		if _, err := publisher.Publish(ctx, "health.cases", records(10, 10*batch), fmt.Sprintf("b%d", batch)); err != nil {
			t.Fatalf("publish %d: %v", batch, err)
		}
	}
	seen := map[string]int{}
	receive := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for len(seen) < want {
			if time.Now().After(deadline) {
				t.Fatalf("received %d distinct records, want %d", len(seen), want)
			}
			d, err := sub.Recv()
			if err != nil {
				t.Fatalf("recv after %d: %v", len(seen), err)
			}
			seen[string(d.Record)]++
			if err := sub.Ack(d.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 3 {
		publish(i)
	}
	receive(30)

	// A provider that stays connected (the SDK's Provide), and a
	// consumer, both naming both nodes.
	provider := dialBoth(a.Creds("health", vocab.RoleSystem, "db"))
	consumer := dialBoth(a.Creds("tax", vocab.RoleSystem, "reader"))
	pctx, stopProvider := context.WithCancel(ctx)
	defer stopProvider()
	var breaks atomic.Int32
	go func() {
		_ = provider.Provide(pctx, []string{"health.cases"}, func(context.Context, adapters.ProviderQuery) ([][]byte, string, error) {
			return [][]byte{[]byte(`{"id":1,"ward":"north","age":30}`)}, "", nil
		}, func(error, time.Duration) { breaks.Add(1) })
	}()
	query := func(within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			_, err := consumer.Query(ctx, "health.cases", adapters.QueryOptions{})
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer within %s: %v", within, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	query(10 * time.Second)

	// The node every client uses first stops.
	a.Stop()
	stopped := time.Now()
	query(15 * time.Second)
	t.Logf("the provider served again %s after its node stopped (%d breaks)", time.Since(stopped).Round(10*time.Millisecond), breaks.Load())
	if breaks.Load() == 0 {
		t.Fatal("the provider's stream never broke: it was not on the stopped node")
	}
	for i := 3; i < 6; i++ {
		publish(i)
	}
	receive(60)
	if sub.Resumed == 0 {
		t.Fatal("the subscription never moved to the other node")
	}
	if _, err := admin.AddDepartment(ctx, "police", "Police"); err != nil {
		t.Fatalf("write after the first node stopped: %v", err)
	}
	if _, err := testenv.RPC(admin).Ledger.GetHead(ctx, &xhubv1.GetHeadRequest{}); err != nil {
		t.Fatalf("read after the first node stopped: %v", err)
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("60 records received, %d delivered twice", dups)
}

// mustSetUp registers casesSchema as health.cases with the given share
// type and grants tax the fields id, ward, age.
func mustSetUp(t *testing.T, f *dataFixture, share string) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := f.owner.RegisterSchema(ctx, "health.cases", []byte(casesSchema), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.owner.PublishDataset(ctx, adapters.DatasetSpec{ID: "health.cases", Title: "Cases", ShareType: share, SchemaSubject: "health.cases"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.grantee.RequestShare(ctx, "health.cases", []string{"id", "ward", "age"}, "statistics", 0); err != nil {
		t.Fatal(err)
	}
}

// TestRequestIDReplay: every state-changing call retried with its request
// id gets the first answer and appends nothing; a call whose answer
// cannot be given again (a new credential's certificate) says it was
// applied, as FAILED_PRECONDITION naming the entry.
func TestRequestIDReplay(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	owner, tax := env.Officer("health"), env.Officer("tax")
	once := func(id string) context.Context { return adapters.WithRequestID(ctx, id) }
	if _, _, err := owner.RegisterSchema(ctx, "health.cases", []byte(casesSchema), ""); err != nil {
		t.Fatal(err)
	}
	for _, share := range []string{"open", "conditional"} {
		id := "health." + share
		if _, _, err := owner.RegisterSchema(ctx, id, []byte(casesSchema), ""); err != nil {
			t.Fatal(err)
		}
		p1, err := owner.PublishDataset(once("pub-"+share), adapters.DatasetSpec{ID: id, Title: id, ShareType: share, SchemaSubject: id})
		if err != nil {
			t.Fatal(err)
		}
		if p2, err := owner.PublishDataset(once("pub-"+share), adapters.DatasetSpec{ID: id, Title: id, ShareType: share, SchemaSubject: id}); err != nil || p2.Seq != p1.Seq {
			t.Fatalf("publish replayed: %+v %v, first %+v", p2, err, p1)
		}
	}
	head := func() uint64 {
		h, err := testenv.RPC(env.Admin).Ledger.GetHead(ctx, &xhubv1.GetHeadRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return h.Size
	}
	// Open: the request and its grant, answered again.
	r1, err := tax.RequestShare(once("req-open"), "health.open", nil, "p", 0)
	if err != nil || r1.Grant == nil {
		t.Fatalf("open request: %+v %v", r1, err)
	}
	before := head()
	r2, err := tax.RequestShare(once("req-open"), "health.open", nil, "p", 0)
	if err != nil || r2.Request.ID != r1.Request.ID || r2.Grant == nil || r2.Grant.ID != r1.Grant.ID || head() != before {
		t.Fatalf("open request replayed: %+v %v (first %+v); head %d → %d", r2, err, r1, before, head())
	}
	// Conditional: request, approval.
	c1, err := tax.RequestShare(once("req-cond"), "health.conditional", []string{"id"}, "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := tax.RequestShare(once("req-cond"), "health.conditional", []string{"id"}, "p", 0); err != nil || c2.Request.ID != c1.Request.ID {
		t.Fatalf("conditional request replayed: %+v %v", c2, err)
	}
	a1, err := owner.Approve(once("approve-1"), c1.Request.ID, nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	before = head()
	a2, err := owner.Approve(once("approve-1"), c1.Request.ID, nil, 0, "")
	if err != nil || a2.Seq != a1.Seq || a2.Grant.ID != a1.Grant.ID || head() != before {
		t.Fatalf("approval replayed: %+v %v (first %+v)", a2, err, a1)
	}
	// Without the id, the second approval is refused as it should be.
	if _, err := owner.Approve(ctx, c1.Request.ID, nil, 0, ""); testenv.Code(err) != codes.FailedPrecondition {
		t.Fatalf("second approval without the id: %v", err)
	}
	g1, err := owner.RevokeGrant(once("revoke-1"), a1.Grant.ID, "done")
	if err != nil {
		t.Fatal(err)
	}
	if g2, err := owner.RevokeGrant(once("revoke-1"), a1.Grant.ID, "done"); err != nil || g2.Seq != g1.Seq {
		t.Fatalf("revocation replayed: %+v %v", g2, err)
	}
	// A credential cannot be answered twice: the caller is told it exists.
	id := vocab.Identity{Dept: "health", Role: vocab.RoleSystem, Name: "once"}
	if _, _, err := owner.IssueCredential(once("cred-1"), id, 1); err != nil {
		t.Fatal(err)
	}
	_, _, err = owner.IssueCredential(once("cred-1"), id, 1)
	if testenv.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "already applied as ledger entry") {
		t.Fatalf("credential replayed: %v", err)
	}
	// A request id is text of bounded size.
	if _, err := env.Admin.AddDepartment(once(strings.Repeat("x", 65)), "x", "X"); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("long request id: %v", err)
	}
	if _, err := env.Admin.AddDepartment(once("bad id"), "x", "X"); testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "request_id") {
		t.Fatalf("request id with characters outside the set: %v", err)
	}
}

// TestOneRequestIDEndToEnd: the consumer's request id reaches the
// provider's handler, comes back in the answer, and names the audit
// entry.
func TestOneRequestIDEndToEnd(t *testing.T) {
	f := newDataFixture(t)
	seen := make(chan string, 16)
	f.serveWith(t, nil, func(q adapters.ProviderQuery) []string {
		seen <- q.RequestID
		return casesRecords
	})
	for len(seen) > 0 {
		<-seen // the readiness probe's
	}
	ctx := adapters.WithRequestID(context.Background(), "trace-42")
	r, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-seen; got != "trace-42" || r.RequestID != "trace-42" {
		t.Fatalf("provider saw %q, answer says %q; want trace-42", got, r.RequestID)
	}
	eventually(t, "audit entry with the request id", func() bool {
		es, err := f.owner.Audit(context.Background(), adapters.AuditQuery{Dataset: "health.cases"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.RequestID == "trace-42" && e.Dept == "tax" {
				return true
			}
		}
		return false
	})
}
