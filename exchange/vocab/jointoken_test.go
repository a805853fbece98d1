package vocab

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParseJoinToken(f *testing.F) {
	good := JoinToken{Hubs: []string{"127.0.0.1:7443", "hub-b:7443"}, CASHA256: strings.Repeat("ab", 32), ID: "j-12", Secret: bytes.Repeat([]byte{7}, 32)}
	f.Add(good.String())
	f.Add(JoinTokenPrefix)
	f.Add(JoinTokenPrefix + "e30")
	f.Add("xhubjoin1.!!")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseJoinToken(s)
		if err != nil {
			return
		}
		// What parses is whole, and says the same when written again.
		again, err := ParseJoinToken(tok.String())
		if err != nil || again.ID != tok.ID || !bytes.Equal(again.Secret, tok.Secret) || strings.Join(again.Hubs, ",") != strings.Join(tok.Hubs, ",") {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
		if len(tok.Secret) != 32 || len(tok.Hubs) == 0 {
			t.Fatalf("accepted an incomplete token: %+v", tok)
		}
	})
}

func TestParseJoinTokenSaysWhatIsWrong(t *testing.T) {
	good := JoinToken{Hubs: []string{"h:1"}, CASHA256: strings.Repeat("ab", 32), ID: "j-1", Secret: bytes.Repeat([]byte{1}, 32)}
	if _, err := ParseJoinToken(" " + good.String() + "\n"); err != nil {
		t.Fatalf("good token with white space: %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{"hello", "does not start"},
		{good.String()[:40], "cut short"},
		{good.String()[:41], "cut short"},
		{JoinToken{Hubs: nil, CASHA256: good.CASHA256, ID: "j", Secret: good.Secret}.String(), "no hub"},
		{JoinToken{Hubs: good.Hubs, CASHA256: "zz", ID: "j", Secret: good.Secret}.String(), "fingerprint"},
		{JoinToken{Hubs: good.Hubs, CASHA256: good.CASHA256, ID: "j", Secret: []byte{1}}.String(), "32 bytes"},
	} {
		if _, err := ParseJoinToken(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseJoinToken(%.30q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}
