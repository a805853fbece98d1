package exchange_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
)

var admin = vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "bench"}

// BenchmarkControlPlane measures one control-plane change end to end on a
// node: validate against the views, append to XHUB_LEDGER with
// expected-last-sequence, wait until the apply loop has materialised it in
// Badger. Compare with BenchmarkRawJetStreamExpectedSeq, the same append
// without any hub logic, in the same run.
func BenchmarkControlPlane(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchControlPlane(b, testenv.Start(b)) })
	b.Run("fsync-always", func(b *testing.B) { benchControlPlane(b, testenv.Start(b, testenv.WithFsyncAlways())) })
	b.Run("64-writers", func(b *testing.B) { benchControlPlaneParallel(b, testenv.Start(b), 64) })
}

// benchControlPlaneParallel: writers concurrent changes on one node, which
// its appender groups into atomic appends.
func benchControlPlaneParallel(b *testing.B, env *testenv.Env, writers int) {
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, _, err := env.Node.CP.AddDepartment(ctx, admin, catalog.DeptID(fmt.Sprintf("d-%d", i)), "Department"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "entries/s")
}

func benchControlPlane(b *testing.B, env *testenv.Env) {
	ctx := context.Background()
	i := 0
	start := time.Now()
	for b.Loop() {
		i++
		if _, _, err := env.Node.CP.AddDepartment(ctx, admin, catalog.DeptID(fmt.Sprintf("d-%d", i)), "Department"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "entries/s")
}

// BenchmarkRawJetStreamExpectedSeq is the baseline: a synchronous publish
// with expected-last-sequence on a stream configured like XHUB_LEDGER.
func BenchmarkRawJetStreamExpectedSeq(b *testing.B) {
	env := testenv.Start(b)
	ctx := context.Background()
	s, err := env.Node.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw"}, Storage: jetstream.FileStorage})
	if err != nil {
		b.Fatal(err)
	}
	_ = s
	payload := make([]byte, 300) // about the size of a dept.added entry
	var last uint64
	start := time.Now()
	for b.Loop() {
		ack, err := env.Node.JS.Publish(ctx, "raw", payload, jetstream.WithExpectLastSequence(last))
		if err != nil {
			b.Fatal(err)
		}
		last = ack.Sequence
	}
	b.ReportMetric(float64(last)/time.Since(start).Seconds(), "entries/s")
}

// BenchmarkCheckAccess: the data plane's grant check against an index of
// 1,000 active grants (run with -cpu 1,2 for one and two cores).
func BenchmarkCheckAccess(b *testing.B) {
	env := testenv.Start(b, testenv.WithSweep(-1))
	ctx := context.Background()
	cp := env.Node.CP
	owner := vocab.Identity{Dept: "health", Role: vocab.RoleOfficer, Name: "o"}
	if _, _, err := cp.AddDepartment(ctx, admin, "health", "Health"); err != nil {
		b.Fatal(err)
	}
	if _, _, _, err := cp.RegisterSchema(ctx, owner, "health.cases", []byte(`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`), ""); err != nil {
		b.Fatal(err)
	}
	if _, _, err := cp.PublishDataset(ctx, owner, catalog.Published{ID: "health.cases", Title: "Cases", ShareType: catalog.ShareOpen, SchemaSubject: "health.cases"}); err != nil {
		b.Fatal(err)
	}
	const grantees = 1000
	for i := range grantees {
		d := catalog.DeptID(fmt.Sprintf("d-%d", i))
		if _, _, err := cp.AddDepartment(ctx, admin, d, "D"); err != nil {
			b.Fatal(err)
		}
		if _, g, _, err := cp.RequestShare(ctx, vocab.Identity{Dept: d, Role: vocab.RoleOfficer, Name: "o"}, shares.Input{Dataset: "health.cases", Purpose: "bench"}); err != nil || g == nil {
			b.Fatal(err)
		}
	}
	want := []string{"a", "b"}
	ids := make([]catalog.DeptID, grantees)
	for i := range ids {
		ids[i] = catalog.DeptID(fmt.Sprintf("d-%d", i))
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		now := time.Now()
		for pb.Next() {
			a, err := cp.CheckAccess(ids[i%grantees], "health.cases", now)
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := a.Allows(want); !ok {
				b.Fatal("fields not allowed")
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}

// BenchmarkStartVerify measures what the start-up check costs: a node
// whose log holds n entries restarts, replaying them into memory and
// comparing with its Badger views before it serves.
func BenchmarkStartVerify(b *testing.B) {
	const n = 20_000
	env := testenv.Start(b)
	ctx := context.Background()
	for i := range n {
		if _, _, err := env.Node.CP.AddDepartment(ctx, admin, catalog.DeptID(fmt.Sprintf("d-%d", i)), "Department"); err != nil {
			b.Fatal(err)
		}
	}
	var total time.Duration
	for b.Loop() {
		env.Stop()
		start := time.Now()
		env.Restart()
		total += time.Since(start)
		if err := env.Node.Integrity(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "entries/s")
}
