package vocab

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// JoinToken is what a new hub node needs to join a deployment: where the
// running nodes are, the fingerprint of the hub CA to pin when it dials
// them, and a one-time secret. It travels as one line of text
// (JoinTokenPrefix + base64url of JSON) and is as secret as a password
// until it is used or expires.
type JoinToken struct {
	Hubs     []string `json:"hubs"`
	CASHA256 string   `json:"ca_sha256"`
	ID       string   `json:"id"`
	Secret   []byte   `json:"secret"`
}

// JoinTokenPrefix starts every join token.
const JoinTokenPrefix = "xhubjoin1."

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
