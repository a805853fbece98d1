package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

var rewriteLedger = flag.Bool("rewrite-ledger", false, "rewrite testdata/ledger/every-kind.jsonl from the entries the code makes now")

// everyKind is a control plane whose log holds every entry kind, made by
// the commands a hub runs (several with client request ids), on a clock
// the builder moves: what the views, the bodies and the summaries are
// tested on.
type everyKind struct {
	cp  *ControlPlane
	st  *store.Store
	log *memLog
	cfg Config
}

func newEveryKind(t *testing.T) *everyKind {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := newMemLog()
	cfg := Config{Store: st, Log: log, Now: clock, SweepInterval: -1}
	cp, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Close)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	rid := func(id string) context.Context { return WithRequestID(ctx, id) }
	admin := vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "admin"}
	health := vocab.Identity{Dept: "health", Role: vocab.RoleOfficer, Name: "o"}
	tax := vocab.Identity{Dept: "tax", Role: vocab.RoleOfficer, Name: "o"}

	must(cp.Init(ctx, HubInit{CASHA256: "ca", VerifierKey: "key"}))
	for _, d := range []catalog.DeptID{"health", "tax", "police"} {
		_, _, err := cp.AddDepartment(rid("dept-"+string(d)), admin, d, "Department of "+string(d))
		must(err)
	}
	_, _, err = cp.SetWebhook(rid("hook"), health, "health", "https://health.example/hook")
	must(err)
	sys := vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "etl"}
	_, err = cp.RecordCredential(rid("cred"), admin, Credential{Serial: "0A01", Identity: sys.URI(), NotAfter: clock().AddDate(0, 0, 30)})
	must(err)
	_, _, err = cp.RevokeCredential(rid("cred-revoke"), admin, "0A01", "key lost")
	must(err)
	for _, ds := range []catalog.DatasetID{"health.cases", "health.open"} {
		_, _, _, err = cp.RegisterSchema(rid("schema-"+string(ds)), health, ds, []byte(scriptSchema), "")
		must(err)
	}
	_, _, _, err = cp.RegisterSchema(rid("compat"), health, "health.cases", []byte(scriptSchema), "FULL")
	must(err)
	_, _, err = cp.PublishDataset(rid("pub"), health, catalog.Published{ID: "health.cases", Title: "Cases", ShareType: catalog.ShareConditional, SchemaSubject: "health.cases"})
	must(err)
	_, _, err = cp.PublishDataset(ctx, health, catalog.Published{ID: "health.open", Title: "Open data", ShareType: catalog.ShareOpen, SchemaSubject: "health.open"})
	must(err)
	title := "Notified cases"
	_, _, _, _, err = cp.UpdateDataset(rid("update"), health, catalog.Update{ID: "health.cases", Title: &title}, "", 0)
	must(err)

	// Requests: one approved (then revoked), one rejected, one
	// withdrawn, one granted at once (then expired).
	r1, _, _, err := cp.RequestShare(rid("req-1"), tax, shares.Input{Dataset: "health.cases", Fields: []string{"id", "ward"}, Purpose: "statistics", Days: 30})
	must(err)
	_, g1, _, err := cp.Approve(rid("approve"), health, shares.Decision{Request: r1.ID})
	must(err)
	_, _, err = cp.OpenDispute(rid("dispute"), tax, shares.DisputeInput{Dataset: "health.cases", Reason: "ward of record 7 is wrong", RecordKey: "7", Field: "ward"})
	must(err)
	_, _, err = cp.ResolveDispute(rid("resolve"), health, shares.DisputeIDAt(cp.Applied()), shares.DisputeCorrected, "ward corrected")
	must(err)
	_, _, err = cp.RevokeGrant(rid("revoke"), health, g1.ID, "purpose met")
	must(err)
	police := vocab.Identity{Dept: "police", Role: vocab.RoleOfficer, Name: "o"}
	r2, _, _, err := cp.RequestShare(ctx, police, shares.Input{Dataset: "health.cases", Purpose: "investigation"})
	must(err)
	_, _, err = cp.Reject(rid("reject"), health, shares.Decision{Request: r2.ID, Reason: "no legal basis"})
	must(err)
	r3, _, _, err := cp.RequestShare(ctx, police, shares.Input{Dataset: "health.cases", Fields: []string{"age"}, Purpose: "planning", Days: 10})
	must(err)
	_, _, err = cp.Withdraw(rid("withdraw"), police, r3.ID)
	must(err)
	_, g2, _, err := cp.RequestShare(rid("req-open"), tax, shares.Input{Dataset: "health.open", Purpose: "statistics", Days: 1})
	must(err)
	if g2 == nil {
		t.Fatal("an open dataset's request was not granted at once")
	}
	advance(48 * time.Hour)
	_, err = cp.expireGrant(ctx, g2.ID)
	must(err)
	_, _, err = cp.RetireDataset(rid("retire"), health, "health.open", "replaced")
	must(err)

	tok, secret, _, err := cp.CreateJoinToken(rid("token"), admin, "hub-b", 0)
	must(err)
	claim := vocab.JoinClaim{TokenID: tok.ID, Name: "hub-b", Key: bytes.Repeat([]byte{7}, vocab.JoinKeyLen)}
	_, err = cp.Join(ctx, claim, vocab.JoinToken{ID: tok.ID, Secret: secret}.Prove(claim))
	must(err)
	must(cp.CatchUp(ctx))

	var kinds []string
	for _, raw := range log.entries {
		e, err := ledger.Parse(raw)
		must(err)
		if !slices.Contains(kinds, e.Kind) {
			kinds = append(kinds, e.Kind)
		}
	}
	for k := range appliers {
		if !slices.Contains(kinds, k) {
			t.Errorf("the every-kind ledger has no %s entry: add a command that makes one", k)
		}
	}
	return &everyKind{cp: cp, st: st, log: log, cfg: cfg}
}

// fixture is one of the every-kind ledgers under testdata/ledger: v1 is
// what the code made before bodies stopped carrying what the apply fills
// in (kept as it was: such entries are in ledgers for good).
func fixture(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ledger", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(b), []byte("\n"))
}

// TestEveryKindLedger: the entries the commands make now are those of
// testdata/ledger/every-kind.jsonl, body for body (a body is a contract:
// a change shows here, and the file is rewritten with -rewrite-ledger).
// Only a join token's verifier, from a random secret, differs.
func TestEveryKindLedger(t *testing.T) {
	ek := newEveryKind(t)
	path := filepath.Join("testdata", "ledger", "every-kind.jsonl")
	if *rewriteLedger {
		if err := os.WriteFile(path, append(bytes.Join(ek.log.entries, []byte("\n")), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := fixture(t, "every-kind.jsonl")
	if len(want) != len(ek.log.entries) {
		t.Fatalf("%d entries made, %d in %s", len(ek.log.entries), len(want), path)
	}
	for i, raw := range ek.log.entries {
		got, err := ledger.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		w, err := ledger.Parse(want[i])
		if err != nil {
			t.Fatal(err)
		}
		gb, wb := got.Body, w.Body
		if got.Kind == ledger.KindNodeToken {
			gb, wb = withoutVerifier(t, gb), withoutVerifier(t, wb)
		}
		if got.Kind != w.Kind || got.Subject != w.Subject || got.Actor != w.Actor || !got.Time.Equal(w.Time) || got.Request != w.Request || !bytes.Equal(gb, wb) {
			t.Errorf("entry %d:\n got %s %s %s %s\n want %s %s %s %s\n(rewrite with -rewrite-ledger after a deliberate change)", got.Seq, got.Kind, got.Subject, got.Request, gb, w.Kind, w.Subject, w.Request, wb)
		}
	}
}

// TestBodiesHoldNoApplyFields: the bodies the commands make now hold what
// each command decided, none of what the apply fills in: no zero time, no
// entry sequence, no empty text.
func TestBodiesHoldNoApplyFields(t *testing.T) {
	ek := newEveryKind(t)
	for _, raw := range ek.log.entries {
		e, err := ledger.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(e.Body, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range m {
			switch {
			case k == "seq":
				t.Errorf("%s body holds seq (%v): the entry's own sequence is the apply's to record", e.Kind, v)
			case v == "" || v == "0001-01-01T00:00:00Z":
				t.Errorf("%s body holds %s=%q, a value no command decided", e.Kind, k, v)
			}
		}
	}
}

func withoutVerifier(t *testing.T, body []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "verifier")
	b, _ := json.Marshal(m)
	return b
}
