package hub_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// TestBadBytesAndSizes: bytes that are not UTF-8, a schema that refers
// only to itself, and a batch larger than one stored message can hold are
// refused with INVALID_ARGUMENT naming what is wrong; nothing is stored.
func TestBadBytesAndSizes(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward", "name"})
	ctx := context.Background()

	// A record with invalid UTF-8 is refused, not stored as U+FFFD.
	recs := [][]byte{[]byte(`{"id":1,"ward":"north"}`), []byte("{\"id\":2,\"ward\":\"north\",\"name\":\"Bo\xff\"}")}
	_, err := f.provider.Publish(ctx, "health.cases", recs, "utf8")
	if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "records[1]") || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("record with invalid UTF-8: %v", err)
	}

	for _, tc := range []struct {
		name, schema, want string
	}{
		{"invalid UTF-8", "{\"type\":\"object\",\"description\":\"\xc3\x28\"}", "not valid UTF-8"},
		{"self reference", `{"type":"object","properties":{"x":{"$ref":"#/properties/x"}}}`, "$ref cycle"},
	} {
		_, err := testenv.RPC(f.owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.bad", SchemaJson: []byte(tc.schema)})
		if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("schema with %s: %v", tc.name, err)
		}
	}

	// 5 records of 1 MiB: over the batch bound, said as such, not a
	// retryable fault.
	big := make([][]byte, 5)
	for i := range big {
		big[i] = []byte(`{"id":1,"ward":"north","name":"` + strings.Repeat("x", 1<<20-64) + `"}`)
	}
	_, err = f.provider.Publish(ctx, "health.cases", big, "big")
	if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 4194304 per batch") {
		t.Fatalf("oversized batch: %v", err)
	}
	// Nothing of either refused batch was stored: a subscriber from the
	// beginning sees only what comes after.
	sub, err := f.consumer.Subscribe(ctx, "health.cases", "check", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := f.provider.Publish(ctx, "health.cases", [][]byte{[]byte(`{"id":7,"ward":"süd","name":"Zoë 张"}`)}, "ok"); err != nil {
		t.Fatal(err)
	}
	d, err := sub.Recv()
	if err != nil || !bytes.Equal(d.Record, []byte(`{"id":7,"ward":"süd","name":"Zoë 张"}`)) {
		t.Fatalf("first delivery: %+v %v", d, err)
	}
}

// TestProviderAnswerTooLarge: an answer larger than one NATS message is
// refused with the reason, at once, not left to time out.
func TestProviderAnswerTooLarge(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward", "name"})
	big := `{"id":1,"ward":"north","name":"` + strings.Repeat("x", 1<<20-64) + `"}`
	f.serveWith(t, nil, func(q adapters.ProviderQuery) []string {
		out := make([]string, q.Limit)
		for i := range out {
			out[i] = big
		}
		return out
	})
	_, err := f.consumer.Query(context.Background(), "health.cases", adapters.QueryOptions{Limit: 12})
	if testenv.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "fewer records per page") {
		t.Fatalf("a 12 MiB answer: %v", err)
	}
	r, err := f.consumer.Query(context.Background(), "health.cases", adapters.QueryOptions{Limit: 2})
	if err != nil || len(r.Records) != 2 {
		t.Fatalf("a 2 MiB answer: %v", err)
	}
}
