package hub_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

const peopleSchema = `{"type":"object","properties":{
  "national_id":{"type":"string"},"district":{"type":"string"},"name":{"type":"string"}},
  "required":["national_id","district"]}`

// people: the keys differ in length, so a token's length could tell them
// apart; every hidden value is long enough not to turn up by chance in
// a random token.
var people = []struct{ id, district, name string }{
	{"110101198512124321", "north", "Anastasia"},
	{"110101199001011234", "south", "Bohdana"},
	{"11010119900101123X", "north", "Cyprian"},
	{"22010419", "east", "Dimitrios"},
	{"330106200012310011", "north", "Edmundo"},
	{"4401011970", "south", "Fatimah"},
	{"51010219770707707", "west", "Gudrun"},
}

// keyedHandler is a provider as an integrator writes it with the SDK: it
// pages on its key (which the grant may not include) and hands the key
// back as its page token, in clear. calls counts the queries it answers.
func keyedHandler(calls *atomic.Int64) adapters.Handler {
	sorted := slices.Clone(people)
	slices.SortFunc(sorted, func(a, b struct{ id, district, name string }) int { return strings.Compare(a.id, b.id) })
	return func(_ context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
		calls.Add(1)
		var out [][]byte
		last := ""
		for _, p := range sorted {
			if q.PageToken != "" && p.id <= q.PageToken {
				continue
			}
			rec := map[string]any{"national_id": p.id, "district": p.district, "name": p.name}
			ok := true
			for _, f := range q.Filters {
				ok = ok && f.Match(rec)
			}
			if !ok {
				continue
			}
			if len(out) == q.Limit {
				return out, last, nil
			}
			b, _ := json.Marshal(rec)
			out, last = append(out, b), p.id
		}
		return out, "", nil
	}
}

func hiddenPeople() []string {
	var h []string
	for _, p := range people {
		h = append(h, p.id, p.name)
	}
	return h
}

// TestPageTokensAreSealed: a provider that pages on a key the consumer is
// not granted (national_id; tax holds only district) hands that key back
// as its token. The consumer's tokens never show it, in text or decoded,
// and all have one length; paging through either node returns every
// record once; and every token the hub did not issue for this
// department, dataset, fields and filters (forged, altered, or issued for
// another query or department) gets one identical refusal, without the
// provider being asked.
func TestPageTokensAreSealed(t *testing.T) {
	a := testenv.Start(t, testenv.WithNATSListen())
	dirB := t.TempDir()
	a.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB, testenv.WithNATSURL(a.NATSURL()))
	ctx := context.Background()
	owner := a.Officer("health")
	for _, ds := range []string{"health.people", "health.people2"} {
		if _, err := testenv.RPC(owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: ds, SchemaJson: []byte(peopleSchema)}); err != nil {
			t.Fatal(err)
		}
		if _, err := testenv.RPC(owner).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: ds, Title: ds, ShareType: "conditional", SchemaSubject: ds}); err != nil {
			t.Fatal(err)
		}
	}
	grant := func(dept, ds string, fields ...string) {
		r, err := testenv.RPC(a.Officer(dept)).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: ds, Purpose: "p", Fields: fields})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := testenv.RPC(owner).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id}); err != nil {
			t.Fatal(err)
		}
	}
	grant("tax", "health.people", "district")
	grant("tax", "health.people2", "district")
	grant("police", "health.people", "district", "name")
	top, err := testenv.RPC(owner).Ledger.GetHead(ctx, &xhubv1.GetHeadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(b.Admin).Ledger.GetHead(ctx, &xhubv1.GetHeadRequest{MinSeq: top.Size}); err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int64
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	provider := a.System("health", "registry")
	go func() {
		defer close(done)
		_ = provider.Serve(pctx, []string{"health.people", "health.people2"}, keyedHandler(&calls))
	}()
	t.Cleanup(func() { cancel(); <-done })
	taxCreds := a.Creds("tax", vocab.RoleSystem, "etl")
	taxA, taxB := a.Dial(taxCreds), b.Dial(taxCreds)
	police := a.System("police", "etl")
	healthSys := a.System("health", "reader")
	testenv.WaitFor(t, 10*time.Second, "the provider", func() bool {
		_, err := taxA.Query(ctx, "health.people", adapters.QueryOptions{Limit: 1})
		return err == nil
	})

	// Tax pages one record at a time, alternating nodes: each record once,
	// cut to district.
	hidden := hiddenPeople()
	var districts, want []string
	for _, rec := range testenv.Pages(t, []*adapters.Client{taxA, taxB}, "health.people", adapters.QueryOptions{Limit: 1}, hidden, len(people)+1) {
		var m map[string]string
		if err := json.Unmarshal(rec, &m); err != nil || len(m) != 1 {
			t.Fatalf("record %s is not district alone", rec)
		}
		districts = append(districts, m["district"])
	}
	for _, p := range people {
		want = append(want, p.district)
	}
	slices.Sort(want)
	slices.Sort(districts)
	if !slices.Equal(districts, want) {
		t.Fatalf("paged districts %v, want %v", districts, want)
	}
	// The owner's own system, every field, two at a time: each key once,
	// in order.
	var keys, wantKeys []string
	for _, rec := range testenv.Pages(t, []*adapters.Client{healthSys}, "health.people", adapters.QueryOptions{Limit: 2}, hidden, len(people)) {
		var m map[string]string
		_ = json.Unmarshal(rec, &m)
		keys = append(keys, m["national_id"])
	}
	for _, p := range people {
		wantKeys = append(wantKeys, p.id)
	}
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("the owner paged %v, want %v", keys, wantKeys)
	}

	// Forged tokens, and tokens issued for other queries.
	valid := testenv.FirstToken(t, taxA, "health.people", adapters.QueryOptions{})
	north := testenv.FirstToken(t, taxA, "health.people", adapters.QueryOptions{Where: []string{"district=north"}})
	other := testenv.FirstToken(t, taxA, "health.people2", adapters.QueryOptions{})
	policeDistrict := testenv.FirstToken(t, police, "health.people", adapters.QueryOptions{Fields: []string{"district"}})
	ownerDistrict := testenv.FirstToken(t, healthSys, "health.people", adapters.QueryOptions{Fields: []string{"district"}})
	probes := append(testenv.Probes(taxA, "health.people", valid),
		testenv.TokenProbe{Name: "another dataset's", Client: taxA, Dataset: "health.people", Options: adapters.QueryOptions{PageToken: other}},
		testenv.TokenProbe{Name: "other filters'", Client: taxA, Dataset: "health.people", Options: adapters.QueryOptions{PageToken: north}},
		testenv.TokenProbe{Name: "other filters', another value", Client: taxA, Dataset: "health.people", Options: adapters.QueryOptions{PageToken: north, Where: []string{"district=south"}}},
		testenv.TokenProbe{Name: "no filters', with a filter", Client: taxA, Dataset: "health.people", Options: adapters.QueryOptions{PageToken: valid, Where: []string{"district=north"}}},
		testenv.TokenProbe{Name: "tax's replayed by police", Client: police, Dataset: "health.people", Options: adapters.QueryOptions{Fields: []string{"district"}, PageToken: valid}},
		testenv.TokenProbe{Name: "police's replayed by tax", Client: taxA, Dataset: "health.people", Options: adapters.QueryOptions{Fields: []string{"district"}, PageToken: policeDistrict}},
		testenv.TokenProbe{Name: "police's with other fields", Client: police, Dataset: "health.people", Options: adapters.QueryOptions{Fields: []string{"district", "name"}, PageToken: policeDistrict}},
		testenv.TokenProbe{Name: "the owner's replayed by tax", Client: taxA, Dataset: "health.people", Options: adapters.QueryOptions{PageToken: ownerDistrict}},
		testenv.TokenProbe{Name: "another dataset's, through B", Client: taxB, Dataset: "health.people", Options: adapters.QueryOptions{PageToken: other}},
		testenv.TokenProbe{Name: "tax's, on another dataset", Client: taxA, Dataset: "health.people2", Options: adapters.QueryOptions{PageToken: valid}},
	)
	before := calls.Load()
	refusal := testenv.RefusedAlike(t, probes)
	if n := calls.Load() - before; n != 0 {
		t.Errorf("the provider was asked %d times with tokens the hub did not issue", n)
	}

	// Over HTTP and JSON, as the attack was made: no hidden value in the
	// answer, the same refusal.
	web := a.HTTP(taxCreds, false)
	st, body, _ := post(t, web, a.URL(), "Exchange/Query", `{"dataset":"health.people","limit":1}`)
	if st != 200 || testenv.HiddenInToken(body, hidden) != "" {
		t.Fatalf("HTTP query: %d %s", st, body)
	}
	st, body, _ = post(t, web, a.URL(), "Exchange/Query", `{"dataset":"health.people","limit":1,"pageToken":"3"}`)
	if e := wantError(t, st, body, 400, "invalid_argument"); refusal != nil && e.Message != refusal.Message() {
		t.Fatalf("HTTP refusal %q, gRPC %q", e.Message, refusal.Message())
	}
}
