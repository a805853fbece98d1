package hub_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

const schemaV1 = `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}`

// entries reads the whole ledger through the API.
func entries(t *testing.T, c *adapters.Client, minSeq uint64) []*xhubv1.Entry {
	t.Helper()
	var all []*xhubv1.Entry
	var since uint64
	for {
		r, err := testenv.RPC(c).Ledger.ListEntries(context.Background(), &xhubv1.ListEntriesRequest{Since: since, PageSize: 1000, MinSeq: minSeq})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r.Entries...)
		if since = r.NextSince; since == 0 {
			return all
		}
	}
}

// checkChain verifies sequence numbers and predecessor hashes.
func checkChain(t *testing.T, es []*xhubv1.Entry) {
	t.Helper()
	var prev ledger.Hash
	for i, e := range es {
		pe, err := ledger.Parse(e.Raw)
		if err != nil {
			t.Fatalf("entry %d: %v", e.Seq, err)
		}
		if pe.Seq != uint64(i+1) || e.Seq != uint64(i+1) {
			t.Fatalf("entry at %d has seq %d/%d", i+1, pe.Seq, e.Seq)
		}
		if pe.Prev != prev {
			t.Fatalf("entry %d does not chain to its predecessor", e.Seq)
		}
		prev = ledger.LeafHash(e.Raw)
	}
}

func TestRestartKeepsStateAndAppliesOnce(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	officer := env.Officer("health")
	env.Dept("tax")
	if _, err := testenv.RPC(officer).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.cases", SchemaJson: []byte(schemaV1)}); err != nil {
		t.Fatal(err)
	}
	pub, err := testenv.RPC(officer).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: "health.cases", Title: "Cases", ShareType: "open", SchemaSubject: "health.cases"})
	if err != nil {
		t.Fatal(err)
	}
	before := entries(t, env.Admin, pub.Seq)
	applied := env.Node.CP.Applied()
	depts, err := testenv.RPC(env.Admin).Departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{})
	if err != nil {
		t.Fatal(err)
	}

	env.Restart()
	if got := env.Node.CP.Applied(); got != applied {
		t.Fatalf("applied after restart = %d, want %d", got, applied)
	}
	after := entries(t, env.Admin, 0)
	if diff := cmp.Diff(before, after, protocmp.Transform()); diff != "" {
		t.Fatalf("ledger changed across restart (-want +got):\n%s", diff)
	}
	depts2, err := testenv.RPC(env.Admin).Departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(depts, depts2, protocmp.Transform()); diff != "" {
		t.Fatalf("departments changed (-want +got):\n%s", diff)
	}
	off := env.Officer("health")
	v, err := testenv.RPC(off).Schemas.ListVersions(ctx, &xhubv1.ListVersionsRequest{Subject: "health.cases"})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Versions) != 1 {
		t.Fatalf("schema versions after restart: %d, want 1 (applied twice?)", len(v.Versions))
	}
	d, err := testenv.RPC(off).Catalog.GetDataset(ctx, &xhubv1.GetDatasetRequest{Id: "health.cases"})
	if err != nil || d.Dataset.Seq != pub.Seq {
		t.Fatalf("dataset after restart: %v %v", d, err)
	}
	// A new entry continues the sequence.
	r, err := testenv.RPC(env.Admin).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: "police", Name: "Police"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != applied+2 { // +1 for the officer credential issued above
		t.Fatalf("new entry seq %d, want %d", r.Seq, applied+2)
	}
	checkChain(t, entries(t, env.Admin, r.Seq))
}

func TestTwoNodesOneLinearLog(t *testing.T) {
	a := testenv.Start(t, testenv.WithNATSListen())
	dirB := t.TempDir()
	a.CopyPKI(dirB)
	b := testenv.StartIn(t, dirB, testenv.WithNATSURL(a.NATSURL()))
	ctx := context.Background()

	const perNode = 20
	var wg sync.WaitGroup
	errs := make(chan error, 4*perNode)
	var maxSeq sync.Map
	for ni, node := range []*testenv.Env{a, b} {
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perNode / 2 {
					id := fmt.Sprintf("d%d-%d-%d", ni, w, i)
					r, err := testenv.RPC(node.Admin).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: id, Name: id})
					if err != nil {
						errs <- fmt.Errorf("node %d add %s: %w", ni, id, err)
						return
					}
					maxSeq.Store(id, r.Seq)
				}
			}()
		}
	}
	// Both nodes race to add the same department: exactly one wins.
	var raceWins, raceExists int
	var mu sync.Mutex
	for _, node := range []*testenv.Env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := testenv.RPC(node.Admin).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: "contested", Name: "Contested"})
			mu.Lock()
			defer mu.Unlock()
			switch testenv.Code(err) {
			case codes.OK:
				raceWins++
			case codes.AlreadyExists:
				raceExists++
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if raceWins != 1 || raceExists != 1 {
		t.Fatalf("contested department: %d wins, %d already-exists; want 1 and 1", raceWins, raceExists)
	}
	var top uint64
	maxSeq.Range(func(_, v any) bool { top = max(top, v.(uint64)); return true })

	ea, eb := entries(t, a.Admin, top), entries(t, b.Admin, top)
	if len(ea) != len(eb) {
		t.Fatalf("node A has %d entries, node B %d", len(ea), len(eb))
	}
	for i := range ea {
		if !bytes.Equal(ea[i].Raw, eb[i].Raw) {
			t.Fatalf("entry %d differs between nodes", i+1)
		}
	}
	checkChain(t, ea)
	da, _ := testenv.RPC(a.Admin).Departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{MinSeq: top, PageSize: 1000})
	db, _ := testenv.RPC(b.Admin).Departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{MinSeq: top, PageSize: 1000})
	if len(da.Departments) != 2*perNode+1 {
		t.Fatalf("node A has %d departments, want %d", len(da.Departments), 2*perNode+1)
	}
	if diff := cmp.Diff(da, db, protocmp.Transform()); diff != "" {
		t.Fatalf("views differ (-A +B):\n%s", diff)
	}
	// A credential issued through A is honoured by B at once.
	off := a.Creds("health", "officer", "o1")
	cb := b.Dial(off)
	if _, err := testenv.RPC(cb).Catalog.ListDatasets(ctx, &xhubv1.ListDatasetsRequest{}); err != nil {
		t.Fatalf("credential issued on A, used on B: %v", err)
	}
}

func TestNodeWithAnotherCARefusesToJoin(t *testing.T) {
	a := testenv.Start(t, testenv.WithNATSListen())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", NATSURL: a.NATSURL(), Logger: testenv.Logger()})
	if err == nil {
		n.Close()
		t.Fatal("a node with its own CA joined the hub")
	}
	if !strings.Contains(err.Error(), "certificate authority") {
		t.Fatalf("error does not explain: %v", err)
	}
}

func mustSerial(t *testing.T, credsFile string) string {
	t.Helper()
	c, err := vocab.LoadCreds(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	return c.Serial
}

// TestNodeStopsWhenAPartFails: a node whose gRPC server stops on its own
// does not linger half-alive: it stops, saying which part failed.
func TestNodeStopsWhenAPartFails(t *testing.T) {
	env := testenv.Start(t)
	env.Node.GRPC.Stop()
	select {
	case <-env.Node.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the node kept running after its gRPC server stopped")
	}
	if err := env.Node.Err(); err == nil || !strings.Contains(err.Error(), "grpc") {
		t.Fatalf("reason: %v", err)
	}
}

// TestPlainCloseIsNotAFailure: Close stops every part with no failure.
func TestPlainCloseIsNotAFailure(t *testing.T) {
	env := testenv.Start(t, testenv.WithMetrics())
	n := env.Node
	env.Stop()
	<-n.Done()
	if err := n.Err(); err != nil {
		t.Fatalf("a plain Close reported %v", err)
	}
}
