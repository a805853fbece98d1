package vocab

import (
	"strings"
	"testing"
)

func TestParseIDs(t *testing.T) {
	tests := []struct {
		in      string
		dept    bool
		dataset bool
	}{
		{"health", true, false},
		{"civil-affairs", true, false},
		{"h", false, false},
		{"Health", false, false},
		{"9lives", false, false},
		{"tax_bureau", false, false},
		{strings.Repeat("a", 32), true, false},
		{strings.Repeat("a", 33), false, false},
		{"health.vaccinations", false, true},
		{"health.v", false, false},
		{"health.", false, false},
		{".vacc", false, false},
		{"health.vacc.x", false, false},
		{"health.vacc*", false, false},
		{"health.vacc>", false, false},
		{"health." + strings.Repeat("b", 64), false, true},
		{"health." + strings.Repeat("b", 65), false, false},
	}
	for _, tt := range tests {
		_, err := ParseDeptID(tt.in)
		if (err == nil) != tt.dept {
			t.Errorf("ParseDeptID(%q) err = %v, want ok=%v", tt.in, err, tt.dept)
		}
		_, err = ParseDatasetID(tt.in)
		if (err == nil) != tt.dataset {
			t.Errorf("ParseDatasetID(%q) err = %v, want ok=%v", tt.in, err, tt.dataset)
		}
	}
}

// FuzzParseDatasetID: whatever parses is a valid NATS subject token pair
// and splits back into the same owner and name.
func FuzzParseDatasetID(f *testing.F) {
	for _, s := range []string{"health.vaccinations", "a.b", "x-1.y-2", "health..x", "Ä.ö", "tax.returns\x00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseDatasetID(s)
		if err != nil {
			if !strings.Contains(err.Error(), "dataset") {
				t.Fatalf("error does not name the field: %v", err)
			}
			return
		}
		if string(id.Owner())+"."+id.Name() != s || !id.Owner().Valid() || !id.Valid() {
			t.Fatalf("round trip of %q", s)
		}
		if strings.ContainsAny(s, " *>\t\r\n") || strings.Count(s, ".") != 1 {
			t.Fatalf("%q is not a safe subject token pair", s)
		}
	})
}

func FuzzParseDeptID(f *testing.F) {
	for _, s := range []string{"health", "civil-affairs", "a", "A1", "x.y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseDeptID(s)
		if err != nil {
			return
		}
		if string(id) != s || len(s) < 2 || len(s) > 32 || strings.ContainsAny(s, ". *>") {
			t.Fatalf("accepted %q", s)
		}
	})
}
