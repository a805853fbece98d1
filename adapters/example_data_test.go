package adapters_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/hub"
)

// dialAs issues a credential for id with the operator's client and dials.
func dialAs(ctx context.Context, admin *adapters.Client, id vocab.Identity, dir string) *adapters.Client {
	// Registers the department; AlreadyExists the second time is fine.
	_, _ = admin.AddDepartment(ctx, string(id.Dept), string(id.Dept))
	_, file, err := admin.IssueCredential(ctx, id, 1)
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, id.Name+".creds")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		log.Fatal(err)
	}
	c, err := adapters.Dial(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// A provider serves its dataset with a handler; a granted consumer
// queries it and receives only the fields it was granted. (The hub and
// the grant are set up in-process here.)
func ExampleClient_Query() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "xhub-example-")
	defer os.RemoveAll(dir)
	node, err := hub.Start(ctx, hub.Config{DataDir: filepath.Join(dir, "hub"), Listen: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	admin, _ := adapters.Dial(ctx, node.AdminCreds)
	defer admin.Close()
	officer := dialAs(ctx, admin, vocab.Identity{Dept: "health", Role: vocab.RoleOfficer, Name: "officer"}, dir)
	_, _, _ = officer.RegisterSchema(ctx, "health.cases",
		[]byte(`{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},"ward":{"type":"string"}}}`), "")
	_, _ = officer.PublishDataset(ctx, adapters.DatasetSpec{ID: "health.cases", Title: "Cases", ShareType: "open", SchemaSubject: "health.cases"})
	taxOfficer := dialAs(ctx, admin, vocab.Identity{Dept: catalog.DeptID("tax"), Role: vocab.RoleOfficer, Name: "tax-officer"}, dir)
	_, _ = taxOfficer.RequestShare(ctx, "health.cases", []string{"id", "ward"}, "ward statistics", 0)

	// The provider: health's system answers queries for its dataset.
	provider := dialAs(ctx, admin, vocab.Identity{Dept: "health", Role: vocab.RoleSystem, Name: "clinic-db"}, dir)
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go provider.Provide(pctx, []string{"health.cases"}, func(ctx context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
		return [][]byte{[]byte(`{"id":1,"name":"Ana","ward":"north"}`)}, "", nil
	}, nil)
	time.Sleep(200 * time.Millisecond)

	// The consumer: tax's system queries what tax was granted.
	consumer := dialAs(ctx, admin, vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "etl"}, dir)
	r, err := consumer.Query(ctx, "health.cases", adapters.QueryOptions{Where: []string{"ward=north"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, rec := range r.Records {
		fmt.Println(string(rec))
	}
	// Output:
	// {"id":1,"ward":"north"}
}
