package catalog

import (
	"testing"
	"time"

	"github.com/xhub-gov/xhub/internal/store"
)

func TestCatalogStateMachine(t *testing.T) {
	v := store.Map{}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if _, err := ApplyDeptAdded(v, []byte(`{"id":"health","name":"Health"}`), t0, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyDeptAdded(v, []byte(`{"id":"health","name":"Again"}`), t0, 3); err == nil {
		t.Fatal("a department added twice")
	}
	body := []byte(`{"id":"health.cases","title":"Cases","share_type":"open","schema_subject":"health.cases","schema_version":1}`)
	d, err := ApplyDatasetPublished(v, body, t0, 4)
	if err != nil || d.Status != StatusPublished || !d.PublishedAt.Equal(t0) {
		t.Fatalf("published: %+v %v", d, err)
	}
	t1 := t0.Add(time.Hour)
	d, err = ApplyDatasetPublished(v, body, t1, 5)
	if err != nil || !d.PublishedAt.Equal(t0) || !d.UpdatedAt.Equal(t1) || d.Seq != 5 {
		t.Fatalf("republished keeps its first publication: %+v %v", d, err)
	}
	d, err = ApplyDatasetRetired(v, []byte(`{"id":"health.cases","reason":"replaced"}`), t1, 6)
	if err != nil || d.Status != StatusRetired {
		t.Fatalf("retired: %+v %v", d, err)
	}
	d, err = ApplyDatasetPublished(v, body, t1.Add(time.Hour), 7)
	if err != nil || !d.PublishedAt.Equal(t1.Add(time.Hour)) {
		t.Fatalf("published again after retirement starts anew: %+v %v", d, err)
	}
	if _, err := ApplyDatasetRetired(v, []byte(`{"id":"health.none"}`), t1, 8); err == nil {
		t.Fatal("retired a dataset that does not exist")
	}
}
