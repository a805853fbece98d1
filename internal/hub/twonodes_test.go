package hub_test

import (
	"context"
	"testing"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestWriteOnWhatAnotherNodeWrote: two hub nodes on one JetStream. A
// write on node A, once node B has applied it, is the ground for a write
// on B: a credential for a department added on A, a dataset on a schema
// registered on A, the approval of a request filed on A. Node B has
// appended before (its appender holds a draft), as a node of a running
// hub has.
func TestWriteOnWhatAnotherNodeWrote(t *testing.T) {
	a := testenv.Start(t, testenv.WithNATSListen(), testenv.WithName("hub-a"))
	ctx := context.Background()
	tok, _, err := a.Admin.CreateJoinToken(ctx, "hub-b", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := testenv.Start(t, testenv.WithJoin(tok), testenv.WithName("hub-b"))
	healthCreds := a.Creds("health", vocab.RoleOfficer, "officer")
	healthA := a.Dial(healthCreds)
	onB := func(creds string) *adapters.Client { return b.Dial(creds) }
	adminB := onB(a.Node.AdminCreds)
	applied := func(seq uint64) {
		t.Helper()
		if err := b.Node.CP.WaitApplied(ctx, seq); err != nil {
			t.Fatalf("node B has not applied entry %d: %v", seq, err)
		}
	}
	if err := b.Node.CP.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := adminB.AddDepartment(ctx, "tax", "Tax"); err != nil {
		t.Fatal(err)
	}

	// dept add on A, creds issue on B.
	civil, err := a.Admin.AddDepartment(ctx, "civil", "Civil affairs")
	if err != nil {
		t.Fatal(err)
	}
	applied(civil.Seq)
	if _, _, err := adminB.IssueCredential(ctx, vocab.Identity{Dept: "civil", Role: vocab.RoleSystem, Name: "registry"}, 30); err != nil {
		t.Errorf("creds issue on B for a department added on A: %v", err)
	}

	// schema register on A, catalog publish on B.
	s, _, err := healthA.RegisterSchema(ctx, "health.vacc", []byte(casesSchema), "")
	if err != nil {
		t.Fatal(err)
	}
	applied(s.Seq)
	healthB := onB(healthCreds)
	if _, err := healthB.PublishDataset(ctx, adapters.DatasetSpec{ID: "health.vacc", Title: "Vaccinations", ShareType: "conditional", SchemaSubject: "health.vacc"}); err != nil {
		t.Errorf("catalog publish on B of a schema registered on A: %v", err)
	}

	// share request on A, approval on B (on a dataset of its own,
	// published on A).
	if _, _, err := healthA.RegisterSchema(ctx, "health.cases", []byte(casesSchema), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := healthA.PublishDataset(ctx, adapters.DatasetSpec{ID: "health.cases", Title: "Cases", ShareType: "conditional", SchemaSubject: "health.cases"}); err != nil {
		t.Fatal(err)
	}
	req, err := a.Officer("civil").RequestShare(ctx, "health.cases", []string{"id", "ward"}, "statistics", 30)
	if err != nil {
		t.Fatal(err)
	}
	applied(req.Seq)
	if _, err := healthB.Approve(ctx, req.Request.ID, nil, 0, ""); err != nil {
		t.Errorf("approval on B of a request filed on A: %v", err)
	}
}
