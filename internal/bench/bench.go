// Package bench measures the hub's data paths against raw baselines in
// the same run, with the same payloads and concurrency: query through the
// hub vs gRPC unary → NATS request → NATS responder; validated durable
// publish vs raw JetStream async publish; subscription deliveries to ten
// departments vs raw JetStream consumption. `xhub bench` prints it.
package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/hub"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// Config configures a run.
type Config struct {
	// Duration of each timed phase. Zero: 5s.
	Duration time.Duration
	// Concurrency of queries and publishes. Zero: 64.
	Concurrency int
	// Hub and AdminCreds select a remote hub; empty: an in-process hub in a
	// temp dir.
	Hub, AdminCreds string
	// RawNATS is where the raw baselines run (a NATS URL, e.g. the remote
	// hub's cluster); empty: an in-process NATS.
	RawNATS string
	// Replicas of the raw baselines' streams (match the hub's). Zero: 1.
	Replicas int
	// Spread, if set, also measures the province-scale query workload
	// (and only queries: publish and subscribe are skipped).
	Spread *Spread
	// Progress receives one line per phase (may be nil).
	Progress io.Writer
}

// Path is one measured path.
type Path struct {
	Unit      string  `json:"unit"`
	Hub       float64 `json:"hub"`
	Raw       float64 `json:"raw"`
	Ratio     float64 `json:"ratio"`
	HubP50us  float64 `json:"hub_p50_us,omitempty"`
	HubP99us  float64 `json:"hub_p99_us,omitempty"`
	RawP50us  float64 `json:"raw_p50_us,omitempty"`
	RawP99us  float64 `json:"raw_p99_us,omitempty"`
	P99Ratio  float64 `json:"p99_ratio,omitempty"`
	Note      string  `json:"note,omitempty"`
	HubCalls  int64   `json:"hub_calls"`
	RawCalls  int64   `json:"raw_calls"`
	HubErrors int64   `json:"hub_errors"`
	// HubFirstError is the first error the hub path returned, if any.
	HubFirstError string `json:"hub_first_error,omitempty"`
	// RawRounds are the baseline's rounds where it is measured more than
	// once (Raw is their median).
	RawRounds []float64 `json:"raw_rounds,omitempty"`
}

// Report is the whole run.
type Report struct {
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	RecordBytes int     `json:"record_bytes"`
	Query       Path    `json:"query"`
	// QueryJSON is the same query over HTTP/2 with a JSON body (the
	// Connect protocol, as curl or any HTTP client sends it), against the
	// same raw gRPC baseline.
	QueryJSON Path `json:"query_json"`
	Publish   Path `json:"publish"`
	Subscribe Path `json:"subscribe"`
	// Spread is the province-scale query workload (with Config.Spread),
	// and SpreadToSingle its hub figure over the single-dataset query's.
	Spread         *Path        `json:"spread,omitempty"`
	SpreadSetup    *SpreadSetup `json:"spread_setup,omitempty"`
	SpreadToSingle float64      `json:"spread_to_single,omitempty"`
	// The ratios again, each under a key naming its path.
	QueryThroughputRatio float64 `json:"query_throughput_ratio"`
	QueryP99Ratio        float64 `json:"query_p99_ratio"`
	PublishRatio         float64 `json:"publish_ratio"`
	SubscribeRatio       float64 `json:"subscribe_ratio"`
	// Warnings name measurements not to trust (an outlier baseline round).
	Warnings []string `json:"warnings,omitempty"`
}

// record is a 15-field record of about 1 KiB, valid under benchSchema.
func record(i int) []byte {
	pad := strings.Repeat("x", 700)
	return fmt.Appendf(nil, `{"id":%d,"person_id":"11010519491231002X","name":"Person %d","district":"north","ward":"w%d","age":%d,"score":%d.5,"active":true,"vaccine":"MMR","dose":2,"given_on":"2026-11-22","clinic":"Clinic %d","notes":"%s","batch":"b-%d","updated":"2026-11-22T10:00:00Z"}`,
		i, i, i%50, 20+i%60, i%100, i%30, pad, i/100)
}

const benchSchema = `{"type":"object","properties":{
 "id":{"type":"integer"},"person_id":{"type":"string","pattern":"^[0-9]{17}[0-9X]$"},"name":{"type":"string"},
 "district":{"type":"string","enum":["north","south","east","west"]},"ward":{"type":"string"},"age":{"type":"integer","minimum":0},
 "score":{"type":"number"},"active":{"type":"boolean"},"vaccine":{"type":"string"},"dose":{"type":"integer","minimum":1},
 "given_on":{"type":"string","format":"date"},"clinic":{"type":"string"},"notes":{"type":"string","maxLength":4000},
 "batch":{"type":"string"},"updated":{"type":"string","format":"date-time"}},
 "required":["id","person_id","district","age"]}`

func (c *Config) validate() {
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

type env struct {
	cfg      Config
	dir      string
	admin    *adapters.Client
	owner    *adapters.Client
	provider *adapters.Client
	grantees []*adapters.Client // systems of 10 departments
	consumer *vocab.Creds       // the first grantee's credential
	dataset  string
	hubAddr  string
	nc       *nats.Conn // the raw baselines' callers
	ncResp   *nats.Conn // the raw query responder
	js       jetstream.JetStream
	raw      *hub.Node // in-process NATS for the baselines
	warnings []string
}

func (e *env) warn(w string) {
	e.warnings = append(e.warnings, w)
	fmt.Fprintln(e.cfg.Progress, "warning: "+w)
}

// Run measures every path.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.validate()
	e, err := setup(ctx, cfg)
	if err != nil {
		return Report{}, err
	}
	defer e.close()
	rep := Report{Concurrency: cfg.Concurrency, DurationS: cfg.Duration.Seconds(), RecordBytes: len(record(0))}
	fmt.Fprintf(cfg.Progress, "query: hub path, %d concurrent, %s ...\n", cfg.Concurrency, cfg.Duration)
	if rep.Query, err = e.query(ctx); err != nil {
		return rep, err
	}
	fmt.Fprintf(cfg.Progress, "query over HTTP/JSON: hub path, %d concurrent, %s ...\n", cfg.Concurrency, cfg.Duration)
	if rep.QueryJSON, err = e.queryJSON(ctx); err != nil {
		return rep, err
	}
	if sp := cfg.Spread; sp != nil {
		fmt.Fprintf(cfg.Progress, "spread: %d departments, %d datasets, %d provider streams, %d grants; %d consumers ...\n", sp.Depts, sp.Datasets, sp.Providers, sp.Grants, sp.Consumers)
		p, setup, err := e.spread(ctx, *sp)
		if err != nil {
			return rep, err
		}
		rep.Spread, rep.SpreadSetup, rep.SpreadToSingle = &p, setup, ratio(p.Hub, rep.Query.Hub)
	} else {
		fmt.Fprintf(cfg.Progress, "publish: batches of 100 records, %d concurrent, %s ...\n", cfg.Concurrency, cfg.Duration)
		if rep.Publish, err = e.publish(ctx); err != nil {
			return rep, err
		}
		fmt.Fprintf(cfg.Progress, "subscribe: 10 grantee departments ...\n")
		if rep.Subscribe, err = e.subscribe(ctx); err != nil {
			return rep, err
		}
	}
	rep.QueryThroughputRatio, rep.QueryP99Ratio = rep.Query.Ratio, rep.Query.P99Ratio
	rep.PublishRatio, rep.SubscribeRatio = rep.Publish.Ratio, rep.Subscribe.Ratio
	rep.Warnings = e.warnings
	return rep, nil
}

func setup(ctx context.Context, cfg Config) (*env, error) {
	e := &env{cfg: cfg}
	dir, err := os.MkdirTemp("", "xhub-bench-")
	if err != nil {
		return nil, err
	}
	e.dir = dir
	fail := func(err error) (*env, error) { e.close(); return nil, err }
	// The baselines' NATS (and the hub, unless remote).
	e.raw, err = hub.Start(ctx, hub.Config{DataDir: filepath.Join(dir, "raw"), Listen: "127.0.0.1:0"})
	if err != nil {
		return fail(err)
	}
	// The baselines get their own connections, as plain NATS clients
	// would: one for the callers, one for the responder.
	if e.nc, err = e.connect("xhub-bench-raw"); err != nil {
		return fail(err)
	}
	if e.ncResp, err = e.connect("xhub-bench-raw-responder"); err != nil {
		return fail(err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return fail(err)
	}
	adminCreds, hubAddr := cfg.AdminCreds, cfg.Hub
	if cfg.Hub == "" {
		adminCreds, hubAddr = e.raw.AdminCreds, e.raw.Addr()
	}
	e.hubAddr = hubAddr
	if e.admin, err = adapters.Dial(ctx, adminCreds, adapters.WithHub(hubAddr)); err != nil {
		return fail(err)
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000)
	var lastCreds *vocab.Creds
	dial := func(dept string, role vocab.Role, name string) (*adapters.Client, error) {
		if _, err := e.admin.AddDepartment(ctx, dept, dept); err != nil && !strings.Contains(err.Error(), "already exists") {
			return nil, err
		}
		_, file, err := e.admin.IssueCredential(ctx, vocab.Identity{Dept: catalog.DeptID(dept), Role: role, Name: name}, 1)
		if err != nil {
			return nil, err
		}
		c, err := vocab.ParseCreds(file)
		if err != nil {
			return nil, err
		}
		lastCreds = c
		return adapters.DialCreds(ctx, c, adapters.WithHub(hubAddr))
	}
	ownerDept := "bench-owner-" + suffix
	if e.owner, err = dial(ownerDept, vocab.RoleOfficer, "officer"); err != nil {
		return fail(err)
	}
	if e.provider, err = dial(ownerDept, vocab.RoleSystem, "provider"); err != nil {
		return fail(err)
	}
	e.dataset = ownerDept + ".records"
	if _, _, err := e.owner.RegisterSchema(ctx, e.dataset, []byte(benchSchema), ""); err != nil {
		return fail(err)
	}
	if _, err := e.owner.PublishDataset(ctx, adapters.DatasetSpec{ID: e.dataset, Title: "bench", ShareType: "open", SchemaSubject: e.dataset}); err != nil {
		return fail(err)
	}
	for i := range 10 {
		dept := fmt.Sprintf("bench-g%d-%s", i, suffix)
		off, err := dial(dept, vocab.RoleOfficer, "officer")
		if err != nil {
			return fail(err)
		}
		if _, err := off.RequestShare(ctx, e.dataset, nil, "benchmark", 1); err != nil {
			return fail(err)
		}
		off.Close()
		sys, err := dial(dept, vocab.RoleSystem, "consumer")
		if err != nil {
			return fail(err)
		}
		if e.consumer == nil {
			e.consumer = lastCreds
		}
		e.grantees = append(e.grantees, sys)
	}
	return e, nil
}

// connect opens a plain NATS connection where the raw baselines run.
func (e *env) connect(name string) (*nats.Conn, error) {
	if e.cfg.RawNATS != "" {
		return nats.Connect(e.cfg.RawNATS, nats.Name(name))
	}
	return e.raw.Embedded.Connect(name)
}

func (e *env) close() {
	for _, c := range append([]*adapters.Client{e.admin, e.owner, e.provider}, e.grantees...) {
		if c != nil {
			c.Close()
		}
	}
	for _, nc := range []*nats.Conn{e.nc, e.ncResp} {
		if nc != nil {
			nc.Close()
		}
	}
	if e.raw != nil {
		e.raw.Close()
	}
	os.RemoveAll(e.dir)
}

// timed runs fn from n workers until d passes, collecting latencies.
func timed(ctx context.Context, n int, d time.Duration, fn func(ctx context.Context, worker int) error) (calls, errs int64, lat []time.Duration, elapsed time.Duration, first error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// A call cut by the round's end is not an error, even when its
	// DeadlineExceeded (from the server, whose copy of the deadline is
	// rounded down) comes back before ctx's own timer has fired.
	over := func() bool { return ctx.Err() != nil || time.Until(deadline) < 5*time.Millisecond }
	var mu sync.Mutex
	var wg sync.WaitGroup
	var nc, ne atomic.Int64
	start := time.Now()
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for !over() {
				t := time.Now()
				if err := fn(ctx, w); err != nil {
					if !over() {
						ne.Add(1)
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
					}
					continue
				}
				local = append(local, time.Since(t))
				nc.Add(1)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return nc.Load(), ne.Load(), lat, time.Since(start), first
}

// measured is what timed collected, summed over rounds.
type measured struct {
	calls, errs int64
	lat         []time.Duration
	elapsed     time.Duration
	first       error // the first error seen
}

func (m *measured) add(calls, errs int64, lat []time.Duration, elapsed time.Duration, first error) {
	m.calls += calls
	m.errs += errs
	if m.first == nil {
		m.first = first
	}
	m.lat = append(m.lat, lat...)
	m.elapsed += elapsed
}

func (m measured) rate(per int64) float64 { return float64(m.calls*per) / m.elapsed.Seconds() }

// alternateRounds is how many turns the hub path and its raw baseline
// take, each for an equal share of the duration: a machine that slows
// down (or speeds up) during the run then weighs on both alike, rather
// than on whichever phase ran at the time.
const alternateRounds = 4

// alternate times hub and raw in turns, n workers each, d in all for each.
func alternate(ctx context.Context, progress io.Writer, label string, n int, d time.Duration, hub, raw func(ctx context.Context, worker int) error) (h, r measured) {
	slice := max(d/alternateRounds, 100*time.Millisecond)
	for round := range alternateRounds {
		h.add(timed(ctx, n, slice, hub))
		r.add(timed(ctx, n, slice, raw))
		if progress != nil {
			fmt.Fprintf(progress, "  %s: round %d of %d: hub %d calls (%.0f/s), raw %d calls (%.0f/s), %d hub errors\n",
				label, round+1, alternateRounds, h.calls, h.rate(1), r.calls, r.rate(1), h.errs)
		}
	}
	return h, r
}

func pct(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[int(p*float64(len(s)-1))].Microseconds())
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return float64(int(a/b*1000+0.5)) / 1000
}

// provide has the provider answer each query of the dataset with rec,
// until the returned stop is called.
func (e *env) provide(ctx context.Context, rec []byte) (stop func()) {
	pctx, stop := context.WithCancel(ctx)
	go func() {
		_ = e.provider.Serve(pctx, []string{e.dataset}, func(context.Context, adapters.ProviderQuery) ([][]byte, string, error) {
			return [][]byte{rec}, "", nil
		})
	}()
	return stop
}

// query: the hub path (consumer gRPC → checks → NATS → provider stream →
// validation, projection, audit) against a raw pipeline of the same shape
// without xhub: gRPC unary over the same mTLS → NATS request → NATS
// responder answering the same record.
func (e *env) query(ctx context.Context) (Path, error) {
	rec := record(1)
	defer e.provide(ctx, rec)()
	consumer := e.grantees[0]
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := consumer.Query(ctx, e.dataset, adapters.QueryOptions{Limit: 1})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return Path{}, fmt.Errorf("bench: provider not reachable: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	hubQuery := func(ctx context.Context, _ int) error {
		r, err := consumer.Query(ctx, e.dataset, adapters.QueryOptions{Limit: 10})
		if err == nil && len(r.Records) != 1 {
			err = fmt.Errorf("got %d records", len(r.Records))
		}
		return err
	}

	// Raw: the same gRPC service shape, nothing but the NATS round trip.
	p, err := e.againstRawQuery(ctx, "query", rec, hubQuery)
	if err != nil {
		return Path{}, err
	}
	p.Note = "1 record of ~1 KiB per call"
	return p, nil
}

// againstRawQuery measures hub, a query path, alternating with the raw
// one: gRPC unary over the same mTLS → NATS request → a responder
// answering rec.
func (e *env) againstRawQuery(ctx context.Context, label string, rec []byte, hub func(context.Context, int) error) (Path, error) {
	sub, err := e.ncResp.Subscribe(rawQuerySubject+e.dataset, func(m *nats.Msg) { _ = m.Respond(rec) })
	if err != nil {
		return Path{}, err
	}
	if err := e.ncResp.Flush(); err != nil {
		return Path{}, err
	}
	defer sub.Unsubscribe()
	addr, stopRaw, err := e.rawGRPC()
	if err != nil {
		return Path{}, err
	}
	defer stopRaw()
	rawClient, err := adapters.DialCreds(ctx, mustCreds(e.raw.AdminCreds), adapters.WithHub(addr))
	if err != nil {
		return Path{}, err
	}
	defer rawClient.Close()
	rawQueries := xhubv1.NewExchangeClient(rawClient.Conn())
	rawQuery := func(ctx context.Context, _ int) error {
		_, err := rawQueries.Query(ctx, &xhubv1.QueryRequest{Dataset: e.dataset, Limit: 10})
		return err
	}
	h, r := alternate(ctx, e.cfg.Progress, label, e.cfg.Concurrency, e.cfg.Duration, hub, rawQuery)
	p := Path{Unit: "calls/s", Hub: h.rate(1), Raw: r.rate(1), HubCalls: h.calls, RawCalls: r.calls, HubErrors: h.errs,
		HubP50us: pct(h.lat, .5), HubP99us: pct(h.lat, .99), RawP50us: pct(r.lat, .5), RawP99us: pct(r.lat, .99)}
	p.Ratio, p.P99Ratio = ratio(p.Hub, p.Raw), ratio(p.HubP99us, p.RawP99us)
	if h.first != nil {
		p.HubFirstError = h.first.Error()
	}
	return p, nil
}

// queryJSON: the same hub query as POST /xhub.v1.Exchange/Query with a
// JSON body over HTTP/2 (one connection, as the gRPC client), answered
// records decoded as JSON, against the same raw gRPC baseline.
func (e *env) queryJSON(ctx context.Context) (Path, error) {
	rec := record(1)
	defer e.provide(ctx, rec)()
	addr := strings.Split(e.hubAddr, ",")[0]
	tr := &http.Transport{TLSClientConfig: e.consumer.ClientTLS(addr), ForceAttemptHTTP2: true, MaxIdleConnsPerHost: e.cfg.Concurrency}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	url := "https://" + addr + "/xhub.v1.Exchange/Query"
	body := []byte(`{"dataset":"` + e.dataset + `","limit":10}`)
	jsonQuery := func(ctx context.Context, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s", res.StatusCode, b)
		}
		var out struct {
			Records []json.RawMessage `json:"records"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return err
		}
		if len(out.Records) != 1 {
			return fmt.Errorf("got %d records", len(out.Records))
		}
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := jsonQuery(ctx, 0)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return Path{}, fmt.Errorf("bench: JSON query: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p, err := e.againstRawQuery(ctx, "query-json", rec, jsonQuery)
	if err != nil {
		return Path{}, err
	}
	p.Note = "1 record of ~1 KiB per call, JSON over HTTP/2"
	return p, nil
}

func mustCreds(path string) *vocab.Creds {
	c, err := vocab.LoadCreds(path)
	if err != nil {
		panic(err)
	}
	return c
}

type rawExchange struct {
	xhubv1.UnimplementedExchangeServer
	nc *nats.Conn
}

func (r *rawExchange) Query(ctx context.Context, q *xhubv1.QueryRequest) (*xhubv1.QueryResponse, error) {
	m, err := r.nc.RequestWithContext(ctx, rawQuerySubject+q.Dataset, []byte(q.Dataset))
	if err != nil {
		return nil, err
	}
	return &xhubv1.QueryResponse{Records: [][]byte{m.Data}}, nil
}

// rawGRPC serves rawExchange over the same mTLS as the hub.
func (e *env) rawGRPC() (string, func(), error) {
	cert, err := e.raw.Authority.ServerCert([]string{"127.0.0.1", "localhost"})
	if err != nil {
		return "", nil, err
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: e.raw.Authority.Pool()}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)))
	xhubv1.RegisterExchangeServer(gs, &rawExchange{nc: e.nc})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() { _ = gs.Serve(lis) }()
	return lis.Addr().String(), gs.Stop, nil
}

// publish: validated, durable batches of 100 records through the hub
// against raw JetStream async publishes of the same 100 records' bytes.
func (e *env) publish(ctx context.Context) (Path, error) {
	const batch = 100
	recs := make([][]byte, batch)
	for i := range recs {
		recs[i] = record(i)
	}
	var seq atomic.Int64
	hubPublish := func(ctx context.Context, _ int) error {
		_, err := e.provider.Publish(ctx, e.dataset, recs, fmt.Sprintf("bench-%d", seq.Add(1)))
		return err
	}
	if _, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH_RAW", Subjects: []string{"bench.raw.d"}, Storage: jetstream.FileStorage, Replicas: max(e.cfg.Replicas, 1)}); err != nil {
		return Path{}, err
	}
	defer e.js.DeleteStream(context.Background(), "BENCH_RAW")
	rawPublish := func(ctx context.Context, _ int) error {
		futs := make([]jetstream.PubAckFuture, 0, batch)
		for _, r := range recs {
			f, err := e.js.PublishAsync("bench.raw.d", r)
			if err != nil {
				return err
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	h, r := alternate(ctx, e.cfg.Progress, "publish", e.cfg.Concurrency, e.cfg.Duration, hubPublish, rawPublish)
	p := Path{Unit: "records/s", Hub: h.rate(batch), Raw: r.rate(batch), HubCalls: h.calls, RawCalls: r.calls, HubErrors: h.errs,
		HubP50us: pct(h.lat, .5), HubP99us: pct(h.lat, .99), RawP50us: pct(r.lat, .5), RawP99us: pct(r.lat, .99)}
	p.Ratio = ratio(p.Hub, p.Raw)
	p.Note = "batches of 100 records of ~1 KiB; hub: one gRPC call, schema validation of every record, one durable JetStream message per batch; raw: 100 async publishes awaited"
	return p, nil
}

// subscribe: every record published so far delivered to 10 grantee
// departments (projected, acknowledged) against 10 raw JetStream
// consumers reading the same records.
func (e *env) subscribe(ctx context.Context) (Path, error) {
	const total = 20_000
	recs := make([][]byte, 100)
	for i := range recs {
		recs[i] = record(i)
	}
	// A fresh dataset stream slice: publish total records in batches.
	start := time.Now()
	subs := make([]*adapters.Subscription, len(e.grantees))
	for i, g := range e.grantees {
		s, err := g.Subscribe(ctx, e.dataset, fmt.Sprintf("bench-%d", start.UnixNano()%1_000_000), "new")
		if err != nil {
			return Path{}, err
		}
		subs[i] = s
	}
	time.Sleep(200 * time.Millisecond) // consumers created
	for b := 0; b < total/100; b++ {
		if _, err := e.provider.Publish(ctx, e.dataset, recs, fmt.Sprintf("sub-%d-%d", start.UnixNano(), b)); err != nil {
			return Path{}, err
		}
	}
	var wg sync.WaitGroup
	var got atomic.Int64
	t0 := time.Now()
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]uint64, 0, 100)
			for n := 0; n < total; n++ {
				d, err := s.Recv()
				if err != nil {
					return
				}
				got.Add(1)
				if ids = append(ids, d.ID); len(ids) == 100 {
					_ = s.Ack(ids...)
					ids = ids[:0]
				}
			}
			_ = s.Ack(ids...)
			s.Close()
		}()
	}
	// Progress while the hub delivers: every second, how many of the
	// records all grantees are to receive have arrived.
	stopProgress := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				fmt.Fprintf(e.cfg.Progress, "  subscribe: hub delivered %d of %d records\n", got.Load(), int64(total)*int64(len(subs)))
			}
		}
	}()
	wg.Wait()
	close(stopProgress)
	hubRate := float64(got.Load()) / time.Since(t0).Seconds()

	// Raw: the same records as messages, 10 consumers each reading all,
	// with the hub's consumer settings. Measured in rounds: one round
	// once stalled on redeliveries after AckWait (a slow consumer losing
	// messages), so the median is used and a stalled round is reported.
	var rounds []float64
	var rawGot, redelivered atomic.Int64
	for r := range rawRounds {
		rate, err := e.rawSubscribeRound(ctx, r, recs, total, &rawGot, &redelivered)
		if err != nil {
			return Path{}, err
		}
		rounds = append(rounds, rate)
		fmt.Fprintf(e.cfg.Progress, "  subscribe: raw round %d of %d: %.0f records/s\n", r+1, rawRounds, rate)
	}
	rawRate := median(rounds)
	if w := outlier("raw subscribe baseline", rounds, "records/s"); w != "" {
		e.warn(w)
	}
	if n := redelivered.Load(); n > 0 {
		e.warn(fmt.Sprintf("raw subscribe baseline: %d records were redelivered (lost to a slow consumer, resent after AckWait)", n))
	}
	p := Path{Unit: "records/s", Hub: hubRate, Raw: rawRate, HubCalls: got.Load(), RawCalls: rawGot.Load(), Ratio: ratio(hubRate, rawRate), RawRounds: rounds,
		Note: fmt.Sprintf("%d records of ~1 KiB to each of 10 departments; hub: grant check, projection, gRPC stream, acks", total)}
	return p, nil
}

// rawRounds is how many times the raw subscribe baseline is measured.
const rawRounds = 3

// rawSubscribeRound publishes total records to a fresh stream and reads
// them with 10 durable consumers configured as the hub's subscriptions
// are (explicit acks, 256 unacknowledged at most, pulls of 64).
func (e *env) rawSubscribeRound(ctx context.Context, round int, recs [][]byte, total int, got, redelivered *atomic.Int64) (float64, error) {
	name := fmt.Sprintf("BENCH_RAW_SUB_%d", round)
	subject := fmt.Sprintf("bench.raw.s%d", round)
	if _, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage, Replicas: max(e.cfg.Replicas, 1)}); err != nil {
		return 0, err
	}
	defer e.js.DeleteStream(context.Background(), name)
	for i := 0; i < total; i += len(recs) {
		futs := make([]jetstream.PubAckFuture, 0, len(recs))
		for _, r := range recs {
			f, err := e.js.PublishAsync(subject, r)
			if err != nil {
				return 0, err
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return 0, err
			}
		}
	}
	var wg sync.WaitGroup
	t1 := time.Now()
	for i := range 10 {
		// One connection per consumer, as ten integrators would have:
		// several pull iterators sharing one connection stall now and
		// then for the 30 s pull expiry (the server holds no pull request
		// while the client still counts one outstanding), which is what
		// made this baseline read 6k records/s in some runs.
		nc, err := e.connect(fmt.Sprintf("raw-sub-%d", i))
		if err != nil {
			return 0, err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return 0, err
		}
		cons, err := js.CreateConsumer(ctx, name, jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("raw-%d", i), AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait: 30 * time.Second, MaxAckPending: 256,
		})
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			it, err := cons.Messages(jetstream.PullMaxMessages(64))
			if err != nil {
				return
			}
			defer it.Stop()
			seen := make(map[uint64]bool, total)
			for len(seen) < total {
				m, err := it.Next()
				if err != nil {
					return
				}
				_ = m.Ack()
				md, err := m.Metadata()
				if err == nil {
					if md.NumDelivered > 1 {
						redelivered.Add(1)
					}
					if seen[md.Sequence.Stream] {
						continue
					}
					seen[md.Sequence.Stream] = true
				}
				got.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(total*10) / time.Since(t1).Seconds(), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// outlier describes rounds that differ from their median by more than a
// factor of two, or "".
func outlier(what string, rounds []float64, unit string) string {
	m := median(rounds)
	for _, r := range rounds {
		if m > 0 && (r < m/2 || r > 2*m) {
			parts := make([]string, len(rounds))
			for i, x := range rounds {
				parts[i] = fmt.Sprintf("%.0f", x)
			}
			return fmt.Sprintf("%s is unstable: rounds of %s %s; the ratio uses the median %.0f", what, strings.Join(parts, ", "), unit, m)
		}
	}
	return ""
}
