package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

const casesSchema = `{"type":"object","properties":{
  "id":{"type":"integer"},"name":{"type":"string"},"ward":{"type":"string"},"age":{"type":"integer","minimum":0}},
  "required":["id","ward"]}`

var casesRecords = []string{
	`{"id":1,"name":"Ana","ward":"north","age":34}`,
	`{"id":2,"name":"Bo","ward":"south","age":-5}`, // invalid: age < 0
	`{"id":3,"name":"Cy","ward":"north","age":71}`,
	`{"id":9007199254740993,"name":"Big","ward":"east","age":20}`, // beyond float64
}

type dataFixture struct {
	env                *testenv.Env
	owner, grantee     *adapters.Client // officers
	provider, consumer *adapters.Client // systems
	consumerCreds      string           // the consumer's creds file
	grant              string
}

func newDataFixture(t *testing.T, opts ...testenv.Option) *dataFixture {
	t.Helper()
	return newGrantFixture(t, []string{"id", "ward", "age"}, opts...)
}

// newGrantFixture is newDataFixture with a grant of the given fields.
func newGrantFixture(t *testing.T, fields []string, opts ...testenv.Option) *dataFixture {
	t.Helper()
	return grantFixture(t, testenv.Start(t, opts...), fields)
}

// grantOn is newDataFixture on a running env.
func grantOn(t *testing.T, env *testenv.Env) *dataFixture {
	t.Helper()
	return grantFixture(t, env, []string{"id", "ward", "age"})
}

func grantFixture(t *testing.T, env *testenv.Env, fields []string) *dataFixture {
	t.Helper()
	f := &dataFixture{env: env, owner: env.Officer("health"), grantee: env.Officer("tax")}
	f.consumerCreds = env.Creds("tax", vocab.RoleSystem, "etl")
	f.provider, f.consumer = env.System("health", "clinic-db"), env.Dial(f.consumerCreds)
	ctx := context.Background()
	if _, err := testenv.RPC(f.owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.cases", SchemaJson: []byte(casesSchema)}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(f.owner).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: "health.cases", Title: "Cases", ShareType: "conditional", SchemaSubject: "health.cases"}); err != nil {
		t.Fatal(err)
	}
	r, err := testenv.RPC(f.grantee).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "statistics", Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	d, err := testenv.RPC(f.owner).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id})
	if err != nil {
		t.Fatal(err)
	}
	f.grant = d.Grant.Id
	return f
}

// serve runs a provider with the fixed records until the test ends.
func (f *dataFixture) serve(t *testing.T, block chan struct{}) context.CancelFunc {
	return f.serveWith(t, block, func(adapters.ProviderQuery) []string { return casesRecords })
}

// serveWith runs a provider answering each query with answer's records.
func (f *dataFixture) serveWith(t *testing.T, block chan struct{}, answer func(adapters.ProviderQuery) []string) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.provider.Serve(ctx, []string{"health.cases"}, func(ctx context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
			if block != nil {
				select {
				case <-block:
				case <-ctx.Done():
					return nil, "", ctx.Err()
				}
			}
			var out [][]byte
			for _, r := range answer(q) {
				out = append(out, []byte(r))
			}
			return out, "", nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	if block != nil {
		return cancel
	}
	// Wait until the provider is subscribed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := f.consumer.Query(context.Background(), "health.cases", adapters.QueryOptions{Limit: 1})
		if testenv.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cancel
}

func TestQuery(t *testing.T) {
	f := newDataFixture(t, testenv.WithMetrics())
	ctx := context.Background()

	_, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{})
	if testenv.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "no provider of health.cases") {
		t.Fatalf("no provider: %v", err)
	}
	f.serve(t, nil)

	r, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Records) != 3 || r.Withheld != 1 || !strings.Contains(r.WithheldReasons[0], "record 1") || !strings.Contains(r.WithheldReasons[0], "/age") {
		t.Fatalf("query: %d records, withheld %d %v", len(r.Records), r.Withheld, r.WithheldReasons)
	}
	for _, rec := range r.Records {
		if strings.Contains(string(rec), "name") {
			t.Fatalf("ungranted field delivered: %s", rec)
		}
	}
	if string(r.Records[2]) != `{"age":20,"id":9007199254740993,"ward":"east"}` {
		t.Fatalf("64-bit id or projection: %s", r.Records[2])
	}

	r, err = f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{Fields: []string{"id"}, Where: []string{"age>=30", "ward=north"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Records) != 2 || string(r.Records[0]) != `{"id":1}` {
		t.Fatalf("filtered query: %q", r.Records)
	}

	for _, tc := range []struct {
		name string
		c    *adapters.Client
		o    adapters.QueryOptions
		code codes.Code
		want string
	}{
		{"no grant", f.env.System("police", "x"), adapters.QueryOptions{}, codes.PermissionDenied, "holds no active grant"},
		{"field outside grant", f.consumer, adapters.QueryOptions{Fields: []string{"id", "name"}}, codes.PermissionDenied, `field "name"`},
		{"filter outside grant", f.consumer, adapters.QueryOptions{Where: []string{"name=Ana"}}, codes.PermissionDenied, "would reveal it"},
		{"filter of wrong type", f.consumer, adapters.QueryOptions{Where: []string{"age=old"}}, codes.InvalidArgument, "does not fit"},
		{"filter on unknown field", f.consumer, adapters.QueryOptions{Where: []string{"zzz=1"}}, codes.InvalidArgument, "not a field"},
		{"limit", f.consumer, adapters.QueryOptions{Limit: 5000}, codes.InvalidArgument, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Query(ctx, "health.cases", tc.o)
			if testenv.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s with %q", err, tc.code, tc.want)
			}
		})
	}

	// The node counts what it did.
	body := metricsText(t, f.env)
	for _, want := range []string{`xhub_queries_total{outcome="ok"}`, `xhub_queries_total{outcome="denied"}`, "xhub_query_records_withheld_total", "xhub_open_provider_streams 1", "xhub_ledger_applied_seq",
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Query",grpc_service="xhub.v1.Exchange",grpc_type="unary"}`, "grpc_server_handling_seconds_bucket",
		"xhub_ledger_apply_lag 0", "xhub_nats_connected 1", "xhub_nats_reconnects_total 0",
		`xhub_dataset_queries_total{dataset="health.cases",outcome="ok"}`, `xhub_dataset_queries_total{dataset="health.cases",outcome="denied"}`,
		`xhub_dataset_provider_streams{dataset="health.cases"} 1`, "xhub_ledger_appends_total"} {
		if !strings.Contains(body, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	// Datasets that do not exist make no series: a caller cannot grow the
	// node's metrics (or its memory) by naming them.
	for i := range 20 {
		if _, err := f.consumer.Query(ctx, fmt.Sprintf("health.nope%d", i), adapters.QueryOptions{}); err == nil {
			t.Fatal("query of a dataset that does not exist answered")
		}
	}
	if body := metricsText(t, f.env); strings.Contains(body, "nope") {
		t.Fatal("a dataset that does not exist has a metrics series")
	}

	// Revoked: refused.
	if _, err := testenv.RPC(f.owner).Shares.RevokeGrant(ctx, &xhubv1.RevokeGrantRequest{GrantId: f.grant, Reason: "done"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{}); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("query after revocation: %v", err)
	}

	// The audit trail: the owner sees the accesses to its dataset, the
	// consumer its own, a third department nothing.
	for _, tc := range []struct {
		c    *adapters.Client
		want int
	}{{f.owner, 3}, {f.grantee, 3}, {f.env.Officer("police"), 0}} { // readiness probe, full, filtered
		a, err := testenv.RPC(tc.c).Audit.ListAudit(ctx, &xhubv1.ListAuditRequest{Dataset: "health.cases"})
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Entries) != tc.want {
			t.Fatalf("%s sees %d audit entries, want %d", tc.c.Identity(), len(a.Entries), tc.want)
		}
		if tc.want > 0 && (a.Entries[1].Dept != "tax" || a.Entries[1].Records != 3 || a.Entries[1].Action != "query") {
			t.Fatalf("audit entry: %v", a.Entries[1])
		}
	}
}

// TestProviderGoneMidQuery: the consumer gets UNAVAILABLE at once, not a
// hang until the timeout.
func TestProviderGoneMidQuery(t *testing.T) {
	f := newDataFixture(t)
	block := make(chan struct{})
	stop := f.serve(t, block)
	time.Sleep(200 * time.Millisecond) // let the provider subscribe
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := f.consumer.Query(context.Background(), "health.cases", adapters.QueryOptions{})
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	stop()
	select {
	case err := <-errc:
		// Either the hub notices the stream closing ("provider
		// disconnected") or the provider's last words arrive first.
		if testenv.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "provider") {
			t.Fatalf("query while provider left: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("query still hanging %s after the provider left", time.Since(start))
	}
}

func records(n, from int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"id":%d,"name":"n%d","ward":"w","age":%d}`, from+i, from+i, 20+i)
	}
	return out
}

func TestPublishSubscribe(t *testing.T) {
	f := newDataFixture(t)
	ctx := context.Background()

	// A batch with one invalid record stores nothing.
	bad := append(records(2, 1), []byte(`{"id":"x","ward":"w"}`))
	_, err := f.provider.Publish(ctx, "health.cases", bad, "b0")
	if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "records[2] /id") || !strings.Contains(err.Error(), "nothing stored") {
		t.Fatalf("invalid batch: %v", err)
	}
	if _, err := f.consumer.Publish(ctx, "health.cases", records(1, 1), ""); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("a grantee publishing to another's dataset: %v", err)
	}

	sub, err := f.consumer.Subscribe(ctx, "health.cases", "etl", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := f.provider.Publish(ctx, "health.cases", records(2, 10), "b1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.provider.Publish(ctx, "health.cases", records(2, 10), "b1")
	if err != nil || !again.Duplicate || again.StreamSeq != r1.StreamSeq {
		t.Fatalf("repeated batch id: %v %v", again, err)
	}
	got := recvN(t, sub, 2)
	if got[0] != `{"age":20,"id":10,"ward":"w"}` {
		t.Fatalf("delivered %v", got)
	}
	sub.Close()

	// Restart the hub: the acknowledged position survives.
	f.env.Restart()
	f.provider = f.env.System("health", "clinic-db-2")
	consumer := f.env.System("tax", "etl-2")
	if _, err := f.provider.Publish(ctx, "health.cases", records(1, 20), "b2"); err != nil {
		t.Fatal(err)
	}
	sub, err = consumer.Subscribe(ctx, "health.cases", "etl", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	got = recvN(t, sub, 1)
	if got[0] != `{"age":20,"id":20,"ward":"w"}` {
		t.Fatalf("after restart delivered %v, want only the new batch", got)
	}

	// Revocation ends the stream within a second; nothing after it arrives.
	owner := f.env.Officer("health")
	if _, err := testenv.RPC(owner).Shares.RevokeGrant(ctx, &xhubv1.RevokeGrantRequest{GrantId: f.grant, Reason: "ended"}); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if _, err := f.provider.Publish(ctx, "health.cases", records(1, 30), "b3"); err != nil {
		t.Fatal(err)
	}
	for {
		d, err := sub.Recv()
		if err != nil {
			if testenv.Code(err) != codes.PermissionDenied {
				t.Fatalf("stream ended with %v, want PermissionDenied", err)
			}
			break
		}
		t.Fatalf("record delivered after the revocation: %s", d.Record)
	}
	if el := time.Since(revoked); el > time.Second {
		t.Fatalf("stream ended %s after the revocation", el)
	}
}

func recvN(t *testing.T, sub *adapters.Subscription, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		d, err := sub.Recv()
		if err != nil {
			t.Fatalf("after %d records: %v", len(out), err)
		}
		var m map[string]any
		if err := json.Unmarshal(d.Record, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, string(d.Record))
		if err := sub.Ack(d.ID); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRevokedCredentialEndsStreams: revoking the subscriber's credential
// ends its open stream, not only its next call.
func TestRevokedCredentialEndsStreams(t *testing.T) {
	f := newDataFixture(t)
	ctx := context.Background()
	creds := f.env.Creds("tax", "system", "short-lived")
	cl := f.env.Dial(creds)
	sub, err := cl.Subscribe(ctx, "health.cases", "s", "new")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.provider.Publish(ctx, "health.cases", records(1, 1), "x1"); err != nil {
		t.Fatal(err)
	}
	recvN(t, sub, 1)
	serial := mustSerial(t, creds)
	if _, err := testenv.RPC(f.env.Admin).Credentials.RevokeCredential(ctx, &xhubv1.RevokeCredentialRequest{Serial: serial, Reason: "laptop lost"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = sub.Recv()
	if testenv.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("stream after its credential was revoked: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("stream outlived its credential by %s", el)
	}
}

// TestShutdownEndsStreams: stopping a node ends its open streams with
// UNAVAILABLE at once, so shutdown does not wait on them.
func TestShutdownEndsStreams(t *testing.T) {
	f := newDataFixture(t)
	sub, err := f.consumer.Subscribe(context.Background(), "health.cases", "s", "new")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	f.env.Stop()
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("shutdown took %s with a stream open", el)
	}
	if _, err := sub.Recv(); testenv.Code(err) != codes.Unavailable {
		t.Fatalf("open stream at shutdown: %v", err)
	}
}

// TestProvidersShareTheLoad: two provider instances of one dataset both
// answer queries (one queue group), and either alone suffices.
func TestProvidersShareTheLoad(t *testing.T) {
	f := newDataFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	served := map[string]int{}
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		p := f.env.System("health", "replica-"+name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Serve(ctx, []string{"health.cases"}, func(context.Context, adapters.ProviderQuery) ([][]byte, string, error) {
				mu.Lock()
				served[name]++
				mu.Unlock()
				return [][]byte{[]byte(`{"id":1,"ward":"north"}`)}, "", nil
			})
		}()
	}
	defer wg.Wait()
	defer cancel()
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 60; i++ {
		if _, err := f.consumer.Query(context.Background(), "health.cases", adapters.QueryOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if served["a"] == 0 || served["b"] == 0 || served["a"]+served["b"] != 60 {
		t.Fatalf("queries served: %v", served)
	}
}

// TestQueryAcrossNodes: a provider connected to node B answers queries
// that reach B directly and queries that reach A, which forwards them
// over NATS; the consumer sees the same either way (records, withheld
// count and reasons, filters, the refusal of an answer too large to
// carry), and a provider that leaves frees both paths at once.
func TestQueryAcrossNodes(t *testing.T) {
	f := newDataFixture(t, testenv.WithNATSListen(), testenv.WithMetrics())
	dirB := t.TempDir()
	f.env.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB, testenv.WithNATSURL(f.env.NATSURL()), testenv.WithMetrics())
	ctx := context.Background()
	top, err := testenv.RPC(f.owner).Ledger.GetHead(ctx, &xhubv1.GetHeadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(b.Admin).Ledger.GetHead(ctx, &xhubv1.GetHeadRequest{MinSeq: top.Size}); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("x", 10_000)
	f.provider = b.Dial(f.env.Creds("health", vocab.RoleSystem, "on-b"))
	f.serveWith(t, nil, func(q adapters.ProviderQuery) []string {
		if q.Limit == 1000 { // more than one NATS message may carry
			out := make([]string, 1000)
			for i := range out {
				out[i] = fmt.Sprintf(`{"id":%d,"ward":%q}`, i, huge)
			}
			return out
		}
		return casesRecords
	})
	onA, onB := f.consumer, b.Dial(f.consumerCreds)
	for _, o := range []adapters.QueryOptions{
		{},
		{Fields: []string{"id"}, Where: []string{"age>=30", "ward=north"}},
		{Where: []string{`ward in ["north","east"]`, "id<9007199254740993"}},
		{Fields: []string{"ward"}, Limit: 2},
	} {
		ra, errA := onA.Query(ctx, "health.cases", o)
		rb, errB := onB.Query(ctx, "health.cases", o)
		if errA != nil || errB != nil {
			t.Fatalf("%+v: through A: %v; through B: %v", o, errA, errB)
		}
		if fmt.Sprint(ra.Records, ra.Withheld, ra.WithheldReasons) != fmt.Sprint(rb.Records, rb.Withheld, rb.WithheldReasons) {
			t.Fatalf("%+v: through A %q %d %q; through B %q %d %q", o, ra.Records, ra.Withheld, ra.WithheldReasons, rb.Records, rb.Withheld, rb.WithheldReasons)
		}
		if len(ra.Records) == 0 {
			t.Fatalf("%+v: no records", o)
		}
	}
	_, errA := onA.Query(ctx, "health.cases", adapters.QueryOptions{Limit: 1000})
	_, errB := onB.Query(ctx, "health.cases", adapters.QueryOptions{Limit: 1000})
	for _, err := range []error{errA, errB} {
		if testenv.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "more than one answer may carry") {
			t.Fatalf("answer too large: through A %v; through B %v", errA, errB)
		}
	}
	if errA.Error() != errB.Error() {
		t.Fatalf("answer too large: through A %v; through B %v", errA, errB)
	}
	// Each node took the route it should: B its own provider stream, A
	// NATS (its readiness probe included).
	for _, tc := range []struct {
		env        *testenv.Env
		want, none string
	}{{b, `xhub_query_routes_total{route="local"} 5`, `route="nats"`}, {f.env, `xhub_query_routes_total{route="nats"}`, `route="local"`}} {
		m := metricsText(t, tc.env)
		if !strings.Contains(m, tc.want) || strings.Contains(m, tc.none) {
			t.Fatalf("node metrics: want %s and no %s:\n%s", tc.want, tc.none, grepLines(m, "xhub_query_routes"))
		}
	}
}

func metricsText(t *testing.T, env *testenv.Env) string {
	t.Helper()
	resp, err := http.Get("http://" + env.Node.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
