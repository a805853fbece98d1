package exchange

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/schemas"
)

// TestLedgerBytesInOneGroup: commands of one department queued into one
// group stop at its ledger bound (the appender counts what it drafted, not
// only what is applied), the operator's are not counted, and the count
// is the log's: the same after the node reopens (the replay's) and on a
// node that only applied the log.
func TestLedgerBytesInOneGroup(t *testing.T) {
	ctx := context.Background()
	log := &gatedLog{memLog: newMemLog(), entered: make(chan struct{})}
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const bound = 8 << 10
	cfg := Config{Store: st, Log: log, SweepInterval: -1, DeptLedgerBytes: bound}
	cp, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cp.Close() }()
	if err := cp.Init(ctx, HubInit{CASHA256: "ca", VerifierKey: "key"}); err != nil {
		t.Fatal(err)
	}
	admin := vocab.Identity{Dept: "hub", Role: vocab.RoleAdmin, Name: "admin"}
	health := vocab.Identity{Dept: "health", Role: vocab.RoleOfficer, Name: "o"}
	if _, _, err := cp.AddDepartment(ctx, admin, "health", "health"); err != nil {
		t.Fatal(err)
	}
	if n := cp.LedgerBytes("health") + cp.LedgerBytes("hub"); n != 0 {
		t.Fatalf("the operator's entries counted: %d bytes", n)
	}
	if _, _, _, err := cp.RegisterSchema(ctx, health, "health.d0", []byte(scriptSchema), ""); err != nil {
		t.Fatal(err)
	}
	one := cp.LedgerBytes("health")
	if one == 0 || one > bound/4 {
		t.Fatalf("one entry counted as %d bytes", one)
	}

	// Shut the gate, hold the appender in one append, queue 20 more.
	blocker := log.hold(func() error { _, _, err := cp.AddDepartment(ctx, admin, "first", "first"); return err })
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _, errs[i] = cp.RegisterSchema(ctx, health, catalog.DatasetID(fmt.Sprintf("health.d%d", i+1)), []byte(scriptSchema), "")
		}()
	}
	log.release(t, cp, len(errs))
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case vocab.KindOf(err) == vocab.KindExhausted:
			refused++
		default:
			t.Fatalf("register: %v", err)
		}
	}
	used := cp.LedgerBytes("health")
	if used > bound || used+2*one < bound || refused == 0 || ok+refused != len(errs) {
		t.Fatalf("20 entries of about %d bytes in one group under a bound of %d: %d appended, %d refused, %d bytes counted", one, bound, ok, refused, used)
	}
	if fmt.Sprint(log.groups) != "[1 "+fmt.Sprint(ok)+"]" {
		t.Errorf("appends of %v entries, want [1 %d]", log.groups, ok)
	}

	// The node reopened counts the same (from verifyViews's replay).
	cp.Close()
	if cp, err = Open(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if n := cp.LedgerBytes("health"); n != used {
		t.Fatalf("after reopening: %d bytes counted, %d before", n, used)
	}
	if _, _, _, err := cp.RegisterSchema(ctx, health, "health.late", []byte(scriptSchema), ""); vocab.KindOf(err) != vocab.KindExhausted {
		t.Fatalf("after reopening, at the bound: %v", err)
	}
	// A node that only applied the log counts the same.
	other, _ := replica(t, cfg)
	if n := other.LedgerBytes("health"); n != used {
		t.Fatalf("a node that applied the log: %d bytes counted, %d on the drafting node", n, used)
	}
}

// TestSchemaVersionsBound: a subject takes at most schemas.MaxVersions
// versions; the next is refused with RESOURCE_EXHAUSTED naming the
// subject, an identical schema is still answered with its version, and
// another subject still registers.
func TestSchemaVersionsBound(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cp, err := Open(ctx, Config{Store: st, Log: newMemLog(), SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Init(ctx, HubInit{CASHA256: "ca", VerifierKey: "key"}); err != nil {
		t.Fatal(err)
	}
	admin := vocab.Identity{Dept: "hub", Role: vocab.RoleAdmin, Name: "admin"}
	health := vocab.Identity{Dept: "health", Role: vocab.RoleOfficer, Name: "o"}
	if _, _, err := cp.AddDepartment(ctx, admin, "health", "health"); err != nil {
		t.Fatal(err)
	}
	schema := func(i int) []byte {
		return fmt.Appendf(nil, `{"type":"object","properties":{"f%d":{"type":"string"}}}`, i)
	}
	for i := 1; i <= schemas.MaxVersions; i++ {
		if _, _, _, err := cp.RegisterSchema(ctx, health, "health.cases", schema(i), "NONE"); err != nil {
			t.Fatalf("version %d: %v", i, err)
		}
	}
	_, _, _, err = cp.RegisterSchema(ctx, health, "health.cases", schema(0), "")
	var fe *vocab.Error
	if !errors.As(err, &fe) || fe.Kind != vocab.KindExhausted || len(fe.Violations) != 1 || fe.Violations[0].Field != "subject:health.cases" {
		t.Fatalf("version %d: %v", schemas.MaxVersions+1, err)
	}
	if v, existing, _, err := cp.RegisterSchema(ctx, health, "health.cases", schema(7), ""); err != nil || !existing || v.Version != 7 {
		t.Fatalf("an identical schema at the bound: version %d, existing %v, %v", v.Version, existing, err)
	}
	if _, _, _, err := cp.RegisterSchema(ctx, health, "health.other", schema(0), ""); err != nil {
		t.Fatalf("another subject: %v", err)
	}
}
