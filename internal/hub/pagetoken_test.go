package hub_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/dataplane"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// keyedHandler is a provider as an integrator writes it with the SDK: it
// pages on its key (which the grant may not include) and hands the key
// back as its page token, in clear; it sends the fields asked for.
func keyedHandler() adapters.Handler {
	sorted := slices.Clone(testenv.Citizens)
	slices.SortFunc(sorted, func(a, b testenv.Citizen) int { return strings.Compare(a.NationalID, b.NationalID) })
	return func(_ context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
		var out [][]byte
		last := ""
		for _, c := range sorted {
			if q.PageToken != "" && c.NationalID <= q.PageToken {
				continue
			}
			rec := map[string]any{"national_id": c.NationalID, "district": c.District, "name": c.Name}
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
			if len(q.Fields) > 0 {
				for k := range rec {
					if !slices.Contains(q.Fields, k) {
						delete(rec, k)
					}
				}
			}
			b, _ := json.Marshal(rec)
			out, last = append(out, b), c.NationalID
		}
		return out, "", nil
	}
}

// TestPageTokensAreSealed: an SDK provider that pages on a key tax is not
// granted (national_id; tax holds district alone) and returns it as its
// token: tax's tokens never show it, paging through either of two nodes
// (a token from one continues on the other) returns every record once,
// and every token the hub did not issue for the query gets one
// identical refusal, the provider not asked (testenv.CheckPageTokens);
// over HTTP and JSON, as the attack was made, too.
func TestPageTokensAreSealed(t *testing.T) {
	if adapters.MaxPageToken != dataplane.MaxProviderToken {
		t.Fatalf("the SDK bounds a handler's page token at %d bytes, the hub at %d", adapters.MaxPageToken, dataplane.MaxProviderToken)
	}
	a := testenv.Start(t, testenv.WithNATSListen())
	dirB := t.TempDir()
	a.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB, testenv.WithNATSURL(a.NATSURL()))
	chk := testenv.CheckPageTokens(t, []*testenv.Env{a, b}, "people", keyedHandler())

	web := a.HTTP(chk.TaxCreds, false)
	st, body, _ := post(t, web, a.URL(), "Exchange/Query", `{"dataset":"health.people","limit":1}`)
	if st != 200 || testenv.HiddenInToken(body, chk.Hidden) != "" {
		t.Fatalf("HTTP query: %d %s", st, body)
	}
	st, body, _ = post(t, web, a.URL(), "Exchange/Query", `{"dataset":"health.people","limit":1,"pageToken":"3"}`)
	if e := wantError(t, st, body, 400, "invalid_argument"); chk.Refusal != nil && e.Message != chk.Refusal.Message() {
		t.Fatalf("HTTP refusal %q, gRPC %q", e.Message, chk.Refusal.Message())
	}
}
