package exchange_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/internal/testenv"
)

var admin = exchange.Identity{Dept: catalog.HubDept, Role: exchange.RoleAdmin, Name: "bench"}

// BenchmarkControlPlane measures one control-plane change end to end on a
// node: validate against the views, append to XHUB_LEDGER with
// expected-last-sequence, wait until the apply loop has materialised it in
// Badger. Compare with BenchmarkRawJetStreamExpectedSeq, the same append
// without any hub logic, in the same run.
func BenchmarkControlPlane(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchControlPlane(b, testenv.Start(b)) })
	b.Run("fsync-always", func(b *testing.B) { benchControlPlane(b, testenv.Start(b, testenv.WithFsyncAlways())) })
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
