package exchange

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// This file is the state machine of node membership: the operator makes
// a one-time join token (node.token; the log keeps only the Ed25519
// public key the secret seeds, vocab.JoinVerifier), and a new node that
// proves the secret, by signing a claim that names its own key, joins
// (node.joined, recording that key). Both are ledger entries, so who
// added which node, when, with which key, is as verifiable as a grant.

// The entry kinds of node membership are named in exchange/ledger (kinds.go).

// Bounds of join tokens.
const (
	DefaultJoinTTL    = time.Hour
	MaxJoinTTL        = 24 * time.Hour
	MaxOpenJoinTokens = 16
)

// JoinPolicy is the actor of node.joined entries: the node that admits a
// joiner appends it on the token's authority.
var JoinPolicy = vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "join"}

// JoinToken is a join token's view.
type JoinToken struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Verifier is the hex Ed25519 public key that checks a joiner's
	// claim. Tokens made before joiners proved the secret hold
	// SecretSHA256 instead, and admit no one.
	Verifier     string    `json:"verifier,omitempty"`
	SecretSHA256 string    `json:"secret_sha256,omitempty"`
	CreatedBy    string    `json:"created_by,omitempty"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
	ExpiresAt    time.Time `json:"expires_at"`
	JoinedAt     time.Time `json:"joined_at,omitzero"`
	JoinedAs     string    `json:"joined_as,omitempty"`
	JoinerKey    string    `json:"joiner_key,omitempty"` // hex X25519 key the node joined with
	Seq          uint64    `json:"seq,omitempty"`
}

// Status of a token at now: unused, joined or expired.
func (t JoinToken) Status(now time.Time) string {
	switch {
	case !t.JoinedAt.IsZero():
		return "joined"
	case !now.Before(t.ExpiresAt):
		return "expired"
	}
	return "unused"
}

type nodeJoined struct {
	Token string `json:"token"`
	Name  string `json:"name"`
	Key   string `json:"key,omitempty"` // hex X25519 public key of the joiner
}

const joinTokenKeyPrefix = string(keyspace.JoinTokens)

func joinTokenKey(id string) string { return keyspace.JoinTokens.Key(id) }

// CreateJoinToken makes a one-time join token valid for ttl (0: an hour).
// It returns the token's view and its secret, which the log never holds.
func (cp *ControlPlane) CreateJoinToken(ctx context.Context, actor vocab.Identity, name string, ttl time.Duration) (JoinToken, []byte, uint64, error) {
	if actor.Role != vocab.RoleAdmin {
		return JoinToken{}, nil, 0, vocab.Denied("only the hub operator (admin) makes join tokens")
	}
	if ttl == 0 {
		ttl = DefaultJoinTTL
	}
	if ttl < time.Minute || ttl > MaxJoinTTL {
		return JoinToken{}, nil, 0, vocab.Invalid("ttl", "%s is not between 1m and %s", ttl, MaxJoinTTL)
	}
	if err := checkNodeName(name); err != nil {
		return JoinToken{}, nil, 0, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return JoinToken{}, nil, 0, err
	}
	verifier := vocab.JoinVerifier(secret)
	var tok JoinToken
	seq, err := cp.submit(ctx, actor, ledger.KindNodeToken, func(txn *store.Txn, now time.Time) (string, any, error) {
		m, err := readMeta(txn)
		if err != nil {
			return "", nil, err
		}
		open := 0
		err = txn.Scan(joinTokenKeyPrefix, "", func(key string, val []byte) (bool, error) {
			if !strings.HasPrefix(key, joinTokenKeyPrefix) {
				return false, nil
			}
			var t JoinToken
			if err := jsonUnmarshal(val, &t); err != nil {
				return false, err
			}
			if t.Status(now) == "unused" {
				open++
			}
			return true, nil
		})
		if err != nil {
			return "", nil, err
		}
		if open >= MaxOpenJoinTokens {
			return "", nil, vocab.Exhausted("join tokens", "%d join tokens are unused and unexpired, at most %d: use or let them expire", open, MaxOpenJoinTokens)
		}
		tok = JoinToken{ID: fmt.Sprintf("j-%d", m.Applied+1), Name: name, Verifier: hex.EncodeToString(verifier), ExpiresAt: now.Add(ttl).UTC()}
		return tok.ID, tok, nil
	})
	if err != nil {
		return JoinToken{}, nil, 0, err
	}
	t, err := cp.JoinToken(tok.ID)
	return t, secret, seq, err
}

// errJoinRefused is the one answer to a wrong token or proof: a caller
// that cannot prove the secret learns nothing about which tokens exist.
var errJoinRefused = vocab.Denied("join refused: no such join token, or the proof of its secret does not match (ask the operator for a new token: xhub node token)")

// Join admits the node of claim, whose proof is the claim signed with
// the token's secret, once, before the token expires, and records it
// under the claim's name and key. A token this node has applied is
// checked before anything is queued for the log, so guesses at it cost
// one signature check; one it has not applied yet (made a moment ago on
// another node) is checked by the appender, which has the log's head.
func (cp *ControlPlane) Join(ctx context.Context, c vocab.JoinClaim, proof []byte) (uint64, error) {
	if err := checkNodeName(c.Name); err != nil {
		return 0, err
	}
	if len(c.Key) != vocab.JoinKeyLen {
		return 0, vocab.Invalid("joiner_key", "%d bytes: a joiner's key is an X25519 public key of %d bytes", len(c.Key), vocab.JoinKeyLen)
	}
	if len(c.TokenID) > 64 {
		return 0, errJoinRefused
	}
	checked := ""
	if t, err := cp.JoinToken(c.TokenID); err == nil {
		v, _ := hex.DecodeString(t.Verifier)
		if !vocab.VerifyJoinClaim(v, c, proof) {
			return 0, errJoinRefused
		}
		checked = t.Verifier
	} else if !errors.Is(err, vocab.ErrNotFound) {
		return 0, err
	}
	key := hex.EncodeToString(c.Key)
	return cp.submit(ctx, JoinPolicy, ledger.KindNodeJoined, func(txn *store.Txn, now time.Time) (string, any, error) {
		var t JoinToken
		ok, err := txn.Get(joinTokenKey(c.TokenID), &t)
		if err != nil {
			return "", nil, err
		}
		if !ok {
			return "", nil, errJoinRefused
		}
		if t.Verifier != checked {
			if v, _ := hex.DecodeString(t.Verifier); !vocab.VerifyJoinClaim(v, c, proof) {
				return "", nil, errJoinRefused
			}
		}
		switch t.Status(now) {
		case "joined":
			return "", nil, vocab.Precondition("JOIN_TOKEN", c.TokenID, "join token %s was used at %s by node %q (key %s): a token admits one node; make a new one",
				c.TokenID, t.JoinedAt.Format(time.RFC3339), t.JoinedAs, t.JoinerFingerprint())
		case "expired":
			return "", nil, vocab.Precondition("JOIN_TOKEN", c.TokenID, "join token %s expired at %s: make a new one", c.TokenID, t.ExpiresAt.Format(time.RFC3339))
		}
		return c.TokenID, nodeJoined{Token: c.TokenID, Name: c.Name, Key: key}, nil
	})
}

// JoinerFingerprint names the key the token was used with ("" while
// unused), as the joining node logged it.
func (t JoinToken) JoinerFingerprint() string {
	b, _ := hex.DecodeString(t.JoinerKey)
	return vocab.JoinKeyFingerprint(b)
}

func checkNodeName(name string) error {
	if name == "" {
		return nil
	}
	if len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		return vocab.Invalid("name", "%q: a node name is 1 to 64 letters, digits, '.', '-' or '_'", name)
	}
	return nil
}

// JoinToken returns one token's view.
func (cp *ControlPlane) JoinToken(id string) (JoinToken, error) {
	var t JoinToken
	var ok bool
	err := cp.st.View(func(txn *store.Txn) (err error) {
		ok, err = txn.Get(joinTokenKey(id), &t)
		return err
	})
	if err == nil && !ok {
		err = vocab.NotFound("join token %s does not exist", id)
	}
	return t, err
}

// JoinTokens lists every join token, oldest first (they are few: at most
// MaxOpenJoinTokens open at once).
func (cp *ControlPlane) JoinTokens() ([]JoinToken, error) {
	var out []JoinToken
	err := cp.st.View(func(txn *store.Txn) error {
		return scanPage(txn, joinTokenKeyPrefix, "", 1<<20, func(t JoinToken) { out = append(out, t) })
	})
	return out, err
}

// applyNodeToken records a token (node.token).
func (cp *ControlPlane) applyNodeToken(txn views, e ledger.Entry) (func(), error) {
	var t JoinToken
	if err := jsonUnmarshal(e.Body, &t); err != nil {
		return nil, err
	}
	if ok, err := txn.Get(joinTokenKey(t.ID), &JoinToken{}); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("join token %s exists", t.ID)
	}
	t.CreatedBy, t.CreatedAt, t.Seq = e.Actor, e.Time, e.Seq
	return nil, txn.Put(joinTokenKey(t.ID), t)
}

// applyNodeJoined marks a token used (node.joined).
func (cp *ControlPlane) applyNodeJoined(txn views, e ledger.Entry) (func(), error) {
	var j nodeJoined
	if err := jsonUnmarshal(e.Body, &j); err != nil {
		return nil, err
	}
	var t JoinToken
	if ok, err := txn.Get(joinTokenKey(j.Token), &t); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("join token %s does not exist", j.Token)
	}
	if st := t.Status(e.Time); st != "unused" {
		return nil, fmt.Errorf("join token %s is %s", j.Token, st)
	}
	t.JoinedAt, t.JoinedAs, t.JoinerKey = e.Time, j.Name, j.Key
	return nil, txn.Put(joinTokenKey(t.ID), t)
}
