package hub_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// doublingChain is the attack of issue 20: d_i = allOf[$ref d_(i+1),
// $ref d_(i+1)], 22 links, 1.5 KB; one 18-byte record took 4.35 s.
func doublingChain(n int) string {
	var defs []string
	for i := range n {
		defs = append(defs, fmt.Sprintf(`"d%d":{"allOf":[{"$ref":"#/$defs/d%d"},{"$ref":"#/$defs/d%d"}]}`, i, i+1, i+1))
	}
	defs = append(defs, fmt.Sprintf(`"d%d":{"type":"string"}`, n))
	return `{"type":"object","properties":{"district":{"$ref":"#/$defs/d0"}},"$defs":{` + strings.Join(defs, ",") + `}}`
}

// TestSchemaFanOutRefused: a schema whose reference fan-out multiplies is
// refused at registration, naming the bound and the subschema; nothing is
// registered.
func TestSchemaFanOutRefused(t *testing.T) {
	env := testenv.Start(t)
	owner := env.Officer("health")
	ctx := context.Background()
	_, err := testenv.RPC(owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.wards", SchemaJson: []byte(doublingChain(22))})
	if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "fan-out bound of 10000") || !strings.Contains(err.Error(), "/$defs/d10") {
		t.Fatalf("exponential schema: %v", err)
	}
	// The same shape with few links is an ordinary schema.
	if _, err := testenv.RPC(owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.wards", SchemaJson: []byte(doublingChain(6))}); err != nil {
		t.Fatalf("6 links: %v", err)
	}
}

// TestValidationBudget: a batch whose validation would pass the node's
// budget is refused whole, naming the budget; within it, it is stored.
func TestValidationBudget(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward"}, testenv.WithLimits(hub.Limits{ValidationSteps: 3000}))
	ctx := context.Background()
	// Each record enters about 4 nodes (the record, id, ward and name);
	// 1000 records pass 3000 steps.
	recs := make([][]byte, 1000)
	for i := range recs {
		recs[i] = []byte(fmt.Sprintf(`{"id":%d,"ward":"north","name":"n"}`, i))
	}
	_, err := f.provider.Publish(ctx, "health.cases", recs, "costly")
	if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "more than 3000 steps") {
		t.Fatalf("batch over the validation budget: %v", err)
	}
	if _, err := f.provider.Publish(ctx, "health.cases", recs[:100], "cheap"); err != nil {
		t.Fatalf("batch within the budget: %v", err)
	}
}

// TestDuplicateKeysRefused: a key repeated in a record or a schema is
// refused with the member's JSON pointer, at publish, in a provider's
// answer (withheld and counted), and at registration. Before, the last
// copy was validated and both were delivered byte for byte.
func TestDuplicateKeysRefused(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward"})
	ctx := context.Background()

	t.Run("publish", func(t *testing.T) {
		recs := [][]byte{[]byte(`{"id":1,"ward":"north"}`), []byte(`{"id":2,"ward":"<img src=x onerror=alert(1)>","ward":"north","age":"not-a-number","age":5}`)}
		_, err := f.provider.Publish(ctx, "health.cases", recs, "dup")
		if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "records[1]") || !strings.Contains(err.Error(), `duplicate key "ward" at /ward`) {
			t.Fatalf("publish with a repeated key: %v", err)
		}
		nested := [][]byte{[]byte(`{"id":3,"ward":"north","name":{"first":"a","first":"b"}}`)}
		if _, err := f.provider.Publish(ctx, "health.cases", nested, "dup-nested"); testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "/name/first") {
			t.Fatalf("publish with a repeated nested key: %v", err)
		}
	})

	t.Run("provider answer", func(t *testing.T) {
		f.serveWith(t, nil, func(adapters.ProviderQuery) []string {
			return []string{`{"id":1,"ward":"north"}`, `{"id":2,"ward":"<img src=x>","ward":"south"}`, `{"id":3,"id":4,"ward":"east"}`}
		})
		r, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Records) != 1 || string(r.Records[0]) != `{"id":1,"ward":"north"}` || r.Withheld != 2 {
			t.Fatalf("answer with repeated keys: records %q, withheld %d %q", r.Records, r.Withheld, r.WithheldReasons)
		}
		for i, why := range r.WithheldReasons {
			if !strings.Contains(why, fmt.Sprintf("record %d", i+1)) {
				t.Fatalf("withheld reasons: %q", r.WithheldReasons)
			}
		}
	})

	t.Run("schema", func(t *testing.T) {
		dupSchema := `{"type":"object","properties":{"id":{"type":"integer"},"id":{"type":"string"}}}`
		_, err := testenv.RPC(f.owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.dups", SchemaJson: []byte(dupSchema)})
		if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `duplicate key "id" at /properties/id`) {
			t.Fatalf("schema with a repeated key: %v", err)
		}
	})
}
