package hub_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// TestBadInputHasDetails: bad input is refused with the code that fits and
// google.rpc details naming what was wrong; nothing is appended.
func TestBadInputHasDetails(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	off := env.Officer("health")
	if _, err := testenv.RPC(off).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.cases", SchemaJson: []byte(schemaV1)}); err != nil {
		t.Fatal(err)
	}
	applied := env.Node.CP.Applied()

	_, err := testenv.RPC(env.Admin).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: "Bad Id", Name: "x"})
	br := detail[*errdetails.BadRequest](t, err, codes.InvalidArgument)
	if len(br.FieldViolations) != 1 || br.FieldViolations[0].Field != "department" {
		t.Fatalf("violations: %v", br.FieldViolations)
	}

	_, err = testenv.RPC(off).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.cases",
		SchemaJson: []byte(`{"type":"object","properties":{"id":{"type":"string"}}}`)})
	pf := detail[*errdetails.PreconditionFailure](t, err, codes.FailedPrecondition)
	var got []string
	for _, v := range pf.Violations {
		got = append(got, v.Subject+" "+v.Type)
	}
	if strings.Join(got, ",") != "/required SCHEMA_COMPATIBILITY,/properties/id SCHEMA_COMPATIBILITY" {
		t.Fatalf("violations: %v", got)
	}

	_, err = testenv.RPC(off).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: "health.cases", Title: strings.Repeat("t", 201), ShareType: "open", SchemaSubject: "health.cases"})
	br = detail[*errdetails.BadRequest](t, err, codes.InvalidArgument)
	if br.FieldViolations[0].Field != "title" {
		t.Fatalf("violations: %v", br.FieldViolations)
	}
	_, err = testenv.RPC(off).Catalog.ListDatasets(ctx, &xhubv1.ListDatasetsRequest{PageSize: 5000})
	detail[*errdetails.BadRequest](t, err, codes.InvalidArgument)
	_, err = testenv.RPC(off).Catalog.ListDatasets(ctx, &xhubv1.ListDatasetsRequest{PageToken: "%%%"})
	detail[*errdetails.BadRequest](t, err, codes.InvalidArgument)
	_, err = testenv.RPC(off).Catalog.GetDataset(ctx, &xhubv1.GetDatasetRequest{Id: "health.nothing"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("missing dataset: %v", err)
	}
	_, err = testenv.RPC(off).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.cases", SchemaJson: []byte(schemaV1), Compat: "SIDEWAYS"})
	detail[*errdetails.BadRequest](t, err, codes.InvalidArgument)

	if got := env.Node.CP.Applied(); got != applied {
		t.Fatalf("refused calls appended entries: applied %d → %d", applied, got)
	}
	sys := env.System("health", "s1")
	if _, err := testenv.RPC(sys).Exchange.Query(ctx, &xhubv1.QueryRequest{Dataset: "health.cases"}); status.Code(err) != codes.NotFound {
		t.Fatalf("query of a dataset not in the catalog: %v", err)
	}
	_, err = testenv.RPC(sys).Exchange.Query(ctx, &xhubv1.QueryRequest{Dataset: "health.cases", Filters: []*xhubv1.Filter{{Field: "id", Op: "=", ValueJson: []byte("{")}}})
	detail[*errdetails.BadRequest](t, err, codes.InvalidArgument)
}

func detail[T any](t *testing.T, err error, code codes.Code) T {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("want %s, got %v", code, err)
	}
	for _, d := range st.Details() {
		if v, ok := d.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("%v carries no %T detail", err, zero)
	return zero
}
