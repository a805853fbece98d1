package vocab

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// JoinToken is what a new hub node needs to join a deployment: where the
// running nodes are, the fingerprint of the hub CA to pin when it dials
// them, and a one-time secret. It travels as one line of text
// (JoinTokenPrefix + base64url of JSON), kept in a file or the
// environment, never on a command line, and is as secret as a password
// until it is used or expires.
//
// The secret never leaves the joining node. It is the seed of an Ed25519
// key whose public half (JoinVerifier) is all the ledger keeps; the
// joiner signs a JoinClaim naming its own X25519 key, and the admitting
// node seals what it hands over to that key (SealJoinSecrets). A request
// seen or replayed by someone else yields a sealed box only the joiner
// opens, and a token admits one node, once: the first join that is
// appended to the ledger spends it.
type JoinToken struct {
	Hubs     []string `json:"hubs"`
	CASHA256 string   `json:"ca_sha256"`
	ID       string   `json:"id"`
	Secret   []byte   `json:"secret"`
}

// JoinTokenPrefix starts every join token. (xhubjoin1. tokens, whose
// secret the joiner sent to the hub, are refused: see ParseJoinToken.)
const JoinTokenPrefix = "xhubjoin2."

const oldJoinTokenPrefix = "xhubjoin1."

// maxJoinToken bounds a token's text.
const maxJoinToken = 4096

// String is the token's text.
func (t JoinToken) String() string {
	b, _ := json.Marshal(t)
	return JoinTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseJoinToken reads a token's text, saying what is wrong with it.
func ParseJoinToken(s string) (JoinToken, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxJoinToken {
		return JoinToken{}, fmt.Errorf("join token: %d bytes, at most %d", len(s), maxJoinToken)
	}
	if strings.HasPrefix(s, oldJoinTokenPrefix) {
		return JoinToken{}, fmt.Errorf("join token: %q is the older form, made by an xhub that had joiners send the secret itself; this one proves it instead: make a new token (xhub node token)", oldJoinTokenPrefix)
	}
	rest, ok := strings.CutPrefix(s, JoinTokenPrefix)
	if !ok {
		return JoinToken{}, fmt.Errorf("join token: does not start with %q (made by `xhub node token`)", JoinTokenPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return JoinToken{}, errors.New("join token: not base64url after the prefix (cut short when copied?)")
	}
	var t JoinToken
	if err := json.Unmarshal(b, &t); err != nil {
		return JoinToken{}, fmt.Errorf("join token: damaged or cut short when copied (%v)", err)
	}
	switch {
	case len(t.Hubs) == 0:
		return JoinToken{}, errors.New("join token: names no hub address")
	case len(t.Secret) != 32:
		return JoinToken{}, errors.New("join token: the secret is not 32 bytes")
	case t.ID == "" || len(t.ID) > 64:
		return JoinToken{}, errors.New("join token: no token id")
	}
	if fp, err := hex.DecodeString(t.CASHA256); err != nil || len(fp) != 32 {
		return JoinToken{}, errors.New("join token: the CA fingerprint is not a SHA-256 in hex")
	}
	for _, h := range t.Hubs {
		if h == "" || len(h) > 255 {
			return JoinToken{}, fmt.Errorf("join token: hub address %q", h)
		}
	}
	return t, nil
}

// JoinVerifier is the public key that checks claims signed with a
// token's secret: the ledger keeps it, never the secret.
func JoinVerifier(secret []byte) ed25519.PublicKey {
	return joinSigner(secret).Public().(ed25519.PublicKey)
}

func joinSigner(secret []byte) ed25519.PrivateKey {
	seed := sha256.Sum256(append([]byte("xhub join token v2\x00"), secret...))
	return ed25519.NewKeyFromSeed(seed[:])
}

// JoinClaim is what a joining node asks for: to join as Name on token
// TokenID, with the deployment's secrets sealed to Key (its X25519
// public key, 32 bytes), and the NATS URL only if it WantsNATS (it was
// given no NATS of its own).
type JoinClaim struct {
	TokenID   string
	Name      string
	Key       []byte
	WantsNATS bool
}

// JoinKeyLen is the length of a joiner's X25519 public key.
const JoinKeyLen = 32

// message is what a claim's proof signs: each part length-prefixed, so
// no two claims read the same.
func (c JoinClaim) message() []byte {
	m := []byte("xhub node join v2\x00")
	for _, part := range [][]byte{[]byte(c.TokenID), []byte(c.Name), c.Key} {
		m = binary.BigEndian.AppendUint32(m, uint32(len(part)))
		m = append(m, part...)
	}
	if c.WantsNATS {
		return append(m, 1)
	}
	return append(m, 0)
}

// Prove signs c with the token's secret.
func (t JoinToken) Prove(c JoinClaim) []byte {
	return ed25519.Sign(joinSigner(t.Secret), c.message())
}

// VerifyJoinClaim reports whether proof is c signed with the secret
// whose verifier is v. It takes the same time for a verifier of the
// wrong length (a token that does not exist is checked against nil).
func VerifyJoinClaim(v []byte, c JoinClaim, proof []byte) bool {
	real := len(v) == ed25519.PublicKeySize
	if !real {
		v = dummyVerifier
	}
	ok := len(proof) == ed25519.SignatureSize && ed25519.Verify(v, c.message(), proof)
	return ok && real
}

var dummyVerifier = JoinVerifier(make([]byte, 32))

// JoinKeyFingerprint names a joiner's key in logs and in `xhub node
// list`, so the operator can tell which node used a token.
func JoinKeyFingerprint(key []byte) string {
	if len(key) == 0 {
		return ""
	}
	s := sha256.Sum256(key)
	return "sha256:" + hex.EncodeToString(s[:12])
}

// JoinSecrets is what an admitted node receives, sealed to its key: the
// files of the deployment's pki folder by name, and the NATS URL (with
// credentials) only if it asked for one.
type JoinSecrets struct {
	PKIFiles map[string][]byte `json:"pki_files"`
	NATSURL  string            `json:"nats_url,omitempty"`
}

const joinSealInfo = "xhub join secrets v2"

// SealJoinSecrets seals s to the joiner's X25519 key for token id: an
// ephemeral X25519 key agreement, HKDF-SHA256, AES-256-GCM. It returns
// the ephemeral public key and the box.
func SealJoinSecrets(joinerKey []byte, tokenID string, s JoinSecrets) (ephemeral, sealed []byte, err error) {
	pub, err := ecdh.X25519().NewPublicKey(joinerKey)
	if err != nil {
		return nil, nil, fmt.Errorf("join: the joiner's key: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	aead, err := joinAEAD(eph, pub, eph.PublicKey().Bytes(), joinerKey)
	if err != nil {
		return nil, nil, err
	}
	plain, err := json.Marshal(s)
	if err != nil {
		return nil, nil, err
	}
	// The key is new for every box: a zero nonce is used once.
	return eph.PublicKey().Bytes(), aead.Seal(nil, make([]byte, aead.NonceSize()), plain, []byte(tokenID)), nil
}

// OpenJoinSecrets opens a box SealJoinSecrets made for priv.
func OpenJoinSecrets(priv *ecdh.PrivateKey, tokenID string, ephemeral, sealed []byte) (JoinSecrets, error) {
	pub, err := ecdh.X25519().NewPublicKey(ephemeral)
	if err != nil {
		return JoinSecrets{}, fmt.Errorf("join: the admitting node's key: %w", err)
	}
	aead, err := joinAEAD(priv, pub, ephemeral, priv.PublicKey().Bytes())
	if err != nil {
		return JoinSecrets{}, err
	}
	plain, err := aead.Open(nil, make([]byte, aead.NonceSize()), sealed, []byte(tokenID))
	if err != nil {
		return JoinSecrets{}, errors.New("join: the sealed answer does not open with this node's key")
	}
	var s JoinSecrets
	if err := json.Unmarshal(plain, &s); err != nil {
		return JoinSecrets{}, fmt.Errorf("join: the sealed answer: %w", err)
	}
	return s, nil
}

func joinAEAD(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, ephemeral, joiner []byte) (cipher.AEAD, error) {
	shared, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("join: key agreement: %w", err)
	}
	key, err := hkdf.Key(sha256.New, shared, append(append([]byte{}, ephemeral...), joiner...), joinSealInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
