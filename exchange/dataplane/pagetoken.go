package dataplane

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// Page tokens. A provider's page token is its own: often the key of the
// last record it sent, which the consumer may not be granted. The
// consumer never sees it. The hub seals it (XChaCha20-Poly1305 under a
// key every node derives alike), padded to one length, and binds it to
// the query it continues: the consumer department, the dataset, the
// grants it reads under, the fields and the filters. The consumer's token
// is opaque; any token the hub did not issue for this query, whatever it
// holds, is refused with one answer before a provider is asked. The
// provider sees only tokens it (or another provider of the dataset)
// issued.

// MaxProviderToken bounds the page token a provider may answer; every
// sealed token holds this many bytes, whatever the provider's length.
const MaxProviderToken = 512

// PageTokenKeySize is the size of Config.PageTokenKey.
const PageTokenKeySize = chacha20poly1305.KeySize

const (
	pageTokenVersion = 1
	sealedPlain      = 2 + MaxProviderToken // length, token, padding
	sealedRaw        = 1 + chacha20poly1305.NonceSizeX + sealedPlain + chacha20poly1305.Overhead
)

// SealedTokenLen is the length of every page token a consumer receives.
var SealedTokenLen = base64.RawURLEncoding.EncodedLen(sealedRaw)

// errPageToken is the one refusal of a page token: it says nothing of
// what the token held or why it failed.
func errPageToken() error {
	return vocab.Invalid("page_token", "is not a page token this hub issued for this query (this department, dataset, grant, fields and filters): start again without one")
}

// tokenScope is what a page token is bound to.
type tokenScope struct {
	Consumer catalog.DeptID
	Dataset  catalog.DatasetID
	Grants   []shares.GrantID // sorted; none for the owner
	Fields   []string         // the resolved fields, sorted
	Filters  []vocab.Filter   // as given
}

// aad is the scope as the cipher's additional data: every part length
// prefixed, so no two scopes share an encoding.
func (s tokenScope) aad() []byte {
	b := []byte("xhub page token\x00")
	add := func(v string) { b = appendBytes(b, []byte(v)) }
	add(string(s.Consumer))
	add(string(s.Dataset))
	b = binary.AppendUvarint(b, uint64(len(s.Grants)))
	for _, g := range s.Grants {
		add(string(g))
	}
	b = binary.AppendUvarint(b, uint64(len(s.Fields)))
	for _, f := range s.Fields {
		add(f)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Filters)))
	for _, f := range s.Filters {
		add(f.Field)
		add(string(f.Op))
		b = appendBytes(b, f.ValueJSON())
	}
	return b
}

// tokenSealer seals providers' page tokens for consumers and opens them.
type tokenSealer struct{ aead cipher.AEAD }

func newTokenSealer(key []byte) (*tokenSealer, error) {
	if len(key) != PageTokenKeySize {
		return nil, fmt.Errorf("dataplane: PageTokenKey is %d bytes, want %d", len(key), PageTokenKeySize)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("dataplane: page token key: %w", err)
	}
	return &tokenSealer{aead: aead}, nil
}

// seal is the consumer's token for a provider's; "" stays "" (the last
// page).
func (s *tokenSealer) seal(scope tokenScope, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	if len(token) > MaxProviderToken {
		return "", fmt.Errorf("answered a page token of %d bytes, at most %d", len(token), MaxProviderToken)
	}
	plain := make([]byte, sealedPlain)
	binary.BigEndian.PutUint16(plain, uint16(len(token)))
	copy(plain[2:], token)
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, sealedRaw)
	out[0] = pageTokenVersion
	nonce := out[1:]
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("page token nonce: %w", err)
	}
	out = s.aead.Seal(out, nonce, plain, scope.aad())
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open is the provider's token inside a consumer's; "" is the first
// page. Any token it did not seal for this scope gets errPageToken.
func (s *tokenSealer) open(scope tokenScope, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	if len(token) != SealedTokenLen {
		return "", errPageToken()
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != sealedRaw || raw[0] != pageTokenVersion {
		return "", errPageToken()
	}
	nonce, sealed := raw[1:1+chacha20poly1305.NonceSizeX], raw[1+chacha20poly1305.NonceSizeX:]
	plain, err := s.aead.Open(sealed[:0], nonce, sealed, scope.aad())
	if err != nil {
		return "", errPageToken()
	}
	n := int(binary.BigEndian.Uint16(plain))
	if n == 0 || n > MaxProviderToken {
		return "", errPageToken() // not one seal makes
	}
	return string(plain[2 : 2+n]), nil
}

// scopeOf is the scope of a query: grants sorted, fields as resolved.
func scopeOf(consumer catalog.DeptID, ds catalog.DatasetID, grants []shares.GrantID, fields []string, filters []vocab.Filter) tokenScope {
	gs := slices.Clone(grants)
	slices.Sort(gs)
	return tokenScope{Consumer: consumer, Dataset: ds, Grants: gs, Fields: fields, Filters: filters}
}
