package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// ledgerKinds reads every entry of the cluster's ledger stream, as kind
// and body.
func ledgerKinds(t *testing.T, c *testenv.NATSCluster) []struct {
	Kind string
	Body json.RawMessage
} {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	l := bus.NewLedgerLog(js, 1)
	last, err := l.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []struct {
		Kind string
		Body json.RawMessage
	}
	for seq := uint64(1); seq <= last; seq++ {
		raw, err := l.Get(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Kind string
			Body json.RawMessage
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestFirstStartRace: two nodes started at the same moment, without a
// join token, on a fresh cluster, many times over: the deployment ends
// with one CA and one hub.init, that of the node that serves; the other
// stops with the error that tells the operator to join with a token, and
// leaves nothing in its data dir (the next start, with a token, begins
// clean).
func TestFirstStartRace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	rounds := 8
	for round := range rounds {
		cluster := testenv.StartNATSCluster(t, 1)
		base := t.TempDir()
		dirs := []string{filepath.Join(base, "a"), filepath.Join(base, "b")}
		nodes := make([]*hub.Node, 2)
		errs := make([]error, 2)
		var ready, wg sync.WaitGroup
		ready.Add(1)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				ready.Wait()
				nodes[i], errs[i] = hub.Start(ctx, hub.Config{DataDir: dirs[i], Listen: "127.0.0.1:0", NATSURL: cluster.URL(), Logger: testenv.Logger()})
			}()
		}
		ready.Done()
		wg.Wait()
		var served []int
		for i, n := range nodes {
			if n != nil {
				served = append(served, i)
				defer n.Close()
			}
		}
		if len(served) != 1 {
			t.Fatalf("round %d: %d nodes serve (%v), want one (two CAs cannot both be the hub's): errors %v", round, len(served), served, errs)
		}
		w, l := served[0], 1-served[0]
		if err := errs[l]; err == nil || !strings.Contains(err.Error(), "is not the hub's") || !strings.Contains(err.Error(), "xhub node token") {
			t.Fatalf("round %d: the other node's error: %v (want the CA refusal naming xhub node token)", round, err)
		}
		if _, err := os.Stat(dirs[l]); !errors.Is(err, os.ErrNotExist) {
			ents, _ := os.ReadDir(dirs[l])
			t.Fatalf("round %d: the refused node left its data dir (%v): %v", round, err, ents)
		}
		var inits []exchange.HubInit
		for _, e := range ledgerKinds(t, cluster) {
			if e.Kind == ledger.KindHubInit {
				var b exchange.HubInit
				if err := json.Unmarshal(e.Body, &b); err != nil {
					t.Fatal(err)
				}
				inits = append(inits, b)
			}
		}
		if len(inits) != 1 || inits[0].CASHA256 != nodes[w].Authority.Fingerprint() {
			t.Fatalf("round %d: hub.init entries %+v; the serving node's CA %s", round, inits, nodes[w].Authority.Fingerprint())
		}
		nodes[w].Close()
	}
}

// cancelOn is a log handler that calls cancel at the first record with
// the attribute kind=hub.init: the moment the ledger holds this node's CA.
type cancelOn struct {
	slog.Handler
	cancel func()
}

func (h cancelOn) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "kind" && a.Value.String() == ledger.KindHubInit {
			h.cancel()
			return false
		}
		return true
	})
	return h.Handler.Handle(ctx, r)
}
func (h cancelOn) WithAttrs(as []slog.Attr) slog.Handler {
	return cancelOn{h.Handler.WithAttrs(as), h.cancel}
}
func (h cancelOn) WithGroup(g string) slog.Handler { return cancelOn{h.Handler.WithGroup(g), h.cancel} }

// TestFirstStartFailsAfterInit: a first start that fails once the ledger
// holds its hub.init (stopped by the operator or a start timeout while the
// cluster is slow, just after that entry) keeps the CA the ledger now
// pins, and the next start on the same data dir serves with it; before,
// the failed start removed pki/ and every later start, with a new CA, was
// refused as "not the hub's", for good.
func TestFirstStartFailsAfterInit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	cluster := testenv.StartNATSCluster(t, 1)
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	log := slog.New(cancelOn{testenv.Logger().Handler(), stop})
	n, err := hub.Start(sctx, hub.Config{DataDir: dir, Listen: "127.0.0.1:0", NATSURL: cluster.URL(), Logger: log})
	if err == nil {
		n.Close()
		t.Fatal("the start went on past a cancelled context")
	}
	if _, statErr := os.Stat(filepath.Join(dir, "pki", "ca.crt")); statErr != nil {
		t.Fatalf("after the failed first start (%v), the CA the ledger pins is gone: %v", err, statErr)
	}
	n, err = hub.Start(ctx, hub.Config{DataDir: dir, Listen: "127.0.0.1:0", NATSURL: cluster.URL(), Logger: testenv.Logger()})
	if err != nil {
		t.Fatalf("the next start on the same data dir: %v", err)
	}
	defer n.Close()
	if _, err := os.Stat(n.AdminCreds); err != nil {
		t.Fatal(err)
	}
	inits := 0
	for _, e := range ledgerKinds(t, cluster) {
		if e.Kind == ledger.KindHubInit {
			inits++
		}
	}
	if inits != 1 {
		t.Fatalf("%d hub.init entries", inits)
	}
}

// TestDataDirInUse: a second node on a data dir a running node serves is
// refused before it starts anything (no port bound, nothing written),
// naming the dir and the pid that holds it; once the first stops, the dir
// starts again.
func TestDataDirInUse(t *testing.T) {
	first := testenv.Start(t)
	before, err := os.ReadDir(first.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
	defer cancel()
	// The same --listen as the first: the lock is checked before the port.
	_, err = hub.Start(ctx, hub.Config{DataDir: first.Dir, Listen: first.Addr(), Logger: testenv.Logger()})
	var inUse *hub.DataDirInUseError
	if !errors.As(err, &inUse) || !errors.Is(err, hub.ErrDataDirInUse) || inUse.PID != os.Getpid() ||
		!strings.Contains(err.Error(), first.Dir) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second node on a used data dir: %v", err)
	}
	after, _ := os.ReadDir(first.Dir)
	if len(after) != len(before) {
		t.Fatalf("the refused start changed the data dir: %v → %v", before, after)
	}
	if _, err := first.Admin.Departments(ctx); err != nil {
		t.Fatalf("the first node after the refused start: %v", err)
	}
	// The pid note removed (or made a link) while the node runs: the dir
	// itself is locked, a second start is still refused.
	note := filepath.Join(first.Dir, "xhub.lock")
	if err := os.Remove(note); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(elsewhere, []byte("someone's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, note); err != nil {
		t.Fatal(err)
	}
	if _, err = hub.Start(ctx, hub.Config{DataDir: first.Dir, Listen: "127.0.0.1:0", Logger: testenv.Logger()}); !errors.Is(err, hub.ErrDataDirInUse) {
		t.Fatalf("second node on a used data dir whose xhub.lock was replaced: %v", err)
	}
	first.Restart() // Close releases the lock
	if _, err := first.Admin.Departments(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(elsewhere); string(b) != "someone's\n" {
		t.Fatalf("the pid note was written through a link: %q", b)
	}
	if fi, err := os.Lstat(note); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the restarted node's pid note: %v %v", fi, err)
	}
}
