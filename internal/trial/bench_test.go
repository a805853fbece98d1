package trial

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
)

// BenchmarkClusterWrites: control-plane writes (dept.added) from 64
// concurrent writers, half through each of two hub nodes, on R3 streams
// of a three-node NATS cluster, all processes on this machine.
//
//	go test -run X -bench ClusterWrites -benchtime 4000x ./internal/trial/
//
// XHUB_BENCH_ONE_NODE=1 sends every writer through the first node.
func BenchmarkClusterWrites(b *testing.B) {
	d := deploy(b, deployConfig{})
	ctx := context.Background()
	var clients []*adapters.Client
	for _, addr := range d.addrs {
		c, err := adapters.Dial(ctx, d.adminCreds, adapters.WithHub(addr))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	const writers = 64
	nodes := len(clients)
	if os.Getenv("XHUB_BENCH_ONE_NODE") != "" {
		nodes = 1 // every writer through the first node: no append races between nodes
	}
	var n, fails atomic.Int64
	var seq atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	per := b.N/writers + 1
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%nodes]
			for range per {
				id := fmt.Sprintf("b-%d", seq.Add(1))
				if _, err := c.AddDepartment(ctx, id, id); err != nil {
					fails.Add(1)
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.ReportMetric(float64(n.Load())/el.Seconds(), "entries/s")
	b.ReportMetric(float64(fails.Load()), "errors")
	var appends, entries, conflicts float64
	for _, addr := range d.metrics {
		appends += scrape(b, addr, "xhub_ledger_appends_total")
		entries += scrape(b, addr, "xhub_ledger_appended_entries_total")
		conflicts += scrape(b, addr, "xhub_ledger_append_conflicts_total")
	}
	if appends > 0 {
		b.ReportMetric(entries/appends, "entries/append")
		b.ReportMetric(conflicts/appends, "conflicts/append")
	}
}

// BenchmarkClusterPaths runs `xhub bench --hub A,B --raw-nats CLUSTER
// --replicas 3` against two hub nodes on R3 streams of a three-node NATS
// cluster, all processes on this machine: query, publish and subscribe
// through the hub, and the raw baselines on the same cluster.
//
//	go test -run X -bench ClusterPaths -benchtime 1x ./internal/trial/
func BenchmarkClusterPaths(b *testing.B) {
	d := deploy(b, deployConfig{})
	bin := filepath.Join(d.dir, "xhub")
	for b.Loop() {
		cmd := exec.Command(bin, "bench", "--hub", d.both, "--creds", d.adminCreds, "--raw-nats", d.nats.URL(), "--replicas", "3", "--duration", "4s")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("xhub bench: %v", err)
		}
		b.Logf("\n%s", out)
	}
}
