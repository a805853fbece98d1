package vocab_test

import (
	"bytes"
	"testing"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/pki"
)

// FuzzParseCreds: a creds file is read from disk, where anything may be
// written to it: no input panics, and one that parses exports to PEM files
// that parse back as the same identity and key.
func FuzzParseCreds(f *testing.F) {
	ca, err := pki.LoadOrCreate(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	id := vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "etl"}
	keyPEM, csr, err := vocab.NewKey(id)
	if err != nil {
		f.Fatal(err)
	}
	certPEM, _, err := ca.SignCSR(csr, id, 1)
	if err != nil {
		f.Fatal(err)
	}
	valid := vocab.EncodeCreds("127.0.0.1:7443", "xhub+1234+AAAA", certPEM, keyPEM, ca.CertPEM)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(bytes.Replace(valid, []byte("PRIVATE KEY"), []byte("EC PRIVATE KEY"), 2))
	f.Add(vocab.EncodeCreds("h", "k", certPEM, keyPEM, certPEM)) // no CA
	f.Add([]byte("hub: \xff\xfe\nledger-key: x\n-----BEGIN CERTIFICATE-----\n\xff\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := vocab.ParseCreds(b)
		if err != nil {
			return
		}
		cert, key, caPEM, err := c.PEM()
		if err != nil {
			t.Fatalf("parsed creds do not export: %v", err)
		}
		again, err := vocab.ParseCreds(vocab.EncodeCreds(c.Hub, c.LedgerKey, cert, key, caPEM))
		if err != nil {
			t.Fatalf("exported PEM does not parse back: %v", err)
		}
		if again.Identity != c.Identity || again.Serial != c.Serial || !again.CA.Equal(c.CA) {
			t.Fatalf("round trip: %+v → %+v", c.Identity, again.Identity)
		}
	})
}
