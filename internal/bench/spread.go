package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// Spread is the province-scale query workload: many departments, many
// datasets, many provider streams and many consumer connections, each
// consumer querying datasets granted to its department at random — where
// the single-dataset query path has one provider stream and one consumer
// connection carrying every call.
type Spread struct {
	Depts     int `json:"depts"`     // departments, each owning datasets/depts datasets
	Datasets  int `json:"datasets"`  // open datasets, spread over the departments
	Providers int `json:"providers"` // provider streams (one connection and system credential each), spread over the departments
	Consumers int `json:"consumers"` // consumer connections (one system credential each), querying concurrently
	Grants    int `json:"grants"`    // grants, spread over the departments
}

// DefaultSpread is a province: 50 departments, 300 provider systems, 1,000
// datasets and 3,000 grants, with 64 consumers.
var DefaultSpread = Spread{Depts: 50, Datasets: 1000, Providers: 300, Consumers: 64, Grants: 3000}

func (s Spread) check() error {
	switch {
	case s.Depts < 2:
		return fmt.Errorf("spread: at least 2 departments")
	case s.Datasets < s.Depts || s.Providers < s.Depts:
		return fmt.Errorf("spread: every department needs a dataset and a provider (%d departments, %d datasets, %d providers)", s.Depts, s.Datasets, s.Providers)
	case s.Providers > 16*s.Depts:
		return fmt.Errorf("spread: at most 16 provider streams per department on one node (%d for %d departments)", s.Providers, s.Depts)
	case s.Consumers < 1:
		return fmt.Errorf("spread: at least one consumer")
	case s.Grants < s.Depts || s.Grants > s.Depts*(s.Datasets-s.Datasets/s.Depts):
		return fmt.Errorf("spread: %d grants do not fit %d departments and %d datasets (each department needs one)", s.Grants, s.Depts, s.Datasets)
	}
	return nil
}

// spreadEnv is the spread workload set up on the hub.
type spreadEnv struct {
	providers []*adapters.Client
	consumers []*adapters.Client
	// granted lists, per consumer, the datasets its department may read.
	granted  [][]string
	datasets [][]string // per provider stream, what it serves
	entries  int        // ledger entries the setup appended
	took     time.Duration
}

func (se *spreadEnv) close() {
	for _, c := range append(se.providers, se.consumers...) {
		c.Close()
	}
}

// parallel runs fn(i) for i in [0, n) on workers goroutines, and returns
// the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// setupSpread makes the departments, credentials, datasets and grants
// (through the hub's API, as officers would), connects the consumers and
// the provider streams.
func (e *env) setupSpread(ctx context.Context, s Spread) (*spreadEnv, error) {
	se := &spreadEnv{}
	ledger := xhubv1.NewLedgerClient(e.admin.Conn())
	head, err := ledger.GetHead(ctx, &xhubv1.GetHeadRequest{})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000)
	dept := func(i int) string { return fmt.Sprintf("p%d-%s", i, suffix) }
	issue := func(d string, role vocab.Role, name string) (*adapters.Client, error) {
		_, file, err := e.admin.IssueCredential(ctx, vocab.Identity{Dept: catalog.DeptID(d), Role: role, Name: name}, 1)
		if err != nil {
			return nil, err
		}
		c, err := vocab.ParseCreds(file)
		if err != nil {
			return nil, err
		}
		return adapters.DialCreds(ctx, c, adapters.WithHub(e.hubAddr))
	}
	const workers = 32
	officers := make([]*adapters.Client, s.Depts)
	defer func() {
		for _, o := range officers {
			if o != nil {
				o.Close()
			}
		}
	}()
	if err := parallel(s.Depts, workers, func(i int) error {
		if _, err := e.admin.AddDepartment(ctx, dept(i), "Department "+dept(i)); err != nil {
			return err
		}
		var err error
		officers[i], err = issue(dept(i), vocab.RoleOfficer, "officer")
		return err
	}); err != nil {
		return nil, fmt.Errorf("spread departments: %w", err)
	}
	// Dataset k belongs to department k % Depts.
	dsID := func(k int) string { return fmt.Sprintf("%s.d%d", dept(k%s.Depts), k) }
	if err := parallel(s.Datasets, workers, func(k int) error {
		o := officers[k%s.Depts]
		if _, _, err := o.RegisterSchema(ctx, dsID(k), []byte(benchSchema), ""); err != nil {
			return err
		}
		_, err := o.PublishDataset(ctx, adapters.DatasetSpec{ID: dsID(k), Title: "spread " + dsID(k), ShareType: "open", SchemaSubject: dsID(k)})
		return err
	}); err != nil {
		return nil, fmt.Errorf("spread datasets: %w", err)
	}
	// Grant g: department g % Depts reads a dataset of another department,
	// each pair once.
	rng := rand.New(rand.NewPCG(1, 2))
	byDept := make([][]string, s.Depts)
	seen := map[string]bool{}
	type grant struct {
		dept int
		ds   string
	}
	var grants []grant
	for g := 0; len(grants) < s.Grants; g++ {
		d := g % s.Depts
		k := rng.IntN(s.Datasets)
		if k%s.Depts == d || seen[fmt.Sprint(d, "/", k)] {
			continue
		}
		seen[fmt.Sprint(d, "/", k)] = true
		grants = append(grants, grant{d, dsID(k)})
		byDept[d] = append(byDept[d], dsID(k))
	}
	if err := parallel(len(grants), workers, func(i int) error {
		_, err := officers[grants[i].dept].RequestShare(ctx, grants[i].ds, nil, "province benchmark", 1)
		return err
	}); err != nil {
		return nil, fmt.Errorf("spread grants: %w", err)
	}
	// Provider streams: department d's streams share its datasets.
	perDept := make([]int, s.Depts)
	for p := range s.Providers {
		perDept[p%s.Depts]++
	}
	se.providers = make([]*adapters.Client, s.Providers)
	se.datasets = make([][]string, s.Providers)
	for p := range s.Providers {
		d, j := p%s.Depts, p/s.Depts
		for k := d; k < s.Datasets; k += s.Depts {
			if (k/s.Depts)%perDept[d] == j {
				se.datasets[p] = append(se.datasets[p], dsID(k))
			}
		}
	}
	if err := parallel(s.Providers, workers, func(p int) error {
		var err error
		se.providers[p], err = issue(dept(p%s.Depts), vocab.RoleSystem, fmt.Sprintf("provider-%d", p))
		return err
	}); err != nil {
		se.close()
		return nil, fmt.Errorf("spread providers: %w", err)
	}
	se.consumers = make([]*adapters.Client, s.Consumers)
	se.granted = make([][]string, s.Consumers)
	if err := parallel(s.Consumers, workers, func(c int) error {
		var err error
		se.consumers[c], err = issue(dept(c%s.Depts), vocab.RoleSystem, fmt.Sprintf("consumer-%d", c))
		se.granted[c] = byDept[c%s.Depts]
		return err
	}); err != nil {
		se.close()
		return nil, fmt.Errorf("spread consumers: %w", err)
	}
	se.took = time.Since(start)
	// What the setup appended, as the ledger counts it.
	end, err := ledger.GetHead(ctx, &xhubv1.GetHeadRequest{})
	if err != nil {
		se.close()
		return nil, err
	}
	se.entries = int(end.Size - head.Size)
	return se, nil
}

// spread measures the spread workload against the same spread over raw
// NATS: one responder connection per provider stream subscribed to its
// datasets' subjects, one gRPC connection per consumer to the raw service.
func (e *env) spread(ctx context.Context, s Spread) (Path, *SpreadSetup, error) {
	if err := s.check(); err != nil {
		return Path{}, nil, err
	}
	se, err := e.setupSpread(ctx, s)
	if err != nil {
		return Path{}, nil, err
	}
	defer se.close()
	rec := record(1)
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	for p, c := range se.providers {
		go func() {
			_ = c.Serve(pctx, se.datasets[p], func(context.Context, adapters.ProviderQuery) ([][]byte, string, error) {
				return [][]byte{rec}, "", nil
			})
		}()
	}
	// Every dataset answers before the clock starts.
	deadline := time.Now().Add(30 * time.Second)
	for c, list := range se.granted {
		for _, ds := range list {
			for {
				_, err := se.consumers[c].Query(ctx, ds, adapters.QueryOptions{Limit: 1})
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					return Path{}, nil, fmt.Errorf("spread: %s not answered: %w", ds, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	setup := &SpreadSetup{Spread: s, LedgerEntries: se.entries, SetupS: se.took.Seconds()}
	hubQuery := func(ctx context.Context, w int) error {
		list := se.granted[w]
		r, err := se.consumers[w].Query(ctx, list[rand.IntN(len(list))], adapters.QueryOptions{Limit: 10})
		if err == nil && len(r.Records) != 1 {
			err = fmt.Errorf("got %d records", len(r.Records))
		}
		return err
	}

	// Raw, spread the same way.
	for p := range se.providers {
		nc, err := e.connect(fmt.Sprintf("raw-provider-%d", p))
		if err != nil {
			return Path{}, nil, err
		}
		defer nc.Close()
		for _, ds := range se.datasets[p] {
			if _, err := nc.QueueSubscribe(rawQuerySubject+ds, "providers", func(m *nats.Msg) { _ = m.Respond(rec) }); err != nil {
				return Path{}, nil, err
			}
		}
		if err := nc.Flush(); err != nil {
			return Path{}, nil, err
		}
	}
	addr, stopRaw, err := e.rawGRPC()
	if err != nil {
		return Path{}, nil, err
	}
	defer stopRaw()
	rawClients := make([]xhubv1.ExchangeClient, s.Consumers)
	for c := range rawClients {
		cl, err := adapters.DialCreds(ctx, mustCreds(e.raw.AdminCreds), adapters.WithHub(addr))
		if err != nil {
			return Path{}, nil, err
		}
		defer cl.Close()
		rawClients[c] = xhubv1.NewExchangeClient(cl.Conn())
	}
	rawQuery := func(ctx context.Context, w int) error {
		list := se.granted[w]
		_, err := rawClients[w].Query(ctx, &xhubv1.QueryRequest{Dataset: list[rand.IntN(len(list))], Limit: 10})
		return err
	}
	h, r := alternate(ctx, e.cfg.Progress, "spread", s.Consumers, e.cfg.Duration, hubQuery, rawQuery)
	p := Path{Unit: "calls/s", Hub: h.rate(1), Raw: r.rate(1), HubCalls: h.calls, RawCalls: r.calls, HubErrors: h.errs,
		HubP50us: pct(h.lat, .5), HubP99us: pct(h.lat, .99), RawP50us: pct(r.lat, .5), RawP99us: pct(r.lat, .99)}
	p.Ratio, p.P99Ratio = ratio(p.Hub, p.Raw), ratio(p.HubP99us, p.RawP99us)
	if h.first != nil {
		p.HubFirstError = h.first.Error()
	}
	p.Note = fmt.Sprintf("%d consumers on their own connections querying random granted datasets among %d, served by %d provider streams of %d departments; 1 record of ~1 KiB per call",
		s.Consumers, s.Datasets, s.Providers, s.Depts)
	return p, setup, nil
}

// SpreadSetup is what the spread workload set up, and what it cost.
type SpreadSetup struct {
	Spread
	LedgerEntries int     `json:"ledger_entries"`
	SetupS        float64 `json:"setup_s"`
}

// rawQuerySubject prefixes the raw baselines' query subjects, one per dataset.
const rawQuerySubject = "bench.raw.q."
