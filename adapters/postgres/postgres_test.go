package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/adapters/postgres"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

var (
	pgOnce sync.Once
	pgDSN  string
	pgSkip string
	pgDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgDir != "" {
		_ = exec.Command("bash", "../../.ci/pg-start", pgDir, "stop").Run()
		os.RemoveAll(pgDir)
	}
	os.Exit(code)
}

// dsn is a PostgreSQL to test against: XHUB_PG_DSN (what .ci/run starts),
// or a throwaway cluster started here when PostgreSQL is installed.
func dsn(t *testing.T) string {
	t.Helper()
	pgOnce.Do(func() {
		if pgDSN = os.Getenv("XHUB_PG_DSN"); pgDSN != "" {
			return
		}
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if _, err := exec.LookPath("initdb"); err != nil && len(found) == 0 {
			pgSkip = "no PostgreSQL binary (initdb) on this machine: install PostgreSQL (Debian: apt-get install postgresql) or set XHUB_PG_DSN"
			return
		}
		dir, err := os.MkdirTemp("", "xhub-pg-")
		if err != nil {
			pgSkip = err.Error()
			return
		}
		out, err := exec.Command("bash", "../../.ci/pg-start", dir).Output()
		if err != nil {
			pgSkip = fmt.Sprintf("could not start PostgreSQL: %v", err)
			return
		}
		pgDir, pgDSN = dir, strings.TrimSpace(string(out))
	})
	if pgSkip != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL required in CI: %s", pgSkip)
		}
		t.Skip(pgSkip)
	}
	return pgDSN
}

var fields = []catalog.Field{
	{Name: "id", Type: "integer"}, {Name: "name", Type: "string"}, {Name: "ward", Type: "string"},
	{Name: "age", Type: "integer"}, {Name: "admitted", Type: "string"},
}

const schema = `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},"ward":{"type":"string"},
 "age":{"type":"integer"},"admitted":{"type":"string","format":"date"}},"required":["id","ward"]}`

// table creates a fresh table with rows.
func table(t *testing.T, name string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s; CREATE TABLE %[1]s (id bigint PRIMARY KEY, name text, ward text NOT NULL, age int, admitted date, secret text);
INSERT INTO %[1]s VALUES
 (1, 'Ana', 'north', 34, '2026-01-02', 's1'),
 (2, 'Bo_b', 'south', 71, '2026-02-03', 's2'),
 (3, '100%% real', 'north', 19, NULL, 's3'),
 (4, 'x'' OR ''1''=''1', 'east', 45, '2026-03-04', 's4'),
 (5, NULL, 'west', NULL, NULL, 's5'),
 (9007199254740993, 'Big', 'north', 50, '2026-04-05', 's6')`, name))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func open(t *testing.T, tbl string) *postgres.Source {
	t.Helper()
	src, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn(t), Table: tbl, Key: "id", Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src
}

func all(t *testing.T, h adapters.Handler, q adapters.ProviderQuery) []map[string]any {
	t.Helper()
	var out []map[string]any
	for pages := 0; ; pages++ {
		recs, next, err := h(context.Background(), q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		for _, r := range recs {
			var m map[string]any
			d := json.NewDecoder(strings.NewReader(string(r)))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		if next == "" || pages > 100 {
			return out
		}
		q.PageToken = next
	}
}

// TestPushdownAgreesWithTheHub: every filter pushed down to SQL selects
// exactly the rows the hub's own matcher selects.
func TestPushdownAgreesWithTheHub(t *testing.T) {
	table(t, "patients")
	src := open(t, "patients")
	h := src.Handler()
	every := all(t, h, adapters.ProviderQuery{Limit: 2})
	if len(every) != 6 {
		t.Fatalf("paged through %d rows, want 6", len(every))
	}
	if _, ok := every[0]["secret"]; ok {
		t.Fatal("a column outside the schema was served")
	}
	if every[5]["id"].(json.Number).String() != "9007199254740993" {
		t.Fatalf("64-bit id: %v", every[5]["id"])
	}
	for _, w := range []string{
		"ward=north", "ward!=north", "age>=34", "age<34", "age<=19", "age>70", `ward in ["east","west"]`,
		"name prefix Bo_", "name prefix 100%", "name prefix %", "name prefix _",
		`name=x' OR '1'='1`, `name="x' OR '1'='1"`, "admitted>=2026-02-01", `ward in []`, `name prefix ""`,
	} {
		t.Run(w, func(t *testing.T) {
			f, err := vocab.ParseFilter(w)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Validate(fields); err != nil {
				t.Fatal(err)
			}
			got := all(t, h, adapters.ProviderQuery{Filters: []vocab.Filter{f}, Limit: 4})
			var want []map[string]any
			for _, r := range every {
				if f.Match(r) {
					want = append(want, r)
				}
			}
			if ids(got) != ids(want) {
				t.Fatalf("SQL selected %s, the hub's matcher %s", ids(got), ids(want))
			}
		})
	}
	// Values never reach the SQL text.
	f, _ := vocab.ParseFilter(`name="x'); DROP TABLE patients; --"`)
	sql, args, err := src.BuildQuery(adapters.ProviderQuery{Filters: []vocab.Filter{f}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sql, "DROP") || !slices.Contains(args, any("x'); DROP TABLE patients; --")) {
		t.Fatalf("value spliced into SQL: %s %v", sql, args)
	}
	if got := all(t, h, adapters.ProviderQuery{Filters: []vocab.Filter{f}, Limit: 10}); len(got) != 0 {
		t.Fatalf("injection attempt matched %d rows", len(got))
	}
	if n := len(all(t, h, adapters.ProviderQuery{Limit: 10})); n != 6 {
		t.Fatalf("table changed: %d rows", n)
	}
	// Unknown columns are refused, not quoted into SQL.
	if _, _, err := src.BuildQuery(adapters.ProviderQuery{Fields: []string{`id"; DROP TABLE patients; --`}}); err == nil {
		t.Fatal("unknown column accepted")
	}
}

func ids(rs []map[string]any) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprint(r["id"]))
	}
	return strings.Join(s, ",")
}

// TestThroughTheHub: the adapter as a provider, queried by a grantee.
func TestThroughTheHub(t *testing.T) {
	consumer := servedThroughTheHub(t, "wards", []string{"id", "ward", "age"})
	ctx := context.Background()
	q, err := consumer.Query(ctx, "health.wards", adapters.QueryOptions{Where: []string{"ward=north", "age>=20"}, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Records) != 1 || canon(q.Records[0]) != `{"age":34,"id":1,"ward":"north"}` || q.NextPageToken == "" {
		t.Fatalf("first page: %q next %q", q.Records, q.NextPageToken)
	}
	q, err = consumer.Query(ctx, "health.wards", adapters.QueryOptions{Where: []string{"ward=north", "age>=20"}, Limit: 1, PageToken: q.NextPageToken})
	if err != nil || len(q.Records) != 1 || !strings.Contains(string(q.Records[0]), "9007199254740993") {
		t.Fatalf("second page: %q %v", q.Records, err)
	}
}

// servedThroughTheHub makes table tbl (with the fixture rows) the dataset
// health.<tbl> of a hub, served by the adapter, grants tax the given
// fields, and returns tax's system client once a query gets through.
func servedThroughTheHub(t *testing.T, tbl string, fields []string) *adapters.Client {
	t.Helper()
	table(t, tbl)
	src := open(t, tbl)
	env := testenv.Start(t)
	ctx := context.Background()
	ds := "health." + tbl
	owner, grantee := env.Officer("health"), env.Officer("tax")
	mustPublish(t, owner, ds, "conditional")
	r, err := testenv.RPC(grantee).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: ds, Purpose: "p", Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(owner).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id}); err != nil {
		t.Fatal(err)
	}
	provider, consumer := env.System("health", "pg"), env.System("tax", "etl")
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = provider.Serve(pctx, []string{ds}, src.Handler()) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := 0; ; i++ {
		_, err := consumer.Query(ctx, ds, adapters.QueryOptions{Limit: 1})
		if err == nil {
			return consumer
		}
		if i == 500 {
			t.Fatalf("the adapter does not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustPublish(t *testing.T, owner *adapters.Client, id, share string) {
	t.Helper()
	ctx := context.Background()
	if _, err := testenv.RPC(owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: id, SchemaJson: []byte(schema)}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(owner).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: id, Title: id, ShareType: share, SchemaSubject: id}); err != nil {
		t.Fatal(err)
	}
}

// TestWatchWithRestart: changed rows are published in order; a stopped
// watcher resumes from its cursor; a batch republished after a crash
// (published, cursor not advanced) is stored once.
func TestWatchWithRestart(t *testing.T) {
	conn := table(t, "admissions")
	if _, err := conn.Exec(context.Background(), `DROP TABLE IF EXISTS xhub_outbox, xhub_cursor`); err != nil {
		t.Fatal(err)
	}
	src := open(t, "admissions")
	env := testenv.Start(t)
	ctx := context.Background()
	owner := env.Officer("health")
	mustPublish(t, owner, "health.admissions", "open")
	provider := env.System("health", "pg")
	consumer := env.System("tax", "etl")
	if _, err := testenv.RPC(env.Officer("tax")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.admissions", Purpose: "p"}); err != nil {
		t.Fatal(err)
	}
	sub, err := consumer.Subscribe(ctx, "health.admissions", "w", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	var stored, dups int
	var mu sync.Mutex
	publish := func(ctx context.Context, recs [][]byte, id string) error {
		r, err := provider.Publish(ctx, "health.admissions", recs, id)
		if err != nil {
			t.Logf("publish %s: %v", id, err)
		}
		if err == nil {
			mu.Lock()
			if r.Duplicate {
				dups++
			} else {
				stored += len(recs)
			}
			mu.Unlock()
		}
		return err
	}
	watch := func() (stop func()) {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			err := src.Watch(wctx, "health.admissions", 50*time.Millisecond, publish)
			if err != nil {
				t.Logf("watch: %v", err)
			}
			done <- err
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("watch: %v", err)
			}
		}
	}
	// Changes are recorded from Install on (Watch installs too, but a
	// sleep is no way to know when it has: under a loaded CI it was not).
	if err := src.Install(ctx, "health.admissions"); err != nil {
		t.Fatal(err)
	}
	stop := watch()
	if _, err := conn.Exec(ctx, `INSERT INTO admissions VALUES (10,'New','north',30,NULL,'x'),(11,'Newer','south',31,NULL,'y'); UPDATE admissions SET age = 35 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	got := recvIDs(t, sub, 3)
	if got != "10,11,1" {
		t.Fatalf("watched changes %s, want 10,11,1", got)
	}
	// Records reach a subscriber as soon as the hub stored them, which can
	// be before the adapter has its answer: let it finish its bookkeeping.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var seq, pending int64
		if err := conn.QueryRow(ctx, `SELECT seq, pending FROM xhub_cursor WHERE name = 'health.admissions'`).Scan(&seq, &pending); err != nil {
			t.Fatal(err)
		}
		if seq == 3 && pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if _, err := conn.Exec(ctx, `INSERT INTO admissions VALUES (12,'While','east',40,NULL,'z')`); err != nil {
		t.Fatal(err)
	}
	// A crash after publishing, before the cursor advanced: the same range
	// is published again under the same batch id.
	var cursor, pending int64
	if err := conn.QueryRow(ctx, `SELECT seq, pending FROM xhub_cursor WHERE name = 'health.admissions'`).Scan(&cursor, &pending); err != nil {
		t.Fatal(err)
	}
	if cursor != 3 || pending != 0 {
		t.Fatalf("cursor %d pending %d after the first run, want 3 and 0", cursor, pending)
	}
	if _, err := conn.Exec(ctx, `UPDATE xhub_cursor SET seq = 0, pending = 3 WHERE name = 'health.admissions'`); err != nil {
		t.Fatal(err)
	}
	stop = watch()
	defer stop()
	got = recvIDs(t, sub, 1)
	if got != "12" {
		t.Fatalf("after restart %s, want 12 only", got)
	}
	// The subscriber can see record 12 before the adapter has the hub's
	// answer: wait, bounded, for the adapter's own count.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		s, d := stored, dups
		mu.Unlock()
		if s == 4 && d == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored %d records with %d duplicate batches; want 4 and 1", s, d)
		}
	}
}

func recvIDs(t *testing.T, sub *adapters.Subscription, n int) string {
	t.Helper()
	timer := time.AfterFunc(15*time.Second, func() { _ = sub.Close() })
	defer timer.Stop()
	var ids []string
	for len(ids) < n {
		d, err := sub.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(d.Record, &m)
		ids = append(ids, fmt.Sprint(m["id"]))
		_ = sub.Ack(d.ID)
	}
	return strings.Join(ids, ",")
}

func canon(b []byte) string {
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return "invalid: " + string(b)
	}
	out, _ := json.Marshal(m)
	return string(out)
}

// TestNarrowedGrant: the grant leaves out a required column (ward). The hub
// asks the adapter only for granted columns, and judges the answer by the
// schema restricted to them, so every row still comes back; a filter on a
// granted column that was not requested works too.
func TestNarrowedGrant(t *testing.T) {
	consumer := servedThroughTheHub(t, "narrow", []string{"id", "name", "age"})
	ctx := context.Background()
	q, err := consumer.Query(ctx, "health.narrow", adapters.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Records) != 6 || q.Withheld != 0 {
		t.Fatalf("narrowed grant: %d records, %d withheld %v", len(q.Records), q.Withheld, q.WithheldReasons)
	}
	for _, rec := range q.Records {
		if strings.Contains(string(rec), "ward") || strings.Contains(string(rec), "secret") {
			t.Fatalf("ungranted column delivered: %s", rec)
		}
	}
	q, err = consumer.Query(ctx, "health.narrow", adapters.QueryOptions{Fields: []string{"name"}, Where: []string{"age>=40"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range q.Records {
		got = append(got, canon(rec))
	}
	want := []string{`{"name":"x' OR '1'='1"}`, `{"name":"Big"}`, `{"name":"Bo_b"}`}
	slices.Sort(got)
	slices.Sort(want)
	if q.Withheld != 0 || !slices.Equal(got, want) {
		t.Fatalf("filter on a granted column not requested: %q (withheld %d %v)", got, q.Withheld, q.WithheldReasons)
	}
}

// TestWatchBackfill: a new watch publishes the rows already there, once,
// then follows changes; across the boundary nothing is lost and nothing
// the snapshot showed is published again; a restart does not backfill
// again.
func TestWatchBackfill(t *testing.T) {
	conn := table(t, "admissions")
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS xhub_outbox, xhub_cursor`); err != nil {
		t.Fatal(err)
	}
	src := open(t, "admissions")
	var existing int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM admissions`).Scan(&existing); err != nil || existing == 0 {
		t.Fatalf("fixture rows: %d %v", existing, err)
	}
	var mu sync.Mutex
	seen := map[string]int{} // record text → times published
	ids := map[string]bool{}
	publish := func(_ context.Context, recs [][]byte, id string) error {
		mu.Lock()
		defer mu.Unlock()
		if ids[id] {
			return nil // the hub would store it once
		}
		ids[id] = true
		for _, r := range recs {
			seen[string(r)]++
		}
		return nil
	}
	var progress []int64
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- src.WatchWith(wctx, "bf", postgres.WatchOptions{Poll: 50 * time.Millisecond, Backfill: true, Progress: func(d, total int64) {
			mu.Lock()
			progress = append(progress, d, total)
			mu.Unlock()
		}}, publish)
	}()
	testenv.WaitFor(t, 10*time.Second, "the backfill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(progress) >= 2 && progress[len(progress)-2] == existing
	})
	// Changes after the backfill are followed.
	if _, err := conn.Exec(ctx, `INSERT INTO admissions (id, ward, name) VALUES (9001, 'east', 'New')`); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the new row", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for r := range seen {
			if strings.Contains(r, `"id": 9001`) || strings.Contains(r, `"id":9001`) {
				return true
			}
		}
		return false
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	total := 0
	for r, n := range seen {
		if n != 1 {
			t.Errorf("published %d times: %s", n, r)
		}
		total += n
	}
	mu.Unlock()
	if int64(total) != existing+1 {
		t.Fatalf("published %d records, want the %d rows and the new one", total, existing)
	}
	// Started again under the same name: no second backfill.
	before := total
	wctx, cancel = context.WithCancel(ctx)
	go func() {
		done <- src.WatchWith(wctx, "bf", postgres.WatchOptions{Poll: 50 * time.Millisecond, Backfill: true}, publish)
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, c := range seen {
		n += c
	}
	if n != before {
		t.Fatalf("a restart published %d more records", n-before)
	}
}

// TestBackfillSkipsWhatTheSnapshotShows: a change recorded in the outbox
// before the backfill's snapshot is in the backfill; it is not published
// a second time from the outbox.
func TestBackfillSkipsWhatTheSnapshotShows(t *testing.T) {
	conn := table(t, "admissions")
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS xhub_outbox, xhub_cursor`); err != nil {
		t.Fatal(err)
	}
	src := open(t, "admissions")
	if err := src.Install(ctx, "bf2"); err != nil {
		t.Fatal(err)
	}
	// Recorded by the trigger, before the snapshot; the backfill is due.
	if _, err := conn.Exec(ctx, `UPDATE admissions SET ward = 'moved' WHERE id = 1; UPDATE xhub_cursor SET backfill = NULL WHERE name = 'bf2'`); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	count := 0
	moved := 0
	publish := func(_ context.Context, recs [][]byte, id string) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			count++
			if strings.Contains(string(r), "moved") {
				moved++
			}
		}
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- src.WatchWith(wctx, "bf2", postgres.WatchOptions{Poll: 30 * time.Millisecond, Backfill: true}, publish)
	}()
	time.Sleep(500 * time.Millisecond) // the backfill and a few polls of the outbox
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if moved != 1 || count != 6 {
		t.Fatalf("published %d records, the moved row %d times: want the 6 rows once each", count, moved)
	}
}

// TestPageTokensThroughTheHub: the adapter pages on national_id, which
// tax is not granted (it holds district alone): tax sees no national_id
// in any token, in text or decoded, and every record once; the adapter
// sends the hub no national_id it was not asked for; every token the hub
// did not issue for the query (a bare "3", random bytes, altered, from
// another dataset, filters, fields or department) gets one identical
// refusal, the table never asked (testenv.CheckPageTokens).
func TestPageTokensThroughTheHub(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	srcs := map[string]*postgres.Source{}
	for _, tbl := range []string{"citizens", "citizens2"} {
		sql := fmt.Sprintf(`DROP TABLE IF EXISTS %[1]s; CREATE TABLE %[1]s (national_id text PRIMARY KEY, district text NOT NULL, name text)`, tbl)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
		for _, c := range testenv.Citizens {
			if _, err := conn.Exec(ctx, "INSERT INTO "+tbl+" VALUES ($1, $2, $3)", c.NationalID, c.District, c.Name); err != nil {
				t.Fatal(err)
			}
		}
		src, err := postgres.Open(ctx, postgres.Config{DSN: dsn(t), Table: tbl, Key: "national_id", Fields: testenv.CitizenFields})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(src.Close)
		srcs["health."+tbl] = src
	}
	testenv.CheckPageTokens(t, []*testenv.Env{testenv.Start(t)}, "citizens", func(ctx context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
		return srcs[q.Dataset].Handler()(ctx, q)
	})
}
