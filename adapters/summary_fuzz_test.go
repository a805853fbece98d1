package adapters

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xhub-gov/xhub/exchange/ledger"
)

// FuzzSummary: any body of any kind gets a summary of at most 160
// characters, on one line with no character a terminal obeys (oneLine),
// without a panic. The seeds are under testdata/fuzz.
func FuzzSummary(f *testing.F) {
	f.Add("schema.registered", `{"subject":"hr.staff","version":2,"fields":[{"name":"staff_id","type":"string"}],"registered_at":"0001-01-01T00:00:00Z","seq":0}`)
	f.Add("dataset.updated", `{"id":"a.b","schema":{"subject":"a.b","version":3},"retention":"30d"}`)
	f.Add("share.requested", `{"requester":"tax","purpose":"a\u001b[31m\nforged\u009b\u202e"}`)
	f.Fuzz(func(t *testing.T, kind, body string) {
		if !json.Valid([]byte(body)) {
			return
		}
		e, err := ledger.New(1, ledger.Hash{}, time.Unix(0, 0), "spiffe://xhub/dept/hub/admin/admin", kind, "x", json.RawMessage(body))
		if err != nil {
			return
		}
		s := Summary(Entry{Seq: 1, Kind: kind, Raw: e.Marshal()})
		if utf8.RuneCountInString(s) > 160 {
			t.Fatalf("summary of %d characters: %q", utf8.RuneCountInString(s), s)
		}
		oneLine(t, kind, s)
	})
}
