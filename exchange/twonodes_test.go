package exchange

import (
	"context"
	"testing"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// TestWritesOnAppliedEntriesOfAnotherNode: a node whose appender already
// holds a draft (it appended before) judges a command on a state that
// includes every entry it has applied, its own or another node's. Each
// step writes on one node, waits until the other has applied it, and
// there writes what depends on it: a credential for a department added on
// the first, a dataset on a schema registered there, an approval of a
// request filed there.
func TestWritesOnAppliedEntriesOfAnotherNode(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	open := func() *ControlPlane {
		st, err := store.OpenMemory()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		cp, err := Open(ctx, Config{Store: st, Log: log, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cp.Close)
		return cp
	}
	a, b := open(), open()
	if err := a.Init(ctx, HubInit{CASHA256: "ca", VerifierKey: "key"}); err != nil {
		t.Fatal(err)
	}
	admin := vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "admin"}
	health := vocab.Identity{Dept: "health", Role: vocab.RoleOfficer, Name: "o"}
	civil := vocab.Identity{Dept: "civil", Role: vocab.RoleOfficer, Name: "o"}
	// Both nodes append once, so each appender holds a draft.
	if _, _, err := a.AddDepartment(ctx, admin, "health", "Health"); err != nil {
		t.Fatal(err)
	}
	if err := b.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.AddDepartment(ctx, admin, "tax", "Tax"); err != nil {
		t.Fatal(err)
	}
	if err := a.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	seen := func(on *ControlPlane, seq uint64) {
		t.Helper()
		if err := on.WaitApplied(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}

	_, seq, err := a.AddDepartment(ctx, admin, "civil", "Civil")
	if err != nil {
		t.Fatal(err)
	}
	seen(b, seq)
	sys := vocab.Identity{Dept: "civil", Role: vocab.RoleSystem, Name: "registry"}
	if _, err := b.RecordCredential(ctx, admin, Credential{Serial: "0a01", Identity: sys.URI()}); err != nil {
		t.Errorf("credential for a department added on the other node, once applied here: %v", err)
	}

	_, _, seq, err = a.RegisterSchema(ctx, health, "health.vacc", []byte(scriptSchema), "")
	if err != nil {
		t.Fatal(err)
	}
	seen(b, seq)
	if _, _, err := b.PublishDataset(ctx, health, catalog.Dataset{ID: "health.vacc", Title: "Vaccinations", ShareType: catalog.ShareConditional, SchemaSubject: "health.vacc"}); err != nil {
		t.Errorf("dataset on a schema registered on the other node, once applied here: %v", err)
	}

	// The share flow on a dataset of its own, published on a.
	if err := a.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.RegisterSchema(ctx, health, "health.cases", []byte(scriptSchema), ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.PublishDataset(ctx, health, catalog.Dataset{ID: "health.cases", Title: "Cases", ShareType: catalog.ShareConditional, SchemaSubject: "health.cases"}); err != nil {
		t.Fatal(err)
	}
	r, _, seq, err := a.RequestShare(ctx, civil, shares.Input{Dataset: "health.cases", Purpose: "statistics", Days: 30})
	if err != nil {
		t.Fatal(err)
	}
	seen(b, seq)
	if _, _, _, err := b.Approve(ctx, health, shares.Decision{Request: r.ID}); err != nil {
		t.Fatalf("approval of a request filed on the other node, once applied here: %v", err)
	}
}
