package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// HiddenInToken returns the first of hidden that a page token shows: in
// its text, or in what any base64 or hex reading of it (or of a part of
// it) decodes to; "" when it shows none.
func HiddenInToken(token string, hidden []string) string {
	readings := []string{token}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(token); err == nil {
			readings = append(readings, string(b))
		}
		// A prefix the provider's token was cut into, or a token whose
		// length is not a multiple of 4.
		for cut := 1; cut < 4 && cut < len(token); cut++ {
			if b, err := enc.DecodeString(token[:len(token)-cut]); err == nil {
				readings = append(readings, string(b))
			}
		}
	}
	if b, err := hex.DecodeString(token); err == nil {
		readings = append(readings, string(b))
	}
	for _, h := range hidden {
		for _, r := range readings {
			if strings.Contains(r, h) {
				return h
			}
		}
	}
	return ""
}

// ForgedTokens are page tokens no hub issued, named, built around a
// token valid issued for some query: the probes of a hostile consumer
// (small numbers and quoted keys as a provider might use, random bytes of
// valid's shape, valid altered, cut short and lengthened, one far too
// long). The caller adds tokens issued for other queries.
func ForgedTokens(valid string) map[string]string {
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	raw, _ := base64.RawURLEncoding.DecodeString(valid)
	flipped := []byte(valid)
	mid := len(flipped) / 2
	if flipped[mid] == 'A' {
		flipped[mid] = 'B'
	} else {
		flipped[mid] = 'A'
	}
	// The first byte altered (a version, if there is one).
	head := append([]byte(nil), raw...)
	if len(head) > 0 {
		head[0] ^= 1
	}
	return map[string]string{
		"number 3":             "3",
		"quoted 3":             `"3"`,
		"negative":             "-1",
		"quoted key":           `"110101198512124321"`,
		"random text":          hex.EncodeToString(random(16)),
		"random bytes":         base64.RawURLEncoding.EncodeToString(random(24)),
		"random of its length": base64.RawURLEncoding.EncodeToString(random(len(raw))),
		"one character off":    string(flipped),
		"first byte off":       base64.RawURLEncoding.EncodeToString(head),
		"cut short":            valid[:len(valid)-min(4, len(valid)-1)],
		"lengthened":           valid + "AAAA",
		"all A":                strings.Repeat("A", len(valid)),
		"far too long":         strings.Repeat("A", 4096),
		"not base64":           strings.Repeat("%", len(valid)),
	}
}

// Pages reads every page of a query, the i-th through clients[i %
// len(clients)] (clients of one department on different nodes), and
// returns the records. It fails the test if a page token shows one of
// hidden, if two tokens differ in length (the length would tell keys
// apart), or if there are more than maxPages pages.
func Pages(t testing.TB, clients []*adapters.Client, dataset string, o adapters.QueryOptions, hidden []string, maxPages int) [][]byte {
	t.Helper()
	var recs [][]byte
	tokenLen := -1
	for i := 0; ; i++ {
		if i == maxPages {
			t.Fatalf("%s %+v: more than %d pages", dataset, o, maxPages)
		}
		r, err := clients[i%len(clients)].Query(context.Background(), dataset, o)
		if err != nil {
			t.Fatalf("%s %+v: page %d: %v", dataset, o, i, err)
		}
		recs = append(recs, r.Records...)
		if r.NextPageToken == "" {
			return recs
		}
		if h := HiddenInToken(r.NextPageToken, hidden); h != "" {
			t.Fatalf("%s: page token %q shows the hidden value %q", dataset, r.NextPageToken, h)
		}
		if tokenLen >= 0 && len(r.NextPageToken) != tokenLen {
			t.Fatalf("%s: page tokens of %d and %d characters: the length tells keys apart", dataset, tokenLen, len(r.NextPageToken))
		}
		tokenLen = len(r.NextPageToken)
		o.PageToken = r.NextPageToken
	}
}

// FirstToken is the page token of a query's first page (of one record).
func FirstToken(t testing.TB, c *adapters.Client, dataset string, o adapters.QueryOptions) string {
	t.Helper()
	o.Limit = 1
	r, err := c.Query(context.Background(), dataset, o)
	if err != nil {
		t.Fatalf("%s %+v: %v", dataset, o, err)
	}
	if r.NextPageToken == "" {
		t.Fatalf("%s %+v: one page only", dataset, o)
	}
	return r.NextPageToken
}

// TokenProbe is a query with a page token the hub did not issue for it.
type TokenProbe struct {
	Name    string
	Client  *adapters.Client
	Dataset string
	Options adapters.QueryOptions
}

// Probes are the forged tokens of ForgedTokens(valid), as c's queries of
// dataset.
func Probes(c *adapters.Client, dataset, valid string) []TokenProbe {
	var ps []TokenProbe
	for name, tok := range ForgedTokens(valid) {
		ps = append(ps, TokenProbe{Name: "forged: " + name, Client: c, Dataset: dataset, Options: adapters.QueryOptions{PageToken: tok}})
	}
	return ps
}

// RefusedAlike fails the test unless every probe is refused with
// INVALID_ARGUMENT naming page_token, all with one identical status
// (message and details): what a token holds must not change the answer.
// It returns that status.
func RefusedAlike(t testing.TB, probes []TokenProbe) *status.Status {
	t.Helper()
	var refusal *status.Status
	for _, p := range probes {
		_, err := p.Client.Query(context.Background(), p.Dataset, p.Options)
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "page_token") {
			t.Errorf("%s token: %v, want INVALID_ARGUMENT on page_token", p.Name, err)
			continue
		}
		if refusal == nil {
			refusal = st
		} else if !proto.Equal(st.Proto(), refusal.Proto()) {
			t.Errorf("%s token: %v, but another got %v", p.Name, st.Proto(), refusal.Proto())
		}
	}
	return refusal
}

// Citizens are the rows of the page token checks: national_id is the key
// a provider pages on, district the one field tax is granted. The keys
// differ in length (a token's length could tell them apart), and every
// hidden value is long enough not to turn up by chance in a random
// token.
var Citizens = []Citizen{
	{"110101198512124321", "north", "Anastasia"},
	{"110101199001011234", "south", "Bohdana"},
	{"11010119900101123X", "north", "Cyprian"},
	{"22010419", "east", "Dimitrios"},
	{"330106200012310011", "north", "Edmundo"},
	{"4401011970", "south", "Fatimah"},
	{"51010219770707707", "west", "Gudrun"},
}

// Citizen is one row of Citizens.
type Citizen struct{ NationalID, District, Name string }

// JSON is the citizen as a record.
func (c Citizen) JSON() []byte {
	return []byte(`{"national_id":"` + c.NationalID + `","district":"` + c.District + `","name":"` + c.Name + `"}`)
}

// CitizenFields are the fields of a citizens dataset.
var CitizenFields = []catalog.Field{{Name: "national_id", Type: "string"}, {Name: "district", Type: "string"}, {Name: "name", Type: "string"}}

// CitizenSchema is the schema of a citizens dataset.
const CitizenSchema = `{"type":"object","properties":{"national_id":{"type":"string"},"district":{"type":"string"},"name":{"type":"string"}},"required":["national_id","district"]}`

// PageTokenCheck is what CheckPageTokens leaves for further checks.
type PageTokenCheck struct {
	TaxCreds string         // a system credential of tax
	Hidden   []string       // what tax must never see: every national_id and name
	Refusal  *status.Status // the one refusal of a page token
}

// CheckPageTokens runs the page token checks of issue 20 (item 5)
// against h, a provider that serves Citizens as the datasets health.<name>
// and health.<name>2 and pages on national_id however it likes. On the
// first node of envs it publishes both, grants tax district on both and
// police district and name on the first, and serves them with h. Then:
//   - tax pages one record at a time (the i-th page through node i %
//     len(envs)), with and without a filter: no token shows a national_id
//     or a name, in text or decoded; all tokens have one length; every
//     record comes once, as district alone;
//   - police pages two at a time and gets every name once, no key in a
//     token; health's own system every key once;
//   - h is never asked for national_id for tax, and sends no record with
//     it when not asked (a key outside the grant stays in the department);
//   - every token the hub did not issue for tax's query (ForgedTokens, one
//     from the other dataset, other filters, other fields, police's,
//     health's, tax's replayed by police) gets one identical
//     INVALID_ARGUMENT, and h is not asked.
func CheckPageTokens(t testing.TB, envs []*Env, name string, h adapters.Handler) PageTokenCheck {
	t.Helper()
	ctx := context.Background()
	a := envs[0]
	ds, ds2 := "health."+name, "health."+name+"2"
	owner := a.Officer("health")
	for _, d := range []string{ds, ds2} {
		if _, err := RPC(owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: d, SchemaJson: []byte(CitizenSchema)}); err != nil {
			t.Fatal(err)
		}
		if _, err := RPC(owner).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: d, Title: d, ShareType: "conditional", SchemaSubject: d}); err != nil {
			t.Fatal(err)
		}
	}
	grant := func(dept, d string, fields ...string) {
		r, err := RPC(a.Officer(dept)).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: d, Purpose: "page token checks", Fields: fields})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := RPC(owner).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id}); err != nil {
			t.Fatal(err)
		}
	}
	grant("tax", ds, "district")
	grant("tax", ds2, "district")
	grant("police", ds, "district", "name")
	head, err := RPC(owner).Ledger.GetHead(ctx, &xhubv1.GetHeadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs[1:] {
		if _, err := RPC(e.Admin).Ledger.GetHead(ctx, &xhubv1.GetHeadRequest{MinSeq: head.Size}); err != nil {
			t.Fatal(err)
		}
	}

	// What h is asked and sends.
	var mu sync.Mutex
	var calls int
	var leaked []string
	watched := func(ctx context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
		recs, next, err := h(ctx, q)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if len(q.Fields) > 0 && !slices.Contains(q.Fields, "national_id") {
			for _, r := range recs {
				if strings.Contains(string(r), "national_id") {
					leaked = append(leaked, string(r))
				}
			}
		}
		return recs, next, err
	}
	asked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return calls
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	provider := a.System("health", "provider")
	go func() { defer close(done); _ = provider.Serve(pctx, []string{ds, ds2}, watched) }()
	t.Cleanup(func() { cancel(); <-done })
	taxCreds := a.Creds("tax", vocab.RoleSystem, "etl")
	var taxes []*adapters.Client
	for _, e := range envs {
		taxes = append(taxes, e.Dial(taxCreds))
	}
	tax, police, self := taxes[0], a.System("police", "etl"), a.System("health", "reader")
	WaitFor(t, 10*time.Second, "the provider", func() bool {
		_, err := tax.Query(ctx, ds, adapters.QueryOptions{Limit: 1})
		return err == nil
	})

	var hidden, keys []string
	for _, c := range Citizens {
		hidden, keys = append(hidden, c.NationalID, c.Name), append(keys, c.NationalID)
	}
	// field reads one field of each record, failing on any other.
	field := func(recs [][]byte, f string, alone bool) []string {
		var out []string
		for _, rec := range recs {
			var m map[string]string
			if err := json.Unmarshal(rec, &m); err != nil || (alone && len(m) != 1) || m[f] == "" {
				t.Fatalf("record %s: want %s (alone: %v)", rec, f, alone)
			}
			out = append(out, m[f])
		}
		slices.Sort(out)
		return out
	}
	want := func(keep func(Citizen) bool, f func(Citizen) string) []string {
		var out []string
		for _, c := range Citizens {
			if keep(c) {
				out = append(out, f(c))
			}
		}
		slices.Sort(out)
		return out
	}
	all := func(Citizen) bool { return true }
	for _, where := range [][]string{nil, {`district in ["north","south"]`}} {
		got := field(Pages(t, taxes, ds, adapters.QueryOptions{Limit: 1, Where: where}, hidden, len(Citizens)+1), "district", true)
		keep := all
		if where != nil {
			keep = func(c Citizen) bool { return c.District == "north" || c.District == "south" }
		}
		if w := want(keep, func(c Citizen) string { return c.District }); !slices.Equal(got, w) {
			t.Fatalf("tax %v paged districts %v, want %v", where, got, w)
		}
	}
	if got, w := field(Pages(t, []*adapters.Client{police}, ds, adapters.QueryOptions{Limit: 2}, keys, len(Citizens)), "name", false), want(all, func(c Citizen) string { return c.Name }); !slices.Equal(got, w) {
		t.Fatalf("police paged names %v, want %v", got, w)
	}
	if got, w := field(Pages(t, []*adapters.Client{self}, ds, adapters.QueryOptions{Limit: 2}, nil, len(Citizens)), "national_id", false), want(all, func(c Citizen) string { return c.NationalID }); !slices.Equal(got, w) {
		t.Fatalf("health paged keys %v, want %v", got, w)
	}
	mu.Lock()
	for _, r := range leaked {
		t.Errorf("the provider sent %s to a query without national_id", r)
	}
	mu.Unlock()

	valid := FirstToken(t, tax, ds, adapters.QueryOptions{})
	north := FirstToken(t, tax, ds, adapters.QueryOptions{Where: []string{"district=north"}})
	other := FirstToken(t, tax, ds2, adapters.QueryOptions{})
	policeTok := FirstToken(t, police, ds, adapters.QueryOptions{Fields: []string{"district"}})
	selfTok := FirstToken(t, self, ds, adapters.QueryOptions{Fields: []string{"district"}})
	probe := func(name string, c *adapters.Client, d string, o adapters.QueryOptions) TokenProbe {
		return TokenProbe{Name: name, Client: c, Dataset: d, Options: o}
	}
	probes := append(Probes(tax, ds, valid),
		probe("another dataset's", tax, ds, adapters.QueryOptions{PageToken: other}),
		probe("tax's, on another dataset", tax, ds2, adapters.QueryOptions{PageToken: valid}),
		probe("a filter's, without it", tax, ds, adapters.QueryOptions{PageToken: north}),
		probe("a filter's, with another value", tax, ds, adapters.QueryOptions{PageToken: north, Where: []string{"district=south"}}),
		probe("no filter's, with one", tax, ds, adapters.QueryOptions{PageToken: valid, Where: []string{"district=north"}}),
		probe("tax's replayed by police", police, ds, adapters.QueryOptions{Fields: []string{"district"}, PageToken: valid}),
		probe("police's replayed by tax", tax, ds, adapters.QueryOptions{Fields: []string{"district"}, PageToken: policeTok}),
		probe("police's, with other fields", police, ds, adapters.QueryOptions{Fields: []string{"district", "name"}, PageToken: policeTok}),
		probe("health's replayed by tax", tax, ds, adapters.QueryOptions{PageToken: selfTok}),
	)
	for _, c := range taxes[1:] {
		probes = append(probes, probe("another dataset's, through another node", c, ds, adapters.QueryOptions{PageToken: other}))
	}
	for i := range probes {
		probes[i].Options.Limit = 1
	}
	before := asked()
	refusal := RefusedAlike(t, probes)
	if n := asked() - before; n != 0 {
		t.Errorf("the provider was asked %d times with tokens the hub did not issue", n)
	}
	return PageTokenCheck{TaxCreds: taxCreds, Hidden: hidden, Refusal: refusal}
}
