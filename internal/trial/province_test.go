package trial

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/webhook"
)

// The province: a deployment run the way a province runs one, all at
// once, for XHUB_PROVINCE (a duration; default the short form, 2m):
// three nats-server processes, two `xhub serve` nodes, the file adapter
// and the PostgreSQL adapter as providers on different nodes; consumers
// on gRPC (durable subscriptions, closed and resumed), on JSON over HTTP
// and on NATS (xhub.out.<dept>.<dataset>); a webhook receiver for every
// department; officers requesting, approving, narrowing, rejecting,
// revoking, disputing; credentials issued and revoked, datasets
// registered, updated and retired, each write on one node and the next
// on the other; SIGKILL of a hub node, a NATS node and a provider in
// turn. Every sweep runs every XHUB_PROVINCE/12 (5s to 1m), so the run
// passes a dozen of each.
//
// Invariants, as the load goes and at the end (each violation is logged
// as seen, and fails the test under the invariant's name):
//
//	records/grpc        every acknowledged record reaches each grantee's gRPC subscription while the grant is active
//	records/nats        … and its NATS delivery subject (outside NATS outages: core NATS is at most once)
//	records/fields      no delivery holds a field outside the grant (narrowed grants)
//	records/after-revoke  no delivery, on any channel, once a revocation is acknowledged (revokeSlack: 5s)
//	query/refused       a query within an active grant is answered (or the node is away)
//	query/after-revoke  a query after revocation is refused
//	creds/revoked       a revoked credential stops working
//	writes/refused      no write is refused but for a node being away (every write depends only on acknowledged ones)
//	writes/lost, writes/twice  every acknowledged write is in the ledger, once
//	webhooks            every event the load made is posted to its department's webhook, once, signed
//	listings/phantom, listings/unmade, listings/differ  every node lists the same rows, all made
//	ledger              the nodes end at the same signed head; ledger verify passes on each
//	ledger/bodies       no body holds what the apply fills in (zero times, seq 0); no summary Go formatting
//	nodes/growth        goroutines and heap of each node stop growing once the load is steady
//	nodes/exited        no process exits but by a kill
//
//	XHUB_PROVINCE=1h go test -run TestProvince -v -timeout 2h ./internal/trial/
func TestProvince(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a deployment of processes for minutes")
	}
	dur := 2 * time.Minute
	if s := os.Getenv("XHUB_PROVINCE"); s != "" {
		var err error
		if dur, err = time.ParseDuration(s); err != nil || dur < 30*time.Second {
			t.Fatalf("XHUB_PROVINCE=%q: a duration of at least 30s", s)
		}
	}
	sweep := min(max(dur/12, 5*time.Second), time.Minute)
	d := deploy(t, deployConfig{callout: true,
		serve: []string{"--sweep-interval", sweep.String(), "--webhook-allow-private",
			"--subscription-sweep", sweep.String(), "--webhook-backoff", "200ms,400ms,800ms,1.6s,3.2s"},
	})
	p := &province{d: d, w: newWorld(t), dur: dur, sweep: sweep}
	p.setup()
	t.Logf("province: %s, sweeps every %s, PostgreSQL %s", dur, sweep, p.pgNote)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	// The steady consumers outlive the load: finish waits for them to
	// receive what was published.
	consume, stopConsumers := context.WithCancel(context.Background())
	var wg, consumers sync.WaitGroup
	p.run(ctx, &wg, consume, &consumers)
	<-ctx.Done()
	wg.Wait()
	p.finish(func() {
		stopConsumers()
		consumers.Wait()
	})
}

// province holds the run's clients and what they made.
type province struct {
	d     *deployment
	w     *world
	dur   time.Duration
	sweep time.Duration

	officer map[string]*adapters.Client // by department, every node
	// officerOn[dept][i] and adminOn[i] talk to node i alone: a write
	// on one node and the next on the other.
	officerOn map[string][]*adapters.Client
	adminOn   []*adapters.Client
	creds     map[string]string // "dept/name" → creds file
	secrets   map[string][]byte // department → webhook secret
	hook      *http.Server
	pgNote    string
	scrapes   [][]sample // by node
	natsURLs  []string   // the integrators' TLS URLs, one per NATS node
	runStart  time.Time
	steady    []string // the growth check's figures, by node
}

const caseSchema = `{"type":"object","properties":{"id":{"type":"integer"},"ward":{"type":"string"},"note":{"type":"string"}},"required":["id","ward"]}`
const residentSchema = `{"type":"object","properties":{"id":{"type":"integer"},"ward":{"type":"string"},"name":{"type":"string"}},"required":["id","ward"]}`

// sample is one scrape of a node's /metrics.
type sample struct {
	at                     time.Time
	since                  time.Time // the process's start
	goroutines, heap, rssB float64
}

func (p *province) setup() {
	d, ctx := p.d, context.Background()
	p.officer, p.officerOn, p.creds, p.secrets = map[string]*adapters.Client{}, map[string][]*adapters.Client{}, map[string]string{}, map[string][]byte{}
	for _, dept := range []string{"health", "civil", "tax", "edu", "police"} {
		f := d.creds(dept, vocab.RoleOfficer, "officer")
		p.creds[dept+"/officer"] = f
		p.officer[dept] = d.dial(f)
		for _, addr := range d.addrs {
			p.officerOn[dept] = append(p.officerOn[dept], d.dialHub(f, addr))
		}
	}
	for _, s := range []string{"health/registry", "health/files", "civil/pg", "tax/etl", "edu/etl", "police/etl"} {
		dept, name, _ := strings.Cut(s, "/")
		p.creds[s] = d.creds(dept, vocab.RoleSystem, name)
	}
	p.adminOn = d.nodeClients()
	for _, n := range d.nats.Nodes {
		p.natsURLs = append(p.natsURLs, fmt.Sprintf("tls://127.0.0.1:%d", n.Port))
	}
	must := func(what string, err error) {
		if err != nil {
			d.t.Fatalf("%s: %v", what, err)
		}
	}
	_, _, err := p.officer["health"].RegisterSchema(ctx, "health.cases", []byte(caseSchema), "")
	must("schema health.cases", err)
	_, err = p.officer["health"].PublishDataset(ctx, adapters.DatasetSpec{ID: "health.cases", Title: "Cases", ShareType: "conditional", SchemaSubject: "health.cases"})
	must("dataset health.cases", err)
	_, _, err = p.officer["civil"].RegisterSchema(ctx, "civil.residents", []byte(residentSchema), "")
	must("schema civil.residents", err)
	_, err = p.officer["civil"].PublishDataset(ctx, adapters.DatasetSpec{ID: "civil.residents", Title: "Residents", ShareType: "conditional", SchemaSubject: "civil.residents"})
	must("dataset civil.residents", err)

	p.startWebhooks()

	// The steady grantees: tax reads every field of health.cases; police
	// asks civil.residents for the names too and is granted less.
	p.grant("tax", "health", "health.cases", nil, nil)
	p.grant("police", "civil", "civil.residents", []string{"id", "ward", "name"}, []string{"id", "ward"})

	var recs []string
	for i := range 40 {
		recs = append(recs, fmt.Sprintf(`{"id":%d,"ward":"w%d","note":"file"}`, 9_000_000+i, i%4))
	}
	d.fileProvider("provider-file", "health.cases", p.creds["health/files"], d.addrs[0]+","+d.addrs[1], recs)
	p.startResidents()
}

// grant has requester's officer ask for dataset's fields and owner's
// approve them narrowed to grant (nil: as asked), during setup.
func (p *province) grant(requester, owner, dataset string, ask, grant []string) adapters.Grant {
	ctx := context.Background()
	r, err := p.officer[requester].RequestShare(ctx, dataset, ask, "province", 30)
	if err != nil {
		p.d.t.Fatalf("%s requests %s: %v", requester, dataset, err)
	}
	p.w.wrote(ledger.KindShareRequested, r.Seq, false)
	p.w.event(owner, ledger.KindShareRequested, r.Request.ID)
	a, err := p.officer[owner].Approve(ctx, r.Request.ID, grant, 30, "province")
	if err != nil {
		p.d.t.Fatalf("%s approves %s: %v", owner, r.Request.ID, err)
	}
	p.w.wrote(ledger.KindShareApproved, a.Seq, true)
	p.w.event(requester, ledger.KindShareApproved, r.Request.ID)
	return *a.Grant
}

// startResidents serves civil.residents from PostgreSQL through the
// second node (`xhub adapter postgres`), or, on a machine without
// PostgreSQL and not in CI, from a file.
func (p *province) startResidents() {
	d := p.d
	hubs := d.addrs[1] + "," + d.addrs[0]
	dsn, skip := postgresDSN(d.t)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			d.t.Fatalf("PostgreSQL required in CI: %s", skip)
		}
		p.pgNote = "absent (" + skip + "): civil.residents from a file"
		var recs []string
		for i := range 40 {
			recs = append(recs, fmt.Sprintf(`{"id":%d,"ward":"w%d","name":"R%d"}`, i+1, i%4, i))
		}
		d.fileProvider("provider-residents", "civil.residents", p.creds["civil/pg"], hubs, recs)
		return
	}
	table := fmt.Sprintf("residents_%d", time.Now().UnixNano())
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		d.t.Fatalf("PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, ward text NOT NULL, name text, secret text);
INSERT INTO %[1]s SELECT g, 'w' || (g %% 4), 'R' || g, 's' || g FROM generate_series(1, 40) g`, table)); err != nil {
		d.t.Fatalf("PostgreSQL table: %v", err)
	}
	d.t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), dsn); err == nil {
			_, _ = c.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
			c.Close(context.Background())
		}
	})
	p.pgNote = "at " + dsn
	d.provider("provider-pg", p.creds["civil/pg"], hubs, "civil.residents",
		"adapter", "postgres", "--dataset", "civil.residents", "--dsn", dsn, "--table", table, "--key", "id")
}

// startWebhooks runs the receiver on 127.0.0.1 and sets every
// department's webhook to it. The receiver checks each post's signature
// and answers the first attempt of one delivery in four with 503, so that
// retries happen throughout.
func (p *province) startWebhooks() {
	d := p.d
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	p.hook = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		dept := strings.TrimPrefix(r.URL.Path, "/hook/")
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		mu.Lock()
		secret := p.secrets[dept]
		mu.Unlock()
		if got := r.Header.Get(webhook.HeaderSignature); got != webhook.Sign(secret, r.Header.Get(webhook.HeaderTimestamp), body) {
			p.w.violate("webhooks", "a post to %s with a wrong signature (%s)", dept, body)
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b webhook.Body
		if err := json.Unmarshal(body, &b); err != nil || b.Dept != dept {
			p.w.violate("webhooks", "a post to %s that is not its event: %s", dept, body)
			return
		}
		mu.Lock()
		seen[b.Delivery]++
		n := seen[b.Delivery]
		mu.Unlock()
		if n == 1 && rand.IntN(4) == 0 {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		p.w.posted(eventKey{b.Dept, b.Event, b.ID}, b.Delivery)
	})}
	go func() { _ = p.hook.Serve(lis) }()
	d.t.Cleanup(func() { p.hook.Close() })
	for _, dept := range []string{"health", "civil", "tax", "edu", "police"} {
		ws, err := d.admin.SetWebhook(context.Background(), dept, "http://"+lis.Addr().String()+"/hook/"+dept)
		if err != nil {
			d.t.Fatalf("webhook of %s: %v", dept, err)
		}
		secret, err := hex.DecodeString(ws.Secret)
		if err != nil {
			d.t.Fatal(err)
		}
		mu.Lock()
		p.secrets[dept] = secret
		mu.Unlock()
	}
}

// run starts every actor; each ends with ctx, but the steady consumers,
// which end with consume.
func (p *province) run(ctx context.Context, wg *sync.WaitGroup, consume context.Context, consumers *sync.WaitGroup) {
	gos := func(f func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	consumer := func(f func(ctx context.Context)) {
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			f(consume)
		}()
	}
	d := p.d
	p.runStart = time.Now()
	for i, hubs := range []string{d.addrs[0] + "," + d.addrs[1], d.addrs[1] + "," + d.addrs[0]} {
		c := d.dialHub(p.creds["health/registry"], hubs)
		gos(func(ctx context.Context) { p.publisher(ctx, i, c) })
	}
	consumer(p.taxSubscriber)
	consumer(func(ctx context.Context) { p.integrator(ctx, "tax", 2) })
	gos(func(ctx context.Context) { p.querier(ctx, "tax/etl", "health.cases", nil) })
	gos(func(ctx context.Context) { p.querier(ctx, "police/etl", "civil.residents", []string{"id", "ward"}) })
	gos(p.churn)
	gos(p.workflow)
	gos(p.credentials)
	gos(p.datasets)
	gos(p.killer)
	gos(p.scraper)
	gos(p.lister)
}

// publisher publishes batches of 5 records of health.cases, one call at
// a time, until ctx ends.
func (p *province) publisher(ctx context.Context, n int, c *adapters.Client) {
	client := fmt.Sprintf("publisher %d", n+1)
	for b := 0; ctx.Err() == nil; b++ {
		base := (n+1)*100_000_000 + b*10
		var recs [][]byte
		var ids []int
		for i := range 5 {
			recs = append(recs, fmt.Appendf(nil, `{"id":%d,"ward":"w%d","note":"n%d"}`, base+i, i%4, b))
			ids = append(ids, base+i)
		}
		start := time.Now()
		cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err := c.Publish(cctx, "health.cases", recs, fmt.Sprintf("p%d-%d", n, b))
		cancel()
		p.w.took(client, time.Since(start))
		if err != nil {
			p.w.refused("writes/refused", "publish", err)
			continue
		}
		p.w.publishedBatch(ids, time.Now())
		pause(ctx, 150*time.Millisecond)
	}
}

// pause waits d or until ctx ends (pacing, not synchronisation).
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// recordID reads a record's id and its fields.
func recordID(b []byte) (int, []string) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return -1, nil
	}
	var id int
	_ = json.Unmarshal(m["id"], &id)
	var fields []string
	for k := range m {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	return id, fields
}

// outside are the fields not in granted (nil: all granted).
func outside(fields, granted []string) []string {
	if granted == nil {
		return nil
	}
	var out []string
	for _, f := range fields {
		if !slices.Contains(granted, f) {
			out = append(out, f)
		}
	}
	return out
}

// taxSubscriber holds tax's durable subscription to health.cases through
// the second node first, closing it now and then and resuming it.
func (p *province) taxSubscriber(ctx context.Context) {
	c := p.d.dialHub(p.creds["tax/etl"], p.d.addrs[1]+","+p.d.addrs[0])
	for ctx.Err() == nil {
		start := time.Now()
		sctx, cancel := context.WithCancel(ctx)
		sub, err := c.Subscribe(sctx, "health.cases", "tax-feed", "beginning")
		p.w.took("grpc tax (subscribe)", time.Since(start))
		if err != nil {
			cancel()
			p.w.refused("records/grpc", "subscribe tax", err)
			pause(ctx, 500*time.Millisecond)
			continue
		}
		hold := time.AfterFunc(time.Duration(10+rand.IntN(15))*time.Second, cancel)
		for {
			dl, err := sub.Recv()
			if err != nil {
				if sctx.Err() == nil {
					p.w.refused("records/grpc", "tax subscription", err)
				}
				break
			}
			id, _ := recordID(dl.Record)
			p.w.receivedRecord("grpc tax", id)
			_ = sub.Ack(dl.ID)
		}
		hold.Stop()
		cancel()
		_ = sub.Close()
	}
}

// integrator receives dept's records of health.cases on NATS through
// server node, noting its outages, until ctx ends.
func (p *province) integrator(ctx context.Context, dept string, node int) {
	nc, err := p.natsConnect(dept, node, dept+" integrator", func() bool { return true })
	if err != nil {
		p.w.violate("records/nats", "%s integrator: %v", dept, err)
		return
	}
	defer nc.Close()
	channel := "nats " + dept
	_, err = nc.Subscribe(bus.OutSubject(dept, "health.cases"), func(m *nats.Msg) {
		id, _ := recordID(m.Data)
		p.w.receivedRecord(channel, id)
	})
	if err != nil {
		p.w.violate("records/nats", "%s integrator: %v", dept, err)
		return
	}
	<-ctx.Done()
}

// natsConnect connects dept's system to NATS server node over TLS with
// its certificate, reconnecting for ever, each disconnection a NATS gap.
//
// A refusal the server reports (a permissions violation) is a violation
// while granted() holds: after a revocation the client reconnects, and is
// refused its subscription, as it should be.
func (p *province) natsConnect(dept string, node int, name string, granted func() bool) (*nats.Conn, error) {
	c, err := vocab.LoadCreds(p.creds[dept+"/etl"])
	if err != nil {
		return nil, err
	}
	addr := strings.TrimPrefix(p.natsURLs[node], "tls://")
	channel := "nats " + dept
	gap := -1
	var mu sync.Mutex
	end := func(*nats.Conn) {
		mu.Lock()
		defer mu.Unlock()
		if gap >= 0 {
			p.w.gapEnd(gap, time.Now())
			gap = -1
		}
	}
	return nats.Connect(p.natsURLs[node], nats.Secure(c.ClientTLS(addr)), nats.Name(name), nats.Timeout(10*time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if gap < 0 {
				gap = p.w.gap(channel, time.Now())
			}
		}),
		nats.ReconnectHandler(end), nats.ClosedHandler(end),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			// Only refusals: a connection the hub closes (to renew its
			// permissions when a grant of the department ends) is a gap.
			if granted() && (errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "ermissions")) {
				p.w.violate("records/nats", "%s, granted: %v", name, err)
			}
		}))
}

// httpClient calls the hub's JSON over HTTP with a creds file's
// identity, on either node.
type httpClient struct {
	addrs   []string
	clients []*http.Client
}

func (p *province) httpClient(credsFile string) *httpClient {
	c, err := vocab.LoadCreds(credsFile)
	if err != nil {
		p.d.t.Fatal(err)
	}
	h := &httpClient{addrs: p.d.addrs}
	for _, addr := range h.addrs {
		tr := &http.Transport{TLSClientConfig: c.ClientTLS(addr)}
		p.d.t.Cleanup(tr.CloseIdleConnections)
		h.clients = append(h.clients, &http.Client{Transport: tr, Timeout: 30 * time.Second})
	}
	return h
}

// query posts Exchange/Query to node n; a refusal comes back as the
// gRPC status the hub sent (Connect's JSON error), a node away as
// errUnavailable.
func (h *httpClient) query(n int, dataset string, limit int) ([]json.RawMessage, error) {
	body, _ := json.Marshal(map[string]any{"dataset": dataset, "limit": limit})
	res, err := h.clients[n].Post("https://"+h.addrs[n]+"/xhub.v1.Exchange/Query", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if res.StatusCode != http.StatusOK {
		var e struct{ Code, Message string }
		if json.Unmarshal(b, &e) != nil || e.Code == "" {
			return nil, fmt.Errorf("%w: HTTP %d: %s", errUnavailable, res.StatusCode, b)
		}
		var code codes.Code
		if err := code.UnmarshalJSON([]byte(`"` + strings.ToUpper(e.Code) + `"`)); err != nil {
			return nil, fmt.Errorf("HTTP %d: %s", res.StatusCode, b)
		}
		return nil, status.Error(code, e.Message)
	}
	var out struct{ Records []json.RawMessage }
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("HTTP query answer: %v: %s", err, b)
	}
	return out.Records, nil
}

// querier queries dataset over JSON over HTTP on either node in turn,
// under a grant that stays: every answer within granted (nil: all).
func (p *province) querier(ctx context.Context, who, dataset string, granted []string) {
	h := p.httpClient(p.creds[who])
	client := "http " + strings.Split(who, "/")[0]
	for i := 0; ctx.Err() == nil; i++ {
		start := time.Now()
		recs, err := h.query(i%2, dataset, 5)
		p.w.took(client, time.Since(start))
		if err != nil {
			p.w.refused("query/refused", client+" query", err)
		}
		for _, r := range recs {
			if _, fields := recordID(r); len(outside(fields, granted)) > 0 {
				p.w.violate("records/fields", "%s: %s answered with fields %v outside the grant %v", client, dataset, outside(fields, granted), granted)
			}
		}
		pause(ctx, 300*time.Millisecond)
	}
}

// postgresDSN is a PostgreSQL for the adapter: XHUB_PG_DSN (what .ci/run
// starts), or a throwaway cluster started by .ci/pg-start when
// PostgreSQL is installed; "" and why not otherwise.
func postgresDSN(t testing.TB) (dsn, skip string) {
	if dsn = os.Getenv("XHUB_PG_DSN"); dsn != "" {
		return dsn, ""
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if _, err := exec.LookPath("initdb"); err != nil && len(found) == 0 {
		return "", "no PostgreSQL binary (initdb) on this machine: install PostgreSQL or set XHUB_PG_DSN"
	}
	// Not under t.TempDir: as root, pg-start runs PostgreSQL as the
	// postgres user, who must reach the directory.
	dir, err := os.MkdirTemp("", "xhub-province-pg-")
	if err != nil {
		return "", err.Error()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	out, err := exec.Command("bash", "../../.ci/pg-start", dir).Output()
	if err != nil {
		return "", fmt.Sprintf("could not start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = exec.Command("bash", "../../.ci/pg-start", dir, "stop").Run() })
	return strings.TrimSpace(string(out)), ""
}
