// Package pki owns the hub's certificate authority and credential files:
// creating the CA and the ledger signing key in the data dir, signing
// certificate requests with a SPIFFE identity, the hub's server
// certificate, and the *.creds bundle (client certificate, key, CA, hub
// address) that CLI and adapters dial with.
package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/secretfile"
	"golang.org/x/mod/sumdb/note"
)

// Authority is the hub's CA and ledger key, loaded from a folder.
type Authority struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
	// Signer signs ledger tree heads; Verifier is its public half.
	Signer   note.Signer
	Verifier note.Verifier
	// VerifierKey is the verifier in note's text form.
	VerifierKey string
}

// Files in the pki folder.
const (
	caCertFile    = "ca.crt"
	caKeyFile     = "ca.key"
	ledgerKeyFile = "ledger.key"
	ledgerPubFile = "ledger.pub"
)

// LoadOrCreate loads the authority from dir, creating a new CA and ledger
// key on first use.
func LoadOrCreate(dir string) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, caCertFile)); errors.Is(err, os.ErrNotExist) {
		if err := create(dir); err != nil {
			return nil, err
		}
	}
	return load(dir)
}

func create(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "xhub hub CA", Organization: []string{"xhub"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: "xhub"}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki: create CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "xhub-ledger")
	if err != nil {
		return fmt.Errorf("pki: ledger key: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{caKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{ledgerKeyFile, []byte(skey + "\n")},
		{ledgerPubFile, []byte(vkey + "\n")},
		{caCertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, // last: its presence means "created"
	}
	for _, f := range files {
		// Without ca.crt the others are what a create cut short left.
		_ = os.Remove(filepath.Join(dir, f.name))
		if err := secretfile.Write(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	return nil
}

func load(dir string) (*Authority, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, caCertFile))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	certs, err := parseCerts(certPEM)
	if err != nil || len(certs) != 1 {
		return nil, fmt.Errorf("pki: %s: want one certificate", caCertFile)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, caKeyFile))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", caKeyFile, err)
	}
	skey, err := os.ReadFile(filepath.Join(dir, ledgerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", ledgerKeyFile, err)
	}
	vkey, err := os.ReadFile(filepath.Join(dir, ledgerPubFile))
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", ledgerPubFile, err)
	}
	return &Authority{Cert: certs[0], CertPEM: certPEM, key: key, Signer: signer, Verifier: verifier, VerifierKey: strings.TrimSpace(string(vkey))}, nil
}

// Fingerprint is the SHA-256 of the CA certificate, hex.
func (a *Authority) Fingerprint() string {
	sum := sha256.Sum256(a.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Pool is a cert pool holding the CA.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

// SignCSR issues a client certificate for id from a PKCS#10 request. Only
// the request's public key is used; the identity comes from id.
func (a *Authority) SignCSR(csrDER []byte, id vocab.Identity, validDays int) (certPEM []byte, cert *x509.Certificate, err error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("certificate request signature: %w", err)
	}
	u, _ := url.Parse(id.URI())
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: id.URI(), Organization: []string{string(id.Dept)}, OrganizationalUnit: []string{string(id.Role)}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.AddDate(0, 0, validDays),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, csr.PublicKey, a.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert, nil
}

// ServerCert issues the node's TLS server certificate for the given hosts
// (names or IPs), valid for a year; nodes issue a fresh one at each start.
func (a *Authority) ServerCert(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "xhub hub node"},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, a.Cert.Raw}, PrivateKey: key}, nil
}

func randomSerial() *big.Int {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		panic(err)
	}
	return n.Add(n, limit) // 128 bits, first hex digit >= 8: fixed width
}

func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no PRIVATE KEY block")
		}
		if block.Type != "PRIVATE KEY" {
			continue
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errors.New("key is not ECDSA")
		}
		return ek, nil
	}
}

// Recorder records an issued credential in the ledger
// (*exchange.ControlPlane).
type Recorder interface {
	RecordCredential(ctx context.Context, actor vocab.Identity, c exchange.Credential) (uint64, error)
}

// Issue signs csr for id and records the credential in the ledger as
// actor's act: a certificate the hub signed counts only once the ledger
// holds it. It is the one way credentials are issued, for the API and for
// a data dir's first admin.creds alike.
func (a *Authority) Issue(ctx context.Context, rec Recorder, actor, id vocab.Identity, csr []byte, days int) (certPEM []byte, c exchange.Credential, seq uint64, err error) {
	certPEM, cert, err := a.SignCSR(csr, id, days)
	if err != nil {
		return nil, c, 0, vocab.Invalid("csr_der", "%v", err)
	}
	c = exchange.Credential{Serial: vocab.SerialHex(cert.SerialNumber), Identity: id.URI(), NotAfter: cert.NotAfter}
	seq, err = rec.RecordCredential(ctx, actor, c)
	return certPEM, c, seq, err
}

var _ Recorder = (*exchange.ControlPlane)(nil)

// Files reads the pki folder's files (CA certificate and key, ledger
// key pair), for a node joining the deployment.
func Files(dir string) (map[string][]byte, error) {
	out := make(map[string][]byte)
	for _, name := range []string{caCertFile, caKeyFile, ledgerKeyFile, ledgerPubFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		out[name] = b
	}
	return out, nil
}

// Install writes files received on joining into dir (which must not hold
// an authority yet) and loads them; they must pin the CA fingerprint
// caSHA256. Nothing is left behind on error.
func Install(dir string, files map[string][]byte, caSHA256 string) (*Authority, error) {
	if _, err := os.Stat(filepath.Join(dir, caCertFile)); err == nil {
		return nil, fmt.Errorf("pki: %s already holds an authority", dir)
	}
	tmp := dir + ".joining"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, name := range []string{caCertFile, caKeyFile, ledgerKeyFile, ledgerPubFile} {
		b, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("pki: the joined node sent no %s", name)
		}
		if err := secretfile.Write(filepath.Join(tmp, name), b); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	a, err := load(tmp)
	if err != nil {
		return nil, err
	}
	if a.Fingerprint() != caSHA256 {
		return nil, fmt.Errorf("pki: the CA received (sha256 %s) is not the one the token pins (%s)", a.Fingerprint(), caSHA256)
	}
	_ = os.RemoveAll(dir) // an empty folder made earlier
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return load(dir)
}
