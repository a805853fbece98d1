package testenv

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/xhub-gov/xhub/internal/natsauth"
	"github.com/xhub-gov/xhub/internal/pki"
)

// CalloutFor makes what NATS servers need to take departments' systems
// with a hub as their auth callout: the hub's CA in dataDir/pki (made
// first, since the servers' TLS names it; the hub started on dataDir
// uses it), a server certificate for 127.0.0.1, and the callout's
// account key, the files in dir. It returns the servers' settings (for
// EnableCallout) and the key's file (for WithNATSCallout, xhub serve
// --nats-callout-key).
func CalloutFor(t testing.TB, dataDir, dir string) (Callout, string) {
	t.Helper()
	authority, err := pki.LoadOrCreate(filepath.Join(dataDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.ServerCert([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile := filepath.Join(dir, "callout.nk")
	issuer, _, err := natsauth.LoadOrCreateIssuer(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := issuer.PublicKey()
	return Callout{
		Issuer:   pub,
		CertFile: write("server.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})),
		KeyFile:  write("server-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		CAFile:   write("ca.pem", authority.CertPEM),
	}, keyFile
}
