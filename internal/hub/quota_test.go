package hub_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/api"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// storeDataset registers dept's schema and publishes dataset (share type
// share, retention as given) with it, and returns a system of dept.
func storeDataset(t *testing.T, env *testenv.Env, dataset, share, retention string) *adapters.Client {
	t.Helper()
	dept, _, _ := strings.Cut(dataset, ".")
	off := env.Officer(dept)
	ctx := context.Background()
	if _, err := testenv.RPC(off).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: dataset, SchemaJson: []byte(casesSchema)}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(off).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: dataset, Title: dataset, ShareType: share, SchemaSubject: dataset, Retention: retention}); err != nil {
		t.Fatal(err)
	}
	return env.System(dept, "loader")
}

// bigBatch is one record of about n bytes.
func bigBatch(id, n int) [][]byte {
	return [][]byte{fmt.Appendf(nil, `{"id":%d,"ward":"w","name":"%s"}`, id, strings.Repeat("x", n))}
}

// quotaViolation is the QuotaFailure of a refused publish.
func quotaViolation(t *testing.T, err error) *errdetails.QuotaFailure_Violation {
	t.Helper()
	qf := detail[*errdetails.QuotaFailure](t, err, codes.ResourceExhausted)
	if len(qf.Violations) != 1 {
		t.Fatalf("violations: %v", qf.Violations)
	}
	return qf.Violations[0]
}

// fillUntilRefused publishes batches of about size bytes to dataset until
// one is refused (at most max), and returns how many were stored and the
// refusal.
func fillUntilRefused(t *testing.T, sys *adapters.Client, dataset string, size, max int) (int, error) {
	t.Helper()
	for i := range max {
		if _, err := sys.Publish(context.Background(), dataset, bigBatch(i, size), fmt.Sprintf("%s-%d", dataset, i)); err != nil {
			return i, err
		}
	}
	t.Fatalf("%d batches of %d bytes to %s all stored: nothing bounds what it holds", max, size, dataset)
	return 0, nil
}

// TestDeptQuota: a department that fills its quota gets RESOURCE_EXHAUSTED
// naming the quota (a dataset's, then the department's), and nothing is
// stored; other departments still publish, and every department, that
// one too, still requests shares and has them decided (ledger appends).
func TestDeptQuota(t *testing.T) {
	const kib = 1 << 10
	env := testenv.Start(t, testenv.WithStore(hub.StoreBounds{DeptQuota: 256 * kib, DatasetQuota: 160 * kib}), testenv.WithMetrics())
	ctx := context.Background()
	taxA := storeDataset(t, env, "tax.filings", "none", "")
	storeDataset(t, env, "tax.refunds", "none", "")
	health := storeDataset(t, env, "health.cases", "conditional", "")

	// The dataset's quota first: 160 KiB holds four 32 KiB batches.
	n, err := fillUntilRefused(t, taxA, "tax.filings", 32*kib, 50)
	if v := quotaViolation(t, err); v.Subject != "dataset:tax.filings" || !strings.Contains(v.Description, "--dataset-quota") {
		t.Fatalf("violation %v", v)
	}
	if n < 3 || n > 5 {
		t.Fatalf("%d batches of 32 KiB stored under a 160 KiB dataset quota", n)
	}
	// Then the department's, across its datasets.
	m, err := fillUntilRefused(t, taxA, "tax.refunds", 32*kib, 50)
	if v := quotaViolation(t, err); v.Subject != "dept:tax" || !strings.Contains(v.Description, "--dept-quota") || !strings.Contains(v.Description, "nothing stored") {
		t.Fatalf("violation %v", v)
	}
	if n+m < 6 || n+m > 8 {
		t.Fatalf("%d batches of 32 KiB stored under a 256 KiB department quota", n+m)
	}
	// A small batch that fits still goes in; nothing refused was stored.
	if _, err := taxA.Publish(ctx, "tax.refunds", records(1, 1), "small"); err != nil {
		t.Fatalf("a small batch within the quota: %v", err)
	}
	info, err := env.Node.JS.Stream(ctx, bus.DataStream)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.CachedInfo().State.Msgs, uint64(n+m+1); got != want {
		t.Fatalf("XHUB_DATA holds %d batches, want the %d admitted", got, want)
	}

	// The operator sees it.
	metrics := metricsText(t, env)
	for _, want := range []string{"xhub_dept_quota_bytes 262144", "xhub_dataset_quota_bytes 163840", `xhub_dept_stored_bytes{dept="tax"} `, "xhub_data_max_bytes "} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}

	// Other departments go on: health publishes, tax asks for a share,
	// health decides it; tax's own control-plane calls work too.
	if _, err := health.Publish(ctx, "health.cases", bigBatch(1, 32*kib), "h1"); err != nil {
		t.Fatalf("another department's publish: %v", err)
	}
	r, err := testenv.RPC(env.Officer("tax")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "audit", Fields: []string{"id", "ward"}})
	if err != nil {
		t.Fatalf("the department over its quota asks for a share: %v", err)
	}
	if _, err := testenv.RPC(env.Officer("health")).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id}); err != nil {
		t.Fatalf("another department decides it: %v", err)
	}
	env.Dept("civil")
	if _, err := testenv.RPC(env.Officer("civil")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "census", Fields: []string{"id"}}); err != nil {
		t.Fatalf("a new department asks for a share: %v", err)
	}
}

// TestControlPlaneKeepsRoom: on a small store, published data that fills
// XHUB_DATA is refused naming the data store, and the ledger still
// appends: departments, credentials, datasets, share decisions.
func TestControlPlaneKeepsRoom(t *testing.T) {
	const mib = 1 << 20
	env := testenv.Start(t, testenv.WithStore(hub.StoreBounds{MaxBytes: 16 * mib, DeptQuota: 1 << 30}))
	ctx := context.Background()
	stream, err := env.Node.JS.Stream(ctx, bus.DataStream)
	if err != nil {
		t.Fatal(err)
	}
	if b := stream.CachedInfo().Config.MaxBytes; b <= 0 || b > 12*mib {
		t.Fatalf("XHUB_DATA's bound is %d on a 16 MiB store", b)
	}
	sys := storeDataset(t, env, "tax.filings", "none", "")
	_, err = fillUntilRefused(t, sys, "tax.filings", 512<<10, 64)
	if v := quotaViolation(t, err); v.Subject != "hub:"+bus.DataStream || !strings.Contains(v.Description, "--data-max-bytes") {
		t.Fatalf("violation %v", v)
	}

	// The control plane has its room.
	for i := range 20 {
		env.Dept(fmt.Sprintf("dept-%d", i))
	}
	storeDataset(t, env, "health.cases", "conditional", "")
	r, err := testenv.RPC(env.Officer("tax")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "audit", Fields: []string{"id"}})
	if err != nil {
		t.Fatalf("share request with XHUB_DATA full: %v", err)
	}
	if _, err := testenv.RPC(env.Officer("health")).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id}); err != nil {
		t.Fatalf("approval with XHUB_DATA full: %v", err)
	}
}

// TestDatasetRetention: a dataset's retention is in the catalog (show,
// update, export), and its batches are removed once it has passed, while
// a dataset on the hub's default keeps its own.
func TestDatasetRetention(t *testing.T) {
	env := testenv.Start(t, testenv.WithSweep(500*time.Millisecond), testenv.WithMetrics())
	ctx := context.Background()
	short := storeDataset(t, env, "health.cases", "open", "2s")
	long := storeDataset(t, env, "health.beds", "open", "")
	off := testenv.RPC(env.Officer("health"))

	got, err := off.Catalog.GetDataset(ctx, &xhubv1.GetDatasetRequest{Id: "health.cases"})
	if err != nil || got.Dataset.Retention != "2s" {
		t.Fatalf("catalog show: %v %v", got, err)
	}
	if _, err := off.Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: "health.x", Title: "x", ShareType: "open", SchemaSubject: "health.cases", Retention: "1w"}); testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("a retention of 1w: %v", err)
	}

	if _, err := short.Publish(ctx, "health.cases", records(3, 1), "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := long.Publish(ctx, "health.beds", records(3, 1), "l1"); err != nil {
		t.Fatal(err)
	}
	stored := func(dataset string) uint64 {
		s, err := env.Node.JS.Stream(ctx, bus.DataStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.DataPrefix+dataset))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[bus.DataPrefix+dataset]
	}
	if stored("health.cases") != 1 {
		t.Fatal("the batch was not stored")
	}
	testenv.WaitFor(t, 30*time.Second, "the 2s dataset's batch removed", func() bool { return stored("health.cases") == 0 })
	if stored("health.beds") != 1 {
		t.Fatal("the dataset on the hub's default retention lost its batch")
	}

	// An update changes it, and the exports carry it.
	u, err := off.Catalog.UpdateDataset(ctx, &xhubv1.UpdateDatasetRequest{Id: "health.beds", Retention: ptr("30d")})
	if err != nil || u.Dataset.Retention != "30d" || strings.Join(u.Changed, ",") != "retention" {
		t.Fatalf("update: %v %v", u, err)
	}
	hc := env.HTTP(env.Creds("health", vocab.RoleOfficer, "exporter"), false)
	for format, want := range map[string]string{"csv": "30d", "dcat": `"P30D"`} {
		resp, err := hc.Get(env.URL() + api.CatalogExportPath + "?format=" + format)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Fatalf("%s export has no %s:\n%s", format, want, body)
		}
	}

	// Shortened, it reaches the batches already stored (an owner's duty
	// to delete): the sweep purges them, past several sweeps, and they no
	// longer count against the department's quota.
	if stored("health.beds") != 1 {
		t.Fatal("health.beds lost its batch before its retention was shortened")
	}
	if m := metricsText(t, env); !strings.Contains(m, `xhub_dept_stored_bytes{dept="health"} `) || strings.Contains(m, `xhub_dept_stored_bytes{dept="health"} 0`) {
		t.Fatalf("health's stored bytes are not counted before the purge:\n%s", m)
	}
	if _, err := off.Catalog.UpdateDataset(ctx, &xhubv1.UpdateDatasetRequest{Id: "health.beds", Retention: ptr("2s")}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the batch stored under the old retention purged", func() bool { return stored("health.beds") == 0 })
	testenv.WaitFor(t, 30*time.Second, "health's stored bytes back to 0", func() bool {
		m := metricsText(t, env)
		return !strings.Contains(m, `xhub_dept_stored_bytes{dept="health"}`) || strings.Contains(m, `xhub_dept_stored_bytes{dept="health"} 0`)
	})
}

func ptr[T any](v T) *T { return &v }

// TestQuotaAcrossNodes: two nodes on one NATS enforce one quota: the
// second node, told nothing, reads it from the stream, and counts what
// the first stored; publishes alternating between them stop at the quota.
func TestQuotaAcrossNodes(t *testing.T) {
	const kib = 1 << 10
	a := testenv.Start(t, testenv.WithNATSListen(), testenv.WithStore(hub.StoreBounds{DeptQuota: 192 * kib}))
	dirB := t.TempDir()
	a.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB, testenv.WithNATSURL(a.NATSURL()), testenv.WithName("hub-b"))
	storeDataset(t, a, "tax.filings", "none", "")
	creds := a.Creds("tax", vocab.RoleSystem, "loader-2")
	systems := []*adapters.Client{a.Dial(creds), b.Dial(creds)}
	ctx := context.Background()
	stored := 0
	for i := range 40 {
		_, err := systems[i%2].Publish(ctx, "tax.filings", bigBatch(i, 32*kib), fmt.Sprintf("x%d", i))
		if err == nil {
			stored++
			continue
		}
		if v := quotaViolation(t, err); v.Subject != "dept:tax" {
			t.Fatalf("node %d: violation %v", i%2, v)
		}
		// The other node refuses too.
		_, err = systems[(i+1)%2].Publish(ctx, "tax.filings", bigBatch(i, 32*kib), fmt.Sprintf("y%d", i))
		if v := quotaViolation(t, err); v.Subject != "dept:tax" {
			t.Fatalf("node %d: violation %v", (i+1)%2, v)
		}
		if stored < 4 || stored > 6 {
			t.Fatalf("%d batches of 32 KiB stored under a 192 KiB quota", stored)
		}
		return
	}
	t.Fatalf("40 batches of 32 KiB stored through two nodes under a 192 KiB quota")
}
