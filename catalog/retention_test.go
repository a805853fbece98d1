package catalog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// TestParseRetention: a whole number and one unit, within the bounds;
// anything else is refused naming the field.
func TestParseRetention(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		text string // String() of the result
		bad  string // part of the error
	}{
		{in: "", want: 0, text: ""},
		{in: "30d", want: 30 * 24 * time.Hour, text: "30d"},
		{in: "2s", want: 2 * time.Second, text: "2s"},
		{in: "90m", want: 90 * time.Minute, text: "90m"},
		{in: "48h", want: 48 * time.Hour, text: "2d"},
		{in: "3600s", want: time.Hour, text: "1h"},
		{in: "3650d", want: 3650 * 24 * time.Hour, text: "3650d"},
		{in: "3651d", bad: "more than 3650d"},
		{in: "0s", bad: "at least 1s"},
		{in: "0", bad: "not a number and a unit"},
		{in: "30", bad: "not a number and a unit"},
		{in: "d", bad: "not a number and a unit"},
		{in: "-1d", bad: "not a number and a unit"},
		{in: "+1d", bad: "not a number and a unit"},
		{in: "01d", bad: "not a number and a unit"},
		{in: "1.5d", bad: "not a number and a unit"},
		{in: "1w", bad: "not a number and a unit"},
		{in: "1 d", bad: "not a number and a unit"},
		{in: "1D", bad: "not a number and a unit"},
		{in: "99999999999999d", bad: "more than"},
		{in: "9999999999999999999s", bad: "characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRetention(tt.in)
			if tt.bad != "" {
				if vocab.KindOf(err) != vocab.KindInvalid || !strings.Contains(err.Error(), "retention") || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("ParseRetention(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.bad)
				}
				return
			}
			if err != nil || got.Duration() != tt.want || got.String() != tt.text {
				t.Fatalf("ParseRetention(%q) = %v (%q), %v; want %v (%q)", tt.in, got.Duration(), got, err, tt.want, tt.text)
			}
		})
	}
}

// FuzzParseRetention: what parses is within the bounds, whole seconds,
// and reads back from its own text and JSON.
func FuzzParseRetention(f *testing.F) {
	for _, s := range []string{"30d", "2s", "12h", "90m", "", "0s", "3651d", "1.5d", "-1d", "01d", "99999999999999999d", "1\x00d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRetention(s)
		if err != nil {
			if !strings.Contains(err.Error(), "retention") {
				t.Fatalf("error does not name the field: %v", err)
			}
			return
		}
		if r.Validate() != nil || r < 0 || r > MaxRetention || (r != 0 && r < MinRetention) {
			t.Fatalf("accepted %q as %v", s, r.Duration())
		}
		back, err := ParseRetention(r.String())
		if err != nil || back != r {
			t.Fatalf("%q → %q → %v, %v", s, r, back, err)
		}
		b, err := json.Marshal(r)
		var again Retention
		if err != nil || json.Unmarshal(b, &again) != nil || again != r {
			t.Fatalf("JSON of %q: %s → %v", s, b, again)
		}
	})
}

// TestRetentionEntries: a publication and an update carry the retention;
// an update back to the hub's default is a change; a bad one is refused
// before anything is written; entries from before the field read as the
// hub's default.
func TestRetentionEntries(t *testing.T) {
	v := store.Map{}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	old := []byte(`{"id":"health.cases","title":"Cases","share_type":"none","schema_subject":"health.cases","schema_version":1,"fields":[]}`)
	d, err := ApplyDatasetPublished(v, old, t0, 1)
	if err != nil || d.Retention != 0 {
		t.Fatalf("an entry without retention: %+v %v", d, err)
	}
	month := Retention(30 * 24 * time.Hour)
	body, _, err := CheckUpdate(v, Update{ID: "health.cases", Retention: &month})
	if err != nil || strings.Join(body.Changed(), ",") != "retention" {
		t.Fatalf("CheckUpdate: %+v %v", body, err)
	}
	if b := string(mustJSON(t, body)); !strings.Contains(b, `"retention":"30d"`) {
		t.Fatalf("the entry says %s", b)
	}
	if d, err = ApplyDatasetUpdated(v, mustJSON(t, body), t0, 2); err != nil || d.Retention != month {
		t.Fatalf("applied: %+v %v", d, err)
	}
	if _, _, err := CheckUpdate(v, Update{ID: "health.cases", Retention: &month}); vocab.KindOf(err) != vocab.KindPrecondition {
		t.Fatalf("the same retention again: %v", err)
	}
	var def Retention
	if body, _, err = CheckUpdate(v, Update{ID: "health.cases", Retention: &def}); err != nil || strings.Join(body.Changed(), ",") != "retention" {
		t.Fatalf("back to the hub's default: %+v %v", body, err)
	}
	if d, err = ApplyDatasetUpdated(v, mustJSON(t, body), t0, 3); err != nil || d.Retention != 0 {
		t.Fatalf("applied: %+v %v", d, err)
	}
	tooLong := MaxRetention + Retention(time.Second)
	if _, _, err := CheckUpdate(v, Update{ID: "health.cases", Retention: &tooLong}); vocab.KindOf(err) != vocab.KindInvalid || !strings.Contains(err.Error(), "retention") {
		t.Fatalf("too long: %v", err)
	}
	pub := Published{ID: "health.beds", Title: "Beds", ShareType: ShareOpen, Retention: Retention(1500 * time.Millisecond)}
	if err := pub.ValidateMetadata(); vocab.KindOf(err) != vocab.KindInvalid || !strings.Contains(err.Error(), "whole seconds") {
		t.Fatalf("a retention in milliseconds: %v", err)
	}
}
