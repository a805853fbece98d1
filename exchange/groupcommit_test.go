package exchange

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// gatedLog holds appends while its gate is shut and counts them, so a test
// can make commands queue up into one group.
type gatedLog struct {
	*memLog
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	entered chan struct{} // receives when an append waits at the gate
	groups  []int         // entries per append
}

func (g *gatedLog) Append(ctx context.Context, raws [][]byte, after uint64) (uint64, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.entered <- struct{}{}
		<-gate
	}
	seq, err := g.memLog.Append(ctx, raws, after)
	if err == nil {
		g.mu.Lock()
		g.groups = append(g.groups, len(raws))
		g.mu.Unlock()
	}
	return seq, err
}

// hold shuts the gate (forgetting the appends so far) and runs blocker
// until its append waits there: the commands after it queue. It returns
// blocker's outcome, once the gate opens.
func (g *gatedLog) hold(blocker func() error) <-chan error {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.groups = nil
	g.mu.Unlock()
	out := make(chan error, 1)
	go func() { out <- blocker() }()
	<-g.entered
	return out
}

// release opens the gate once n commands are queued on cp.
func (g *gatedLog) release(t *testing.T, cp *ControlPlane, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(cp.ops) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d commands queued", len(cp.ops), n)
		}
		time.Sleep(time.Millisecond)
	}
	g.mu.Lock()
	close(g.gate)
	g.gate = nil
	g.mu.Unlock()
}

// TestGroupCommit: commands that queue behind an append go to the log as
// one group, and each is judged as if the ones before it in the group were
// already applied: of two identical departments one is added; a retried
// request id is applied once; of an approval and a rejection of one
// request one lands; a department's pending requests stay within its
// bound; and a second node applying the log holds the same views.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	log := &gatedLog{memLog: newMemLog(), entered: make(chan struct{})}
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := Config{Store: st, Log: log, SweepInterval: -1, MaxPendingRequests: 3}
	cp, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Init(ctx, HubInit{CASHA256: "ca", VerifierKey: "key"}); err != nil {
		t.Fatal(err)
	}
	admin := vocab.Identity{Dept: "hub", Role: vocab.RoleAdmin, Name: "admin"}
	health := vocab.Identity{Dept: "health", Role: vocab.RoleOfficer, Name: "o"}
	tax := vocab.Identity{Dept: "tax", Role: vocab.RoleOfficer, Name: "o"}
	police := vocab.Identity{Dept: "police", Role: vocab.RoleOfficer, Name: "o"}
	for _, d := range []catalog.DeptID{"health", "tax", "police"} {
		if _, _, err := cp.AddDepartment(ctx, admin, d, string(d)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		id := catalog.DatasetID(fmt.Sprintf("health.d%d", i))
		if _, _, _, err := cp.RegisterSchema(ctx, health, id, []byte(scriptSchema), ""); err != nil {
			t.Fatal(err)
		}
		if _, _, err := cp.PublishDataset(ctx, health, catalog.Published{ID: id, Title: string(id), ShareType: catalog.ShareConditional, SchemaSubject: string(id)}); err != nil {
			t.Fatal(err)
		}
	}
	open, _, _, err := cp.RequestShare(ctx, tax, shares.Input{Dataset: "health.d0", Purpose: "statistics", Days: 30})
	if err != nil {
		t.Fatal(err)
	}

	// Shut the gate, and hold the appender in one append.
	blocker := log.hold(func() error { _, _, err := cp.AddDepartment(ctx, admin, "first", "first"); return err })

	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string][]error{}
	seqs := map[uint64]bool{}
	run := func(name string, fn func() (uint64, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, err := fn()
			mu.Lock()
			defer mu.Unlock()
			outcomes[name] = append(outcomes[name], err)
			if name == "rid" && err == nil {
				seqs[seq] = true
			}
		}()
	}
	queued := 0
	for range 4 {
		run("dup", func() (uint64, error) { _, s, err := cp.AddDepartment(ctx, admin, "dup", "dup"); return s, err })
		run("rid", func() (uint64, error) {
			_, s, err := cp.AddDepartment(WithRequestID(ctx, "r-1"), admin, "rid", "rid")
			return s, err
		})
		queued += 2
	}
	run("decide", func() (uint64, error) {
		_, _, s, err := cp.Approve(ctx, health, shares.Decision{Request: open.ID})
		return s, err
	})
	run("decide", func() (uint64, error) {
		_, s, err := cp.Reject(ctx, health, shares.Decision{Request: open.ID, Reason: "no"})
		return s, err
	})
	queued += 2
	for i := 1; i <= 6; i++ {
		run("tax", func() (uint64, error) {
			_, _, s, err := cp.RequestShare(ctx, tax, shares.Input{Dataset: catalog.DatasetID(fmt.Sprintf("health.d%d", i)), Purpose: "statistics", Days: 30})
			return s, err
		})
		queued++
	}
	for range 2 {
		run("police", func() (uint64, error) {
			_, _, s, err := cp.RequestShare(ctx, police, shares.Input{Dataset: "health.d1", Purpose: "statistics", Days: 30})
			return s, err
		})
		queued++
	}
	log.release(t, cp, queued)
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	count := func(name string, pred func(error) bool) int {
		n := 0
		for _, err := range outcomes[name] {
			if pred(err) {
				n++
			}
		}
		return n
	}
	ok := func(err error) bool { return err == nil }
	kind := func(k vocab.Kind) func(error) bool { return func(err error) bool { return vocab.KindOf(err) == k } }
	if n, m := count("dup", ok), count("dup", kind(vocab.KindExists)); n != 1 || m != 3 {
		t.Errorf("same department four times in one group: %d added, %d refused as existing (want 1, 3): %v", n, m, outcomes["dup"])
	}
	if n := count("rid", ok); n != 4 || len(seqs) != 1 {
		t.Errorf("one request id four times: %d answered, entries %v (want 4 answers, one entry): %v", n, seqs, outcomes["rid"])
	}
	if n, m := count("decide", ok), count("decide", kind(vocab.KindPrecondition)); n != 1 || m != 1 {
		t.Errorf("approve and reject in one group: %d landed, %d refused (want 1, 1): %v", n, m, outcomes["decide"])
	}
	// tax has one request pending and a bound of 3: two more fit.
	if n, m := count("tax", ok), count("tax", kind(vocab.KindExhausted)); n != 2 || m != 4 {
		t.Errorf("six requests against a bound with room for two: %d filed, %d refused (want 2, 4): %v", n, m, outcomes["tax"])
	}
	if n, m := count("police", ok), count("police", kind(vocab.KindPrecondition)); n != 1 || m != 1 {
		t.Errorf("the same request twice in one group: %d filed, %d refused as pending (want 1, 1): %v", n, m, outcomes["police"])
	}
	// first, then one group: dup, rid, one decision, two tax, one police.
	if want := []int{1, 6}; fmt.Sprint(log.groups) != fmt.Sprint(want) {
		t.Errorf("appends of %v entries, want %v", log.groups, want)
	}

	// A node that applies the log (with no draft) holds the same views.
	_, st2 := replica(t, cfg)
	if d, err := st.FirstDifference(st2); err != nil || d.Differ {
		t.Fatalf("views differ between the drafting node and one that only applied: %+v %v", d, err)
	}
}
