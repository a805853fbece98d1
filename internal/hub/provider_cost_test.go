package hub_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestProviderStreamCost: what one provider stream costs the hub node
// (its session and NATS subscriptions, without the gRPC stream): a fixed
// number of goroutines however many datasets it provides — one, taking
// the queries of all its datasets from one channel — and its heap, logged.
func TestProviderStreamCost(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	const depts, perDept, datasets = 6, 16, 4
	var ids [depts][]catalog.DatasetID
	for d := range depts {
		dept := fmt.Sprintf("cost%d", d)
		off := env.Officer(dept)
		for k := range datasets {
			id := fmt.Sprintf("%s.d%d", dept, k)
			if _, _, err := off.RegisterSchema(ctx, id, []byte(`{"type":"object","properties":{"id":{"type":"integer"}}}`), ""); err != nil {
				t.Fatal(err)
			}
			if _, err := off.PublishDataset(ctx, adapters.DatasetSpec{ID: id, Title: id, ShareType: "open", SchemaSubject: id}); err != nil {
				t.Fatal(err)
			}
			ids[d] = append(ids[d], catalog.DatasetID(id))
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	n := 0
	for d := range depts {
		for i := range perDept {
			s, err := env.Node.DP.OpenProvider(context.Background(), vocab.Identity{Dept: catalog.DeptID(fmt.Sprintf("cost%d", d)), Role: vocab.RoleSystem, Name: fmt.Sprint("p", i)}, ids[d])
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			n++
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	goroutines := float64(runtime.NumGoroutine()-g0) / float64(n)
	heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / 1024 / float64(n)
	t.Logf("per provider stream of %d datasets: %.1f goroutines, %.0f KB of heap (%d streams)", datasets, goroutines, heap, n)
	if goroutines > 1.05 {
		t.Errorf("a provider stream of %d datasets costs %.2f goroutines, want 1", datasets, goroutines)
	}
}
