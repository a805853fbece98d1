package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// bigSchema is a valid schema of about 200 KiB (500 properties, each with
// a long description), different for each version.
func bigSchema(version int) []byte { return sizedSchema(version, 500) }

// sizedSchema is a valid schema of about props × 440 bytes, different
// for each version.
func sizedSchema(version, props int) []byte {
	ps := map[string]any{}
	for j := range props {
		ps[fmt.Sprintf("p%d", j)] = map[string]any{"type": "string", "description": fmt.Sprintf("v%d %s", version, strings.Repeat("x", 400))}
	}
	b, err := json.Marshal(map[string]any{"type": "object", "properties": ps})
	if err != nil {
		panic(err)
	}
	return b
}

// registerUntilRefused registers versions of subject (compatibility
// NONE) through c until one is refused, at most max, and returns how
// many were registered and the refusal.
func registerUntilRefused(t *testing.T, c xhubv1.SchemasClient, subject string, props, from, max int) (int, error) {
	t.Helper()
	start := time.Now()
	for v := from; v < from+max && time.Since(start) < 90*time.Second; v++ {
		_, err := c.RegisterSchema(context.Background(), &xhubv1.RegisterSchemaRequest{Subject: subject, SchemaJson: sizedSchema(v, props), Compat: "NONE"})
		if err != nil {
			return v - from, err
		}
	}
	t.Fatalf("%d versions of %s registered: nothing bounds the department's ledger bytes", max, subject)
	return 0, nil
}

// checkLedgerBound checks that err is the department's ledger bound.
func checkLedgerBound(t *testing.T, err error, dept string) {
	t.Helper()
	if v := quotaViolation(t, err); v.Subject != "dept:"+dept || !strings.Contains(v.Description, "--dept-ledger-bytes") || !strings.Contains(v.Description, "nothing appended") {
		t.Fatalf("refusal: %v (violation %v)", err, v)
	}
}

// TestOneDepartmentCannotFillTheLedger: the room kept for the ledger
// (ControlReserve) must not be one department's to take. Found by the
// issue 20 attack: an officer registering new versions of a ~200 KiB
// schema (compatibility NONE) fills the ledger stream — 150 versions in a
// minute from the CLI on a 64 MiB store — after which every department's
// control-plane write fails with UNAVAILABLE "insufficient resources",
// the starvation issue 20 item 9 closed for published data, by another
// door. Now the department's entries stop at its bound (by default an
// eighth of the control reserve: 1 MiB of this store's 8 MiB) with
// RESOURCE_EXHAUSTED naming it, and every other department still writes;
// the department at its bound can still end access it gave.
func TestOneDepartmentCannotFillTheLedger(t *testing.T) {
	env := testenv.Start(t, testenv.WithStore(hub.StoreBounds{MaxBytes: 16 << 20}))
	ctx := context.Background()
	storeDataset(t, env, "health.cases", "conditional", "")
	evil := testenv.RPC(env.Officer("evil"))
	sys, _, err := env.Admin.IssueCredential(ctx, vocab.Identity{Dept: "evil", Role: vocab.RoleSystem, Name: "etl"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	tax := testenv.RPC(env.Officer("tax"))

	start := time.Now()
	registered, refused := 0, error(nil)
	for v := 1; v <= 400 && time.Since(start) < 90*time.Second; v++ {
		_, err := evil.Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "evil.big", SchemaJson: bigSchema(v), Compat: "NONE"})
		if err != nil {
			refused = err
			break
		}
		registered++
	}
	t.Logf("evil registered %d versions of ~200 KiB in %s; then: %v", registered, time.Since(start).Round(time.Millisecond), refused)
	checkLedgerBound(t, refused, "evil")
	if used := env.Node.CP.LedgerBytes("evil"); used > 1<<20 || registered > 5 {
		t.Fatalf("evil holds %d ledger bytes after %d versions, bound 1 MiB", used, registered)
	}

	// Another department's write must still be appended.
	if _, err := tax.Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "after evil's schemas"}); err != nil {
		t.Fatalf("after one department's %d schema versions, another department's share request failed: %v", registered, err)
	}
	// Evil's other commands are refused too; ending access is not.
	_, err = evil.Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "evil.other", SchemaJson: bigSchema(0)})
	checkLedgerBound(t, err, "evil")
	if _, err := evil.Credentials.RevokeCredential(ctx, &xhubv1.RevokeCredentialRequest{Serial: sys.Serial, Reason: "at the ledger bound"}); err != nil {
		t.Fatalf("an officer at the ledger bound revoking its system's credential: %v", err)
	}
}

// TestLedgerBytesSurviveRestart: the count is the log's, not the
// process's: after a restart (the views verified by replaying the log)
// the department is at the same count, and still refused.
func TestLedgerBytesSurviveRestart(t *testing.T) {
	env := testenv.Start(t, testenv.WithStore(hub.StoreBounds{DeptLedgerBytes: 256 << 10}))
	evil := testenv.RPC(env.Officer("evil")).Schemas
	n, err := registerUntilRefused(t, evil, "evil.schema", 50, 1, 100)
	checkLedgerBound(t, err, "evil")
	before := env.Node.CP.LedgerBytes("evil")
	if n < 5 || before > 256<<10 || before < 200<<10 {
		t.Fatalf("%d versions of ~22 KiB, %d ledger bytes, under a bound of 256 KiB", n, before)
	}

	env.Restart()
	if after := env.Node.CP.LedgerBytes("evil"); after != before {
		t.Fatalf("evil's ledger bytes: %d before the restart, %d after", before, after)
	}
	evil = testenv.RPC(env.Officer("evil")).Schemas
	_, err = evil.RegisterSchema(context.Background(), &xhubv1.RegisterSchemaRequest{Subject: "evil.schema", SchemaJson: sizedSchema(1000, 50), Compat: "NONE"})
	checkLedgerBound(t, err, "evil")
	if _, err := testenv.RPC(env.Officer("tax")).Schemas.RegisterSchema(context.Background(), &xhubv1.RegisterSchemaRequest{Subject: "tax.schema", SchemaJson: sizedSchema(1, 50)}); err != nil {
		t.Fatalf("another department after the restart: %v", err)
	}
}

// TestLedgerBytesAcrossNodes: two nodes on one log enforce one count:
// once node A's entries take a department to its bound, node B, which
// applied them, refuses the department too.
func TestLedgerBytesAcrossNodes(t *testing.T) {
	bounds := testenv.WithStore(hub.StoreBounds{DeptLedgerBytes: 256 << 10})
	a := testenv.Start(t, testenv.WithNATSListen(), bounds)
	dirB := t.TempDir()
	a.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB, testenv.WithNATSURL(a.NATSURL()), testenv.WithName("hub-b"), bounds)
	creds := a.Creds("evil", vocab.RoleOfficer, "officer")
	onA, onB := testenv.RPC(a.Dial(creds)).Schemas, testenv.RPC(b.Dial(creds)).Schemas

	_, err := registerUntilRefused(t, onA, "evil.schema", 50, 1, 100)
	checkLedgerBound(t, err, "evil")
	last := a.Node.CP.Applied()
	testenv.WaitFor(t, 30*time.Second, "node B applies node A's entries", func() bool { return b.Node.CP.Applied() >= last })
	if ua, ub := a.Node.CP.LedgerBytes("evil"), b.Node.CP.LedgerBytes("evil"); ua != ub {
		t.Fatalf("evil's ledger bytes: %d on A, %d on B", ua, ub)
	}
	_, err = onB.RegisterSchema(context.Background(), &xhubv1.RegisterSchemaRequest{Subject: "evil.schema", SchemaJson: sizedSchema(1000, 50), Compat: "NONE"})
	checkLedgerBound(t, err, "evil")
}
