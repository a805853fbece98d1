package catalog

import (
	"fmt"
	"testing"
)

func TestIndexPagesAreComplete(t *testing.T) {
	x := NewIndex()
	for i := range 1000 {
		owner := []string{"health", "tax", "police"}[i%3]
		share := []ShareType{ShareOpen, ShareConditional, ShareNone}[i%3]
		d := Dataset{Published: Published{ID: DatasetID(fmt.Sprintf("%s.set-%04d", owner, i)), Title: fmt.Sprintf("Set %d", i), ShareType: share}, Status: StatusPublished}
		if i%10 == 0 {
			d.Keywords = []string{"vaccination"}
			d.Title = "疫苗接种 records"
		}
		if i%7 == 0 {
			d.Status = StatusRetired
		}
		x.Put(d)
	}
	tests := []struct {
		name string
		q    Query
	}{
		{"all", Query{}},
		{"dept", Query{Dept: "tax"}},
		{"share", Query{Share: ShareOpen}},
		{"search prefix", Query{Search: "vacc"}},
		{"search cjk", Query{Search: "疫苗"}},
		{"search and dept", Query{Search: "vaccination", Dept: "health"}},
		{"with retired", Query{IncludeRetired: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := 0
			for i := range 1000 {
				owner := []string{"health", "tax", "police"}[i%3]
				share := []ShareType{ShareOpen, ShareConditional, ShareNone}[i%3]
				if i%7 == 0 && !tt.q.IncludeRetired || tt.q.Dept != "" && string(tt.q.Dept) != owner || tt.q.Share != "" && tt.q.Share != share || tt.q.Search != "" && i%10 != 0 {
					continue
				}
				want++
			}
			seen := map[DatasetID]bool{}
			var last DatasetID
			q := tt.q
			q.Limit = 37
			for pages := 0; ; pages++ {
				page, next, total := x.List(q)
				if total != want {
					t.Fatalf("total %d, want %d", total, want)
				}
				for _, d := range page {
					if seen[d.ID] || d.ID <= last {
						t.Fatalf("%s out of order or repeated", d.ID)
					}
					seen[d.ID], last = true, d.ID
				}
				if next == "" {
					break
				}
				q.After = next
				if pages > 100 {
					t.Fatal("pagination does not end")
				}
			}
			if len(seen) != want {
				t.Fatalf("saw %d across pages, want %d", len(seen), want)
			}
		})
	}
}

func TestIndexUpdateReindexes(t *testing.T) {
	x := NewIndex()
	x.Put(Dataset{Published: Published{ID: "health.a", Title: "apples"}, Status: StatusPublished})
	x.Put(Dataset{Published: Published{ID: "health.a", Title: "pears"}, Status: StatusPublished})
	if _, _, n := x.List(Query{Search: "apples", Limit: 10}); n != 0 {
		t.Fatal("old title still found")
	}
	if _, _, n := x.List(Query{Search: "pears", Limit: 10}); n != 1 {
		t.Fatal("new title not found")
	}
}

func BenchmarkCatalogList100k(b *testing.B) {
	x := NewIndex()
	words := []string{"vaccination", "population", "tax", "housing", "transport", "school", "hospital", "water", "energy", "permit"}
	for i := range 100_000 {
		x.Put(Dataset{
			Published: Published{
				ID:        DatasetID(fmt.Sprintf("dept-%03d.set-%06d", i%300, i)),
				Title:     fmt.Sprintf("%s records %d", words[i%10], i),
				Keywords:  []string{words[(i/10)%10], words[(i/100)%10]},
				ShareType: []ShareType{ShareOpen, ShareConditional, ShareNone}[i%3],
			},
			Status: StatusPublished,
		})
	}
	x.List(Query{Limit: 1})
	for _, bc := range []struct {
		name string
		q    Query
	}{
		{"first-page", Query{Limit: 100}},
		{"dept", Query{Dept: "dept-123", Limit: 100}},
		{"share", Query{Share: ShareOpen, Limit: 100}},
		{"search-1word", Query{Search: "hospital", Limit: 100}},
		{"search-2words", Query{Search: "hospital water", Limit: 100}},
		{"search-prefix", Query{Search: "hosp", Limit: 100}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				x.List(bc.q)
			}
		})
	}
}
