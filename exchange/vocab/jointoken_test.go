package vocab

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"strings"
	"testing"
)

func FuzzParseJoinToken(f *testing.F) {
	good := JoinToken{Hubs: []string{"127.0.0.1:7443", "hub-b:7443"}, CASHA256: strings.Repeat("ab", 32), ID: "j-12", Secret: bytes.Repeat([]byte{7}, 32)}
	f.Add(good.String())
	f.Add(JoinTokenPrefix)
	f.Add(JoinTokenPrefix + "e30")
	f.Add("xhubjoin1.!!")
	f.Add("xhubjoin2.!!")
	f.Add(strings.Replace(good.String(), JoinTokenPrefix, oldJoinTokenPrefix, 1))
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
		{strings.Replace(good.String(), JoinTokenPrefix, oldJoinTokenPrefix, 1), "make a new token"},
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

// TestJoinClaim: a proof checks only the claim it signed, with the
// verifier of the secret that made it; a box opens only with the key it
// was sealed to, for the token it names.
func TestJoinClaim(t *testing.T) {
	tok := JoinToken{Hubs: []string{"h:1"}, CASHA256: strings.Repeat("ab", 32), ID: "j-1", Secret: bytes.Repeat([]byte{1}, 32)}
	key, _ := ecdh.X25519().GenerateKey(rand.Reader)
	c := JoinClaim{TokenID: "j-1", Name: "hub-b", Key: key.PublicKey().Bytes(), WantsNATS: true}
	proof := tok.Prove(c)
	v := JoinVerifier(tok.Secret)
	if !VerifyJoinClaim(v, c, proof) {
		t.Fatal("a good proof does not verify")
	}
	other := tok
	other.Secret = bytes.Repeat([]byte{2}, 32)
	for name, tc := range map[string]struct {
		v     []byte
		c     JoinClaim
		proof []byte
	}{
		"another secret":           {JoinVerifier(other.Secret), c, proof},
		"no verifier":              {nil, c, proof},
		"another id":               {v, JoinClaim{TokenID: "j-2", Name: c.Name, Key: c.Key, WantsNATS: true}, proof},
		"id and name run together": {v, JoinClaim{TokenID: "j-1h", Name: "ub-b", Key: c.Key, WantsNATS: true}, proof},
		"another name":             {v, JoinClaim{TokenID: c.TokenID, Name: "x", Key: c.Key, WantsNATS: true}, proof},
		"another key":              {v, JoinClaim{TokenID: c.TokenID, Name: c.Name, Key: bytes.Repeat([]byte{3}, 32), WantsNATS: true}, proof},
		"no NATS":                  {v, JoinClaim{TokenID: c.TokenID, Name: c.Name, Key: c.Key}, proof},
		"short proof":              {v, c, proof[:63]},
	} {
		if VerifyJoinClaim(tc.v, tc.c, tc.proof) {
			t.Errorf("%s: verifies", name)
		}
	}
	in := JoinSecrets{PKIFiles: map[string][]byte{"ca.key": []byte("k")}, NATSURL: "nats://u:p@h:1"}
	eph, box, err := SealJoinSecrets(c.Key, "j-1", in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := OpenJoinSecrets(key, "j-1", eph, box)
	if err != nil || string(out.PKIFiles["ca.key"]) != "k" || out.NATSURL != in.NATSURL {
		t.Fatalf("open: %+v %v", out, err)
	}
	if _, err := OpenJoinSecrets(key, "j-2", eph, box); err == nil {
		t.Fatal("a box opens for another token")
	}
	stranger, _ := ecdh.X25519().GenerateKey(rand.Reader)
	if _, err := OpenJoinSecrets(stranger, "j-1", eph, box); err == nil {
		t.Fatal("a box opens with another key")
	}
	if _, _, err := SealJoinSecrets([]byte{1}, "j-1", in); err == nil {
		t.Fatal("sealed to a 1-byte key")
	}
}

// FuzzOpenJoinSecrets: whatever a node answers, opening it fails with an
// error, never a crash.
func FuzzOpenJoinSecrets(f *testing.F) {
	key, _ := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{9}, 32))
	eph, box, _ := SealJoinSecrets(key.PublicKey().Bytes(), "j-1", JoinSecrets{PKIFiles: map[string][]byte{"a": {1}}})
	f.Add(eph, box)
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, 32), make([]byte, 40))
	f.Fuzz(func(t *testing.T, eph, box []byte) {
		_, _ = OpenJoinSecrets(key, "j-1", eph, box)
	})
}
