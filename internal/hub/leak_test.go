package hub_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// TestWithheldTellsOnlyGrantedFields is the attack from the outside test:
// tax holds a grant on id and ward only; the provider answers with whole
// records, some with a hidden field (age) out of the schema's bounds. What
// tax sees — records, withheld count, reasons — must be the same whatever
// the hidden values are, so it can be computed from the granted fields
// alone. The provider's officer sees the details.
func TestWithheldTellsOnlyGrantedFields(t *testing.T) {
	f := newGrantFixture(t, []string{"id", "ward"})
	ctx := context.Background()
	valid := []string{
		`{"id":1,"name":"Ana","ward":"north","age":34}`,
		`{"id":2,"name":"Bo","ward":7,"age":20}`, // granted field invalid
		`{"id":3,"name":"Cy","ward":"north","age":71}`,
	}
	hostile := []string{
		`{"id":1,"name":"Ana","ward":"north","age":-4242}`,
		`{"id":2,"name":"Bo","ward":7,"age":-4242}`,
		`{"id":3,"name":"Cy","ward":"north","age":"secret-value"}`,
	}
	answer := valid
	f.serveWith(t, nil, func(adapters.ProviderQuery) []string { return answer })

	type seen struct {
		Records  []string
		Withheld int
		Reasons  []string
	}
	look := func(o adapters.QueryOptions) seen {
		t.Helper()
		r, err := f.consumer.Query(ctx, "health.cases", o)
		if err != nil {
			t.Fatal(err)
		}
		s := seen{Withheld: r.Withheld, Reasons: r.WithheldReasons}
		for _, rec := range r.Records {
			s.Records = append(s.Records, string(rec))
		}
		return s
	}
	for _, o := range []adapters.QueryOptions{{}, {Where: []string{"id=1"}}, {Where: []string{"id=2"}}, {Fields: []string{"ward"}, Where: []string{"id=3"}}} {
		answer = valid
		want := look(o)
		answer = hostile
		got := look(o)
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("query %+v: hidden values change what the consumer sees (-valid +hostile):\n%s", o, d)
		}
		for _, r := range got.Reasons {
			if strings.Contains(r, "age") || strings.Contains(r, "4242") || strings.Contains(r, "4,242") || strings.Contains(r, "secret") {
				t.Fatalf("reason names a hidden field or value: %q", r)
			}
		}
	}
	all := look(adapters.QueryOptions{})
	if all.Withheld != 1 || len(all.Reasons) != 1 || !strings.Contains(all.Reasons[0], "/ward") || len(all.Records) != 2 {
		t.Fatalf("the record with a bad granted field: %+v", all)
	}

	// Bytes that are not a record: the consumer learns that, not where the
	// parser stopped (which would measure hidden values).
	answer = []string{`{"id":1,"ward":"north","age":12345`, `{"id":4,"ward":"south","name":"` + strings.Repeat("x", 100) + `"}`}
	r := look(adapters.QueryOptions{})
	if r.Withheld != 1 || len(r.Reasons) != 1 || r.Reasons[0] != "record 0: the provider's answer is not a JSON object" {
		t.Fatalf("malformed answer: %+v", r)
	}
	if len(r.Records) != 1 || r.Records[0] != `{"id":4,"ward":"south"}` {
		t.Fatalf("malformed answer records: %q", r.Records)
	}

	// The audit: the owner's officer sees the full reasons, tax's officer
	// only what tax was told. Audit entries are stored within a few
	// milliseconds of the access: wait for the last query's.
	eventually(t, "audit of the malformed answer stored", func() bool {
		a, err := testenv.RPC(f.owner).Audit.ListAudit(ctx, &xhubv1.ListAuditRequest{Dataset: "health.cases"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range a.Entries {
			if e.Withheld > 0 && len(e.ProviderReasons) > 0 && strings.Contains(e.WithheldReasons[0], "not a JSON object") {
				return true
			}
		}
		return false
	})
	for _, tc := range []struct {
		c    *adapters.Client
		full bool
	}{{f.owner, true}, {f.grantee, false}} {
		a, err := testenv.RPC(tc.c).Audit.ListAudit(ctx, &xhubv1.ListAuditRequest{Dataset: "health.cases"})
		if err != nil {
			t.Fatal(err)
		}
		var provider []string
		for _, e := range a.Entries {
			provider = append(provider, e.ProviderReasons...)
			for _, why := range e.WithheldReasons {
				if strings.Contains(why, "age") {
					t.Fatalf("%s: withheld reason in the audit names a hidden field: %q", tc.c.Identity(), why)
				}
			}
		}
		if got := len(provider) > 0; got != tc.full {
			t.Fatalf("%s sees provider reasons %q, want any: %v", tc.c.Identity(), provider, tc.full)
		}
		if tc.full && !strings.Contains(strings.Join(provider, " "), "unexpected end") && !strings.Contains(strings.Join(provider, " "), "not JSON") {
			t.Fatalf("the owner's audit lacks the parser's detail: %q", provider)
		}
	}
}
