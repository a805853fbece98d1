package vocab

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
)

// Creds is a credential bundle: the *.creds file.
//
// The file is PEM: text header lines "hub: ADDR" and "ledger-key: KEY"
// (the hub's ledger verifier key, pinned at issue), then the client
// certificate, its PRIVATE KEY, and the hub CA certificate.
type Creds struct {
	Hub       string
	LedgerKey string
	Cert      tls.Certificate
	Leaf      *x509.Certificate
	CA        *x509.Certificate
	Identity  Identity
	Serial    string
}

// NewKey makes a key and a certificate request for id.
func NewKey(id Identity) (keyPEM, csrDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csrDER, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id.URI()}}, key)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), csrDER, nil
}

// EncodeCreds builds the file's bytes.
func EncodeCreds(hub, ledgerKey string, certPEM, keyPEM, caPEM []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# xhub credentials: keep this file secret\nhub: %s\nledger-key: %s\n\n", hub, ledgerKey)
	b.Write(certPEM)
	b.Write(keyPEM)
	b.Write(caPEM)
	return b.Bytes()
}

// LoadCreds reads a creds file.
func LoadCreds(path string) (*Creds, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	c, err := ParseCreds(b)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	return c, nil
}

// ParseCreds parses a creds file's bytes.
func ParseCreds(b []byte) (*Creds, error) {
	c := &Creds{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "-----BEGIN") {
			break
		}
		if v, ok := strings.CutPrefix(line, "hub:"); ok {
			c.Hub = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "ledger-key:"); ok {
			c.LedgerKey = strings.TrimSpace(v)
		}
	}
	var certs []*x509.Certificate
	var keyPEM, leafPEM []byte
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate: %w", err)
			}
			if cert.IsCA {
				c.CA = cert
			} else {
				certs = append(certs, cert)
				leafPEM = pem.EncodeToMemory(block)
			}
		case "PRIVATE KEY":
			keyPEM = pem.EncodeToMemory(block)
		}
	}
	if len(certs) != 1 || keyPEM == nil || c.CA == nil {
		return nil, errors.New("want one client certificate, its PRIVATE KEY and the CA certificate")
	}
	cert, err := tls.X509KeyPair(leafPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key pair: %w", err)
	}
	c.Cert, c.Leaf = cert, certs[0]
	c.Identity, c.Serial, err = IdentityOf(c.Leaf)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// PEM returns the credential as the three PEM files any TLS client takes:
// the client certificate, its private key (PKCS #8) and the hub's CA.
func (c *Creds) PEM() (cert, key, ca []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.Cert.PrivateKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Leaf.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.CA.Raw}), nil
}

// ClientTLS is the TLS configuration to dial addr with these credentials.
func (c *Creds) ClientTLS(addr string) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(c.CA)
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.Cert},
		RootCAs:      pool,
		ServerName:   host,
	}
}

// SerialHex formats a serial as openssl x509 -serial prints it.
func SerialHex(n *big.Int) string {
	return strings.ToUpper(hex.EncodeToString(n.Bytes()))
}

// IdentityOf reads the SPIFFE identity and serial of a client certificate.
func IdentityOf(cert *x509.Certificate) (Identity, string, error) {
	if len(cert.URIs) != 1 {
		return Identity{}, "", errors.New("certificate has no single URI SAN")
	}
	id, err := ParseIdentity(cert.URIs[0].String())
	if err != nil {
		return Identity{}, "", err
	}
	return id, SerialHex(cert.SerialNumber), nil
}

// NormalizeSerial turns "0A:1B", "0x0a1b" or "0A1B" into "0A1B".
func NormalizeSerial(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0X"), "SERIAL=")
	s = strings.ReplaceAll(s, ":", "")
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return ""
		}
	}
	return s
}
