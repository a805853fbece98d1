package catalog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/exchange/vocab"
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

// TestCatalogRules: each command is checked against the views alone, and
// what passes applies.
func TestCatalogRules(t *testing.T) {
	v := store.Map{}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		id, name, want string
	}{
		{"hub", "Operator", "reserved"},
		{"Health", "Health", "department"},
		{"health", " ", "name"},
		{"health", "Health\xff", "UTF-8"},
	} {
		if _, err := NewDepartment(v, DeptID(tc.id), tc.name); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewDepartment(%q, %q) = %v, want an error about %s", tc.id, tc.name, err, tc.want)
		}
	}
	d, err := NewDepartment(v, "health", "  Health  ")
	if err != nil || d.Name != "Health" {
		t.Fatalf("NewDepartment: %+v %v", d, err)
	}
	if _, err := ApplyDeptAdded(v, mustJSON(t, d), t0, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDepartment(v, "health", "Again"); vocab.KindOf(err) != vocab.KindExists {
		t.Fatalf("second registration: %v", err)
	}

	ds := Published{ID: "health.cases", Title: "Cases", ShareType: ShareOpen}
	body, err := Publication(v, ds, SchemaRef{Subject: "health.cases", Version: 2, Fields: []Field{{Name: "id", Type: "integer"}}})
	if err != nil || body.SchemaVersion != 2 || len(body.Fields) != 1 {
		t.Fatalf("Publication: %+v %v (state is the log's to set, not the command's)", body, err)
	}
	if _, err := ApplyDatasetPublished(v, mustJSON(t, body), t0, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := Publication(v, ds, SchemaRef{Subject: "health.cases", Version: 1}); vocab.KindOf(err) != vocab.KindPrecondition {
		t.Fatalf("back to an earlier schema version: %v", err)
	}
	if _, err := Retire(v, "health.none", ""); vocab.KindOf(err) != vocab.KindNotFound {
		t.Fatalf("retire unknown: %v", err)
	}
	if _, err := Retire(v, "health.cases", strings.Repeat("x", MaxReasonLen+1)); vocab.KindOf(err) != vocab.KindInvalid {
		t.Fatalf("reason too long: %v", err)
	}
	r, err := Retire(v, "health.cases", " replaced ")
	if err != nil || r.Reason != "replaced" {
		t.Fatalf("Retire: %+v %v", r, err)
	}
	if _, err := ApplyDatasetRetired(v, mustJSON(t, r), t0, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := Retire(v, "health.cases", ""); vocab.KindOf(err) != vocab.KindPrecondition {
		t.Fatalf("retired twice: %v", err)
	}
	// Retired, it may be published again on an earlier version.
	if _, err := Publication(v, ds, SchemaRef{Subject: "health.cases", Version: 1}); err != nil {
		t.Fatalf("republish a retired dataset: %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
