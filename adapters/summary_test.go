package adapters

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/exchange/ledger"
)

// TestSummaryEveryKind: the one-line summary `xhub ledger log` prints
// for every entry kind, of the bodies the hub writes now and of those it
// wrote before (ledgers keep them: ../exchange/testdata/ledger), says
// something and never prints Go formatting or a zero time.
func TestSummaryEveryKind(t *testing.T) {
	for _, name := range []string{"every-kind.jsonl", "every-kind-v1.jsonl"} {
		b, err := os.ReadFile(filepath.Join("..", "exchange", "testdata", "ledger", name))
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, raw := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			le, err := ledger.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			kinds[le.Kind] = true
			e := Entry{Seq: le.Seq, Kind: le.Kind, Subject: le.Subject, Actor: le.Actor, Time: le.Time, Raw: raw}
			s := Summary(e)
			if s == "" {
				t.Errorf("%s: entry %d (%s) has no summary", name, le.Seq, le.Kind)
			}
			for _, bad := range []string{"map[", "0001-01-01", "&{", "<nil>", "%!"} {
				if strings.Contains(s, bad) {
					t.Errorf("%s: entry %d (%s) summary %q holds %q", name, le.Seq, le.Kind, s, bad)
				}
			}
			t.Logf("%-18s %s", le.Kind, s)
		}
		if len(kinds) < 21 {
			t.Errorf("%s holds %d entry kinds, want every one (21)", name, len(kinds))
		}
	}
	// Bodies the files do not hold: a short list of objects (which the
	// generic summary printed as Go maps), an update of the schema, a
	// kind this version does not know.
	for _, c := range []struct{ kind, body string }{
		{"schema.registered", `{"subject":"hr.staff","version":2,"schema":{},"fields":[{"name":"staff_id","type":"string"}],"compat":"","registered_at":"0001-01-01T00:00:00Z","seq":0}`},
		{"dataset.updated", `{"id":"hr.staff","schema":{"subject":"hr.staff"}}`},
		{"some.future", `{"fields":[{"name":"staff_id"}],"limits":{"a":1},"at":"0001-01-01T00:00:00Z","seq":0,"n":[1,2],"ok":true}`},
	} {
		e, err := ledger.New(1, ledger.Hash{}, time.Now(), "spiffe://xhub/dept/hub/admin/admin", c.kind, "x", json.RawMessage(c.body))
		if err != nil {
			t.Fatal(err)
		}
		s := Summary(Entry{Seq: 1, Kind: c.kind, Raw: e.Marshal()})
		for _, bad := range []string{"map[", "0001-01-01", "&{", "<nil>", "%!", "seq=0"} {
			if s == "" || strings.Contains(s, bad) {
				t.Errorf("%s %s: summary %q", c.kind, c.body, s)
			}
		}
		t.Logf("%-18s %s", c.kind, s)
	}
}
