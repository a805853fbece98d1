package catalog

import (
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// TestUpdate: the body carries only what differs; applying it changes
// only that; a retired dataset, no change and bad values are refused
// before anything is written.
func TestUpdate(t *testing.T) {
	v := store.Map{}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	pub := []byte(`{"id":"health.cases","title":"Cases","keywords":["a"],"share_type":"open","schema_subject":"health.cases","schema_version":2,"fields":[{"name":"id","type":"integer"}]}`)
	if _, err := ApplyDatasetPublished(v, pub, t0, 1); err != nil {
		t.Fatal(err)
	}
	title, same := "Cases 2026", "Cases"
	none := ShareNone
	body, _, err := CheckUpdate(v, Update{ID: "health.cases", Title: &title, Description: nil, ShareType: &none, Frequency: nil})
	if err != nil || strings.Join(body.Changed(), ",") != "title,share_type" {
		t.Fatalf("CheckUpdate: %+v %v", body, err)
	}
	body2, _, err := CheckUpdate(v, Update{ID: "health.cases", Title: &same, ShareType: &none})
	if err != nil || strings.Join(body2.Changed(), ",") != "share_type" {
		t.Fatalf("an unchanged value is left out: %+v %v", body2, err)
	}
	d, err := ApplyDatasetUpdated(v, mustJSON(t, body), t0.Add(time.Hour), 2)
	if err != nil || d.Title != title || d.ShareType != ShareNone || len(d.Keywords) != 1 || d.SchemaVersion != 2 || !d.PublishedAt.Equal(t0) || d.Seq != 2 {
		t.Fatalf("applied: %+v %v", d, err)
	}
	if _, _, err := CheckUpdate(v, Update{ID: "health.cases", Title: &title}); vocab.KindOf(err) != vocab.KindPrecondition {
		t.Fatalf("no change: %v", err)
	}
	old := SchemaRef{Subject: "health.cases", Version: 1}
	if _, _, err := CheckUpdate(v, Update{ID: "health.cases", Schema: &old}); err == nil || !strings.Contains(err.Error(), "cannot go back") {
		t.Fatalf("schema back: %v", err)
	}
	long := strings.Repeat("x", MaxTitleLen+1)
	if _, _, err := CheckUpdate(v, Update{ID: "health.cases", Title: &long}); vocab.KindOf(err) != vocab.KindInvalid {
		t.Fatalf("long title: %v", err)
	}
	if _, err := ApplyDatasetRetired(v, []byte(`{"id":"health.cases"}`), t0, 3); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CheckUpdate(v, Update{ID: "health.cases", Title: &same}); err == nil || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("retired: %v", err)
	}
	if _, err := ApplyDatasetUpdated(v, mustJSON(t, body), t0, 4); err == nil {
		t.Fatal("an update applied to a retired dataset")
	}
}
