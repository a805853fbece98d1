package pki

import (
	"crypto/hmac"
	"crypto/sha256"
)

// DeriveSecret is a secret every node of the deployment derives alike
// from the CA key (HMAC-SHA256 keyed by a hash of it), named by label:
// nothing to store or copy, and a new label gives a new secret.
func (a *Authority) DeriveSecret(label string) []byte {
	k := sha256.Sum256(append([]byte("xhub derived secret\x00"), a.key.D.Bytes()...))
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(label))
	return m.Sum(nil)
}
