package catalog

import (
	"container/heap"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// Index answers catalog listings and text search from memory. It is kept
// in step with the materialised views by the control plane's apply loop;
// Put and Get copy, so callers never share a Dataset with the index.
type Index struct {
	mu     sync.RWMutex
	byID   map[DatasetID]*Dataset
	sorted []*Dataset // by ID; rebuilt lazily after changes
	dirty  bool
	words  map[string]map[DatasetID]struct{}
	vocab  []string // sorted keys of words; rebuilt lazily
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{byID: make(map[DatasetID]*Dataset), words: make(map[string]map[DatasetID]struct{})}
}

// Put adds or replaces a dataset.
func (x *Index) Put(d Dataset) {
	d.Keywords = slices.Clone(d.Keywords)
	d.Fields = slices.Clone(d.Fields)
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byID[d.ID]; ok {
		for _, w := range tokens(searchText(old)) {
			if set := x.words[w]; set != nil {
				delete(set, d.ID)
				if len(set) == 0 {
					delete(x.words, w)
				}
			}
		}
	}
	x.byID[d.ID] = &d
	for _, w := range tokens(searchText(&d)) {
		set := x.words[w]
		if set == nil {
			set = make(map[DatasetID]struct{})
			x.words[w] = set
		}
		set[d.ID] = struct{}{}
	}
	x.dirty = true
}

// Get returns a copy of the dataset.
func (x *Index) Get(id DatasetID) (Dataset, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	d, ok := x.byID[id]
	if !ok {
		return Dataset{}, false
	}
	return copyDataset(d), true
}

// Len is the number of datasets, retired ones included.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byID)
}

// Query selects datasets. Zero values select everything published.
type Query struct {
	Dept           DeptID
	Share          ShareType
	Search         string // every word must match a word (or word prefix) of title, description, keywords or id
	IncludeRetired bool
	After          DatasetID // page start: ids greater than this
	Limit          int       // page size; must be > 0
}

// List returns one page of matches in id order, the id to pass as After for
// the next page ("" when this is the last page), and the number of matches
// over all pages. Nothing is ever dropped silently: a caller that follows
// the pages sees every match exactly once.
func (x *Index) List(q Query) (page []Dataset, next DatasetID, total int) {
	x.mu.Lock()
	if x.dirty {
		x.sorted = x.sorted[:0]
		for _, d := range x.byID {
			x.sorted = append(x.sorted, d)
		}
		sort.Slice(x.sorted, func(i, j int) bool { return x.sorted[i].ID < x.sorted[j].ID })
		x.vocab = x.vocab[:0]
		for w := range x.words {
			x.vocab = append(x.vocab, w)
		}
		sort.Strings(x.vocab)
		x.dirty = false
	}
	x.mu.Unlock()
	x.mu.RLock()
	defer x.mu.RUnlock()

	match := func(d *Dataset) bool {
		if !q.IncludeRetired && d.Status == StatusRetired {
			return false
		}
		if q.Share != "" && d.ShareType != q.Share {
			return false
		}
		return q.Dept == "" || d.ID.Owner() == q.Dept
	}
	emit := func(d *Dataset) {
		if !match(d) {
			return
		}
		total++
		if d.ID <= q.After {
			return
		}
		if len(page) < q.Limit {
			page = append(page, copyDataset(d))
			next = d.ID
		} else if len(page) == q.Limit {
			next = d.ID // marker: there is more
			page = append(page, Dataset{})
		}
	}

	if words := tokens(q.Search); len(words) > 0 {
		// Candidates from the smallest word set; count every match, keep
		// only the page's worth in a bounded heap, so a broad search costs
		// O(matches · log page) rather than a sort of every match.
		sets := make([]map[DatasetID]struct{}, len(words))
		for i, w := range words {
			sets[i] = x.prefixSet(w)
		}
		slices.SortFunc(sets, func(a, b map[DatasetID]struct{}) int { return len(a) - len(b) })
		h := &idHeap{}
		for id := range sets[0] {
			ok := true
			for _, set := range sets[1:] {
				if _, in := set[id]; !in {
					ok = false
					break
				}
			}
			d := x.byID[id]
			if !ok || !match(d) {
				continue
			}
			total++
			if id <= q.After {
				continue
			}
			if h.Len() < q.Limit+1 {
				heap.Push(h, id)
			} else if id < (*h)[0] {
				(*h)[0] = id
				heap.Fix(h, 0)
			}
		}
		ids := []DatasetID(*h)
		slices.Sort(ids)
		for _, id := range ids {
			page = append(page, copyDataset(x.byID[id]))
		}
		if len(page) > q.Limit {
			page = page[:q.Limit]
			next = page[len(page)-1].ID
		}
		return page, next, total
	} else {
		start := 0
		if q.Dept != "" {
			prefix := DatasetID(string(q.Dept) + ".")
			start = sort.Search(len(x.sorted), func(i int) bool { return x.sorted[i].ID >= prefix })
		}
		for _, d := range x.sorted[start:] {
			if q.Dept != "" && d.ID.Owner() != q.Dept {
				break
			}
			emit(d)
		}
	}
	if len(page) > q.Limit {
		page = page[:q.Limit]
		next = page[len(page)-1].ID
	} else {
		next = ""
	}
	return page, next, total
}

// prefixSet unions the sets of every word that starts with w.
func (x *Index) prefixSet(w string) map[DatasetID]struct{} {
	lo := sort.SearchStrings(x.vocab, w)
	hi := lo
	for hi < len(x.vocab) && strings.HasPrefix(x.vocab[hi], w) {
		hi++
	}
	if hi-lo == 1 {
		return x.words[x.vocab[lo]] // one word: its set as is, read-only
	}
	out := make(map[DatasetID]struct{})
	for _, word := range x.vocab[lo:hi] {
		for id := range x.words[word] {
			out[id] = struct{}{}
		}
	}
	return out
}

func searchText(d *Dataset) string {
	return string(d.ID) + " " + d.Title + " " + d.Description + " " + strings.Join(d.Keywords, " ")
}

// tokens splits text into lowercase words; each Han, Hiragana, Katakana or
// Hangul character is a word of its own, so CJK text is searchable without
// a segmenter.
func tokens(s string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(w string) {
		if w != "" && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul):
			add(b.String())
			b.Reset()
			add(string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		default:
			add(b.String())
			b.Reset()
		}
	}
	add(b.String())
	return out
}

func copyDataset(d *Dataset) Dataset {
	c := *d
	c.Keywords = slices.Clone(d.Keywords)
	c.Fields = slices.Clone(d.Fields)
	return c
}

// idHeap is a max-heap of ids: the root is the largest kept.
type idHeap []DatasetID

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(DatasetID)) }
func (h *idHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
