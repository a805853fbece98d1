package hub_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// BenchmarkCatalogListGRPC100k: a catalog of 100,000 datasets, loaded
// through the control-plane log, listed and searched over gRPC with mTLS.
// The load itself is reported as entries/s of the log.
func BenchmarkCatalogListGRPC100k(b *testing.B) {
	const n = 100_000
	env := testenv.Start(b)
	ctx := context.Background()
	officerCreds := make([]string, 0, 10)
	for d := range 10 {
		officerCreds = append(officerCreds, env.Creds(fmt.Sprintf("dept-%d", d), vocab.RoleOfficer, "officer"))
	}
	words := []string{"vaccination", "population", "tax", "housing", "transport", "school", "hospital", "water", "energy", "permit"}
	for d := range 10 {
		off := vocab.Identity{Dept: catalog.DeptID(fmt.Sprintf("dept-%d", d)), Role: vocab.RoleOfficer, Name: "officer"}
		if _, _, _, err := env.Node.CP.RegisterSchema(ctx, off, catalog.DatasetID(fmt.Sprintf("dept-%d.schema", d)), []byte(schemaV1), ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range n {
		d := i % 10
		off := vocab.Identity{Dept: catalog.DeptID(fmt.Sprintf("dept-%d", d)), Role: vocab.RoleOfficer, Name: "officer"}
		_, _, err := env.Node.CP.PublishDataset(ctx, off, catalog.Published{
			ID:            catalog.DatasetID(fmt.Sprintf("dept-%d.set-%06d", d, i)),
			Title:         fmt.Sprintf("%s records %d", words[i%10], i),
			Keywords:      []string{words[(i/10)%10], words[(i/100)%10]},
			ShareType:     []catalog.ShareType{catalog.ShareOpen, catalog.ShareConditional, catalog.ShareNone}[i%3],
			SchemaSubject: fmt.Sprintf("dept-%d.schema", d),
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d datasets through the log: %.0f entries/s", n, float64(n)/b.Elapsed().Seconds())
	cl := env.Dial(officerCreds[0])
	for _, bc := range []struct {
		name string
		req  *xhubv1.ListDatasetsRequest
	}{
		{"first-page", &xhubv1.ListDatasetsRequest{PageSize: 100}},
		{"dept", &xhubv1.ListDatasetsRequest{Dept: "dept-3", PageSize: 100}},
		{"search-1word", &xhubv1.ListDatasetsRequest{Search: "hospital", PageSize: 100}},
		{"search-2words", &xhubv1.ListDatasetsRequest{Search: "hospital water", PageSize: 100}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				r, err := testenv.RPC(cl).Catalog.ListDatasets(ctx, bc.req)
				if err != nil || len(r.Datasets) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}
