package trial

import (
	"context"
	"fmt"
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
//	go test -run X -bench ClusterWrites -benchtime 5s ./internal/trial/
func BenchmarkClusterWrites(b *testing.B) {
	d := deploy(b)
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
			c := clients[w%len(clients)]
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
}
