package vocab

import (
	"testing"
)

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"spiffe://xhub/dept/health/officer/alice", true},
		{"spiffe://xhub/dept/hub/admin/admin", true},
		{"spiffe://xhub/dept/health/admin/alice", false}, // admin only in hub
		{"spiffe://xhub/dept/hub/officer/x", false},
		{"spiffe://other/dept/health/officer/alice", false},
		{"https://xhub/dept/health/officer/alice", false},
		{"spiffe://xhub/dept/health/officer", false},
		{"spiffe://xhub/dept/health/officer/alice/extra", false},
		{"spiffe://xhub/dept/Health/officer/alice", false},
		{"spiffe://xhub/dept/health/root/alice", false},
		{"spiffe://xhub/dept/health/system/-x", false},
	}
	for _, tt := range tests {
		id, err := ParseIdentity(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseIdentity(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err == nil && id.URI() != tt.in {
			t.Errorf("round trip %q -> %q", tt.in, id.URI())
		}
	}
}

func FuzzParseIdentity(f *testing.F) {
	f.Add("spiffe://xhub/dept/health/officer/alice")
	f.Add("spiffe://xhub/dept/hub/admin/admin")
	f.Add("spiffe://xhub/dept/a%2Fb/system/x")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			return
		}
		again, err := ParseIdentity(id.URI())
		if err != nil || again != id {
			t.Fatalf("%q parsed to %+v which does not round-trip: %v", s, id, err)
		}
	})
}

func TestNormalizeSerial(t *testing.T) {
	for in, want := range map[string]string{"0a:1b": "0A1B", "0x0A1B": "0A1B", "serial=0A1B": "0A1B", "zz": "", " 0a1b ": "0A1B"} {
		if got := NormalizeSerial(in); got != want {
			t.Errorf("NormalizeSerial(%q) = %q, want %q", in, got, want)
		}
	}
}
