package webhook

import (
	"encoding/json"
	"testing"

	"github.com/xhub-gov/xhub/catalog"
)

// FuzzDecodeTask: any bytes in the queue are a task that names a valid
// department and reads back the same, or an error; never a panic.
func FuzzDecodeTask(f *testing.F) {
	for _, s := range []string{
		`{"id":"12-health","dept":"health","event":"share.requested","subject":"r-12","entry":12,"time":"2026-11-02T10:00:00Z"}`,
		`{"id":"12-health","dept":"Health","event":"share.requested"}`,
		`{"id":"","dept":"health","event":"x"}`,
		`{"dept":"health","id":"1-health","event":"share.approved","redelivered_by":"spiffe://xhub/dept/health/officer/a"}`,
		`[]`, `null`, `{"entry":-1}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		task, err := DecodeTask(b)
		if err != nil {
			return
		}
		if _, err := catalog.ParseDeptID(string(task.Dept)); err != nil {
			t.Fatalf("accepted a task of department %q: %v", task.Dept, err)
		}
		again, err := json.Marshal(task)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeTask(again)
		if err != nil || back.ID != task.ID || back.Dept != task.Dept || back.Event != task.Event || back.Entry != task.Entry || !back.Time.Equal(task.Time) {
			t.Fatalf("%+v read back as %+v (%v)", task, back, err)
		}
	})
}
