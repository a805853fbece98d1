package trial

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/xhub-gov/xhub/adapters"
)

// TestBodyFault: the province's ledger/bodies invariant finds the zero
// values bodies carried until issue 21 (every-kind-v1.jsonl) and none in
// today's (every-kind.jsonl).
func TestBodyFault(t *testing.T) {
	faults := func(path string) (n int) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e adapters.Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			e.Raw = append([]byte(nil), sc.Bytes()...)
			if why := bodyFault(e); why != "" {
				n++
			}
		}
		return n
	}
	if n := faults("../../exchange/testdata/ledger/every-kind.jsonl"); n != 0 {
		t.Errorf("today's bodies: %d faults", n)
	}
	if n := faults("../../exchange/testdata/ledger/every-kind-v1.jsonl"); n == 0 {
		t.Error("the bodies made before issue 21: no fault found")
	}
}
