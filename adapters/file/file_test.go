package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

var fields = []catalog.Field{{Name: "id", Type: "integer"}, {Name: "name", Type: "string"}, {Name: "ok", Type: "boolean"}, {Name: "score", Type: "number|null"}}

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func query(t *testing.T, s *Source, where string, limit int, token string) ([]string, string) {
	t.Helper()
	q := adapters.ProviderQuery{Limit: limit, PageToken: token}
	if where != "" {
		f, err := vocab.ParseFilter(where)
		if err != nil {
			t.Fatal(err)
		}
		q.Filters = []vocab.Filter{f}
	}
	recs, next, err := s.Handler()(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, string(r))
	}
	return out, next
}

func TestCSVTypedBySchema(t *testing.T) {
	s, err := Open(write(t, "d.csv", "id,name,ok,score\n1,Ana,true,1.5\n2,Bo,false,\n9007199254740993,\"Li, Wei\",true,3\n"), fields)
	if err != nil {
		t.Fatal(err)
	}
	got, next := query(t, s, "", 10, "")
	want := `{"id":1,"name":"Ana","ok":true,"score":1.5}|{"id":2,"name":"Bo","ok":false}|{"id":9007199254740993,"name":"Li, Wei","ok":true,"score":3}`
	if strings.Join(got, "|") != want || next != "" {
		t.Fatalf("got %v next %q", got, next)
	}
	if got, _ := query(t, s, "ok=true", 10, ""); len(got) != 2 {
		t.Fatalf("filter: %v", got)
	}
	if _, err := Open(write(t, "bad.csv", "id,ok\nx,true\n"), fields); err == nil || !strings.Contains(err.Error(), "line 2, column id") {
		t.Fatalf("bad CSV: %v", err)
	}
}

func TestJSONLPagingAndReload(t *testing.T) {
	path := write(t, "d.jsonl", `{"id":1}`+"\n"+`{"id":2}`+"\n"+`{"id":3}`+"\n")
	s, err := Open(path, fields)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	token := ""
	for {
		page, next := query(t, s, "", 2, token)
		all = append(all, page...)
		if token = next; token == "" {
			break
		}
	}
	if strings.Join(all, "") != `{"id":1}{"id":2}{"id":3}` {
		t.Fatalf("pages: %v", all)
	}
	if err := os.WriteFile(path, []byte(`{"id":4}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := query(t, s, "", 10, ""); len(got) != 1 || got[0] != `{"id":4}` {
		t.Fatalf("after the file changed: %v", got)
	}
	if _, err := Open(write(t, "bad.jsonl", "{\"id\":1}\n[1]\n"), fields); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad JSONL: %v", err)
	}
}

// TestScanStopsWithContext: the scan of a file stops when the query's
// context ends (the stream to the hub gone), and a line holding a number
// beyond the bound on number texts is refused naming the line and the
// bound, as the hub would refuse the record.
func TestScanStopsWithContext(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, `{"id":%d,"name":"n%d"}`+"\n", i, i)
	}
	s, err := Open(write(t, "d.jsonl", b.String()), fields)
	if err != nil {
		t.Fatal(err)
	}
	f, err := vocab.ParseFilter("name=nobody")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	recs, next, err := s.Handler()(ctx, adapters.ProviderQuery{Filters: []vocab.Filter{f}, Limit: 10})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("scan under an ended context: %d records, next %q, err %v; want context.Canceled", len(recs), next, err)
	}
	if _, err := Open(write(t, "n.jsonl", `{"id":1}`+"\n"+`{"id":1e999999}`+"\n"), fields); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "beyond the bound of ±400") {
		t.Fatalf("a line with 1e999999: %v", err)
	}
}

// FuzzParseOffset: a page token reaching the adapter is read without a
// crash, as exactly the offset the adapter would have written, or refused
// with ErrPageToken.
func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"", "0", "3", "007", "-1", "+1", "1e3", " 1", "999999999999999999", "9999999999999999999", `"3"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		n, err := parseOffset(tok)
		if err != nil {
			if !errors.Is(err, ErrPageToken) {
				t.Fatalf("%q refused with %v", tok, err)
			}
			return
		}
		if n < 0 || (tok != "" && strconv.Itoa(n) != tok) {
			t.Fatalf("%q read as %d", tok, n)
		}
	})
}
