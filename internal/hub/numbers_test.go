package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/dataplane"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// TestHostileNumbers: number texts such as 1e999999 cost the hub nothing.
// math/big made a 3.3-million-bit integer of each (about 29 ms), once in
// the filter's check and again for every record, and the schema validator
// did the same for a record's number. Now a filter with one is refused
// before any provider is asked, naming the filter and the bound; a
// provider's record with one is withheld, a published one refused; and
// numbers within the bound still compare exactly.
func TestHostileNumbers(t *testing.T) {
	f := newDataFixture(t)
	ctx := context.Background()
	var calls atomic.Int64
	f.serveWith(t, nil, func(adapters.ProviderQuery) []string {
		calls.Add(1)
		return append([]string{`{"id":5,"ward":"west","age":1e999999}`}, casesRecords...)
	})

	// A filter value beyond the bound: INVALID_ARGUMENT naming the filter
	// and the bound, and the provider is never asked.
	in := `[` + strings.TrimSuffix(strings.Repeat("1e999999,", 16), ",") + `]`
	before := calls.Load()
	for _, flt := range []*xhubv1.Filter{
		{Field: "age", Op: "in", ValueJson: []byte(in)},
		{Field: "age", Op: ">=", ValueJson: []byte("-2.5e-999999")},
		{Field: "id", Op: "=", ValueJson: []byte(strings.Repeat("7", 101))},
	} {
		_, err := testenv.RPC(f.consumer).Exchange.Query(ctx, &xhubv1.QueryRequest{Dataset: "health.cases", Filters: []*xhubv1.Filter{flt}})
		br := detail[*errdetails.BadRequest](t, err, codes.InvalidArgument)
		v := br.FieldViolations[0]
		want := "beyond the bound of ±400"
		if flt.Field == "id" {
			want = "has 101 digits, more than the bound of 100"
		}
		if v.Field != "filters.value" || !strings.Contains(v.Description, "filter "+flt.Field+" "+flt.Op+": number ") || !strings.Contains(v.Description, want) {
			t.Errorf("filter %s %s %.20s: %v", flt.Field, flt.Op, flt.ValueJson, err)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Fatalf("the provider was asked %d times for filters the hub refuses", n)
	}

	// A provider's record holding 1e999999 is withheld, not expanded
	// (it would pass "type": "integer" and "age > 5").
	res, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{Where: []string{"age > 5"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, res.Records); got != "1,3,9007199254740993" || res.Withheld != 2 {
		t.Fatalf("age > 5: records %s, withheld %d %v; want 1,3,9007199254740993 and 2 (the hostile one, the invalid one)", got, res.Withheld, res.WithheldReasons)
	}

	// Within the bound numbers compare exactly: 34.0 is 34, and the
	// integer beyond float64 is told from its neighbour.
	for where, want := range map[string]string{
		"age = 34.0":                  "1",
		"age = 3.4e1":                 "1",
		"id > 9007199254740992":       "9007199254740993",
		"id <= 9007199254740992":      "1,3",
		"age in [7.1e1, 2e1, 100e-2]": "3,9007199254740993",
	} {
		res, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{Where: []string{where}})
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if got := ids(t, res.Records); got != want {
			t.Errorf("%s: records %s, want %s", where, got, want)
		}
	}

	// A published record with one is refused, naming the record and the
	// bound; nothing is stored.
	_, err = f.provider.Publish(ctx, "health.cases", [][]byte{[]byte(`{"id":1,"ward":"n"}`), []byte(`{"id":2,"ward":"n","age":1e999999}`)}, "")
	br := detail[*errdetails.BadRequest](t, err, codes.InvalidArgument)
	if v := br.FieldViolations[0]; len(br.FieldViolations) != 1 || v.Field != "records[1]" || !strings.Contains(v.Description, "number 1e999999 has the exponent 999999, beyond the bound of ±400") {
		t.Fatalf("publish of 1e999999: %v", br.FieldViolations)
	}

	// A schema with one is refused, naming where.
	_, err = testenv.RPC(f.owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.doses", SchemaJson: []byte(`{"type":"object","properties":{"d":{"multipleOf":1e-999999}}}`)})
	if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "/properties/d/multipleOf: number 1e-999999") {
		t.Fatalf("schema with 1e-999999: %v", err)
	}
}

// ids lists the records' ids as written, in order.
func ids(t *testing.T, recs [][]byte) string {
	t.Helper()
	var out []string
	for _, r := range recs {
		i := strings.Index(string(r), `"id":`)
		if i < 0 {
			t.Fatalf("record without id: %s", r)
		}
		rest := string(r[i+5:])
		out = append(out, rest[:strings.IndexAny(rest, ",}")])
	}
	return strings.Join(out, ",")
}

// TestCallerGoneStopsWork: work a caller has caused stops when it leaves.
// A query whose caller has left is not handed to a provider (the node's
// route counter does not move); a publish whose caller has left stops
// validating its batch (it does not get to the last record, invalid, to
// report it); a provider's handler still working when its stream to the
// hub ends sees its context end, so Serve returns rather than wait on it.
func TestCallerGoneStopsWork(t *testing.T) {
	f := newDataFixture(t, testenv.WithMetrics())
	block := make(chan struct{})
	f.serve(t, block)
	testenv.WaitFor(t, 20*time.Second, "the provider stream", func() bool {
		return strings.Contains(metricsText(t, f.env), "xhub_open_provider_streams 1")
	})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	consumer := vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "etl"}
	routes := grepLines(metricsText(t, f.env), "xhub_query_routes_total")
	_, err := f.env.Node.DP.Query(gone, consumer, dataplane.QueryInput{Dataset: "health.cases", Filters: []vocab.Filter{{Field: "age", Op: vocab.OpGt, Value: json.Number("5")}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("query of a caller that has left: %v, want context.Canceled", err)
	}
	if after := grepLines(metricsText(t, f.env), "xhub_query_routes_total"); after != routes {
		t.Fatalf("a query whose caller had left was sent to a provider: routes %q → %q", routes, after)
	}

	batch := make([][]byte, 200)
	for i := range batch {
		batch[i] = []byte(fmt.Sprintf(`{"id":%d,"ward":"north","age":%d}`, i, i))
	}
	batch[len(batch)-1] = []byte(`{"id":-1,"ward":"north","age":-1}`) // fails the schema
	provider := vocab.Identity{Dept: "health", Role: vocab.RoleSystem, Name: "clinic-db"}
	_, err = f.env.Node.DP.Publish(gone, provider, "health.cases", batch, "")
	if vocab.KindOf(err) == vocab.KindInvalid || !errors.Is(err, context.Canceled) {
		t.Fatalf("publish of a caller that has left: %v, want context.Canceled before the last record is judged", err)
	}
}

// TestProviderHandlerEndsWithStream: the SDK's provider handlers run under
// a context that ends with the stream to the hub, so a handler scanning a
// large source stops when the hub goes away, and Serve returns.
func TestProviderHandlerEndsWithStream(t *testing.T) {
	f := newDataFixture(t)
	started := make(chan struct{}, 1)
	served := make(chan error, 1)
	go func() {
		served <- f.provider.Serve(context.Background(), []string{"health.cases"}, func(ctx context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
			started <- struct{}{}
			<-ctx.Done() // a long scan that checks its context
			return nil, "", ctx.Err()
		})
	}()
	// Ask until the provider stream is open; the query then waits on
	// the handler, and ends when the hub stops.
	qctx, qcancel := context.WithCancel(context.Background())
	defer qcancel()
	go func() {
		for qctx.Err() == nil {
			_, err := f.consumer.Query(qctx, "health.cases", adapters.QueryOptions{})
			if testenv.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "no provider") {
				return
			}
			time.Sleep(20 * time.Millisecond) // the provider stream is not open yet
		}
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the query never reached the provider")
	}
	f.env.Stop()
	select {
	case <-served:
	case <-time.After(60 * time.Second):
		t.Fatal("Serve still waits for a handler 60 s after the stream to the hub ended: the handler's context never ended")
	}
}
