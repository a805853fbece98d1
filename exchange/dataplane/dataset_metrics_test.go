package dataplane

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// catalogOnly is a control plane that knows only which datasets exist.
type catalogOnly struct {
	ControlPlane
	known map[catalog.DatasetID]bool
}

func (c catalogOnly) Dataset(id catalog.DatasetID) (catalog.Dataset, error) {
	if !c.known[id] {
		return catalog.Dataset{}, vocab.NotFound("no %s", id)
	}
	return catalog.Dataset{Published: catalog.Published{ID: id}}, nil
}

// TestDatasetSeriesBounded: however many datasets are queried, the
// per-dataset series name at most MaxDatasetSeries of them (the busiest)
// and sum the rest under "other", losing no count; datasets that do not
// exist are not counted at all.
func TestDatasetSeriesBounded(t *testing.T) {
	known := map[catalog.DatasetID]bool{}
	const n = 3 * MaxDatasetSeries
	for i := range n {
		known[catalog.DatasetID(fmt.Sprintf("d.s%03d", i))] = true
	}
	p := &Plane{cp: catalogOnly{known: known}}
	s := newDatasetStats(p)
	total := 0
	for i := range n {
		for range i + 1 { // dataset i is queried i+1 times: the last ones are the busiest
			s.query(catalog.DatasetID(fmt.Sprintf("d.s%03d", i)), 0, 2, 0)
			total++
		}
	}
	for i := range 1000 {
		s.query(catalog.DatasetID(fmt.Sprintf("d.ghost%d", i)), 3, 0, 0)
	}
	counted := 0
	s.by.Range(func(any, any) bool { counted++; return true })
	if counted != n {
		t.Fatalf("%d datasets counted, want %d (the ones that exist)", counted, n)
	}
	ch := make(chan prometheus.Metric, 10*n)
	s.collectDatasets(ch)
	close(ch)
	names := map[string]bool{}
	var ok float64
	for m := range ch {
		if !strings.Contains(m.Desc().String(), "xhub_dataset_queries_total") {
			continue
		}
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range pb.Label {
			labels[l.GetName()] = l.GetValue()
		}
		names[labels["dataset"]] = true
		if labels["outcome"] == "ok" {
			ok += pb.Counter.GetValue()
		}
	}
	if len(names) != MaxDatasetSeries+1 || !names["other"] {
		t.Fatalf("%d dataset labels (other: %v), want %d named and other", len(names), names["other"], MaxDatasetSeries)
	}
	if !names[fmt.Sprintf("d.s%03d", n-1)] || names["d.s000"] {
		t.Fatal("the busiest datasets are not the ones named")
	}
	if int(ok) != total {
		t.Fatalf("series sum to %v queries, want %d", ok, total)
	}
}
