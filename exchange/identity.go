package exchange

import (
	"context"
	"encoding/json"
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

// This file is the state machine of identity: the hub's initialisation
// (its CA and ledger key) and the credentials it issues and revokes.

// The entry kinds of identity (the hub's own, and the credentials it issues) are named in exchange/ledger (kinds.go).

// HubInit is the first entry: it pins the hub's certificate authority and
// ledger key, so a node started with another CA refuses to join.
type HubInit struct {
	CASHA256    string `json:"ca_sha256"`
	VerifierKey string `json:"verifier_key"`
}

// Credential is an issued client certificate.
type Credential struct {
	Serial       string         `json:"serial"`
	Identity     string         `json:"identity"`
	Dept         catalog.DeptID `json:"dept"`
	Role         vocab.Role     `json:"role"`
	Name         string         `json:"name"`
	NotAfter     time.Time      `json:"not_after"`
	IssuedAt     time.Time      `json:"issued_at"`
	Revoked      bool           `json:"revoked,omitempty"`
	RevokedAt    time.Time      `json:"revoked_at,omitzero"`
	RevokeReason string         `json:"revoke_reason,omitempty"`
	Seq          uint64         `json:"seq"`
}

// credIssued is the body of a cred.issued entry: the certificate the hub
// signed. When it was recorded, and by which entry (Credential.IssuedAt,
// Seq), are the entry's own, set by the apply. (Bodies appended before
// this type carry them as zero values; the apply ignores them.)
type credIssued struct {
	Serial   string         `json:"serial"`
	Identity string         `json:"identity"`
	Dept     catalog.DeptID `json:"dept"`
	Role     vocab.Role     `json:"role"`
	Name     string         `json:"name"`
	NotAfter time.Time      `json:"not_after"`
}

type credRevoked struct {
	Serial string `json:"serial"`
	Reason string `json:"reason"`
}

// HubPolicy is the actor of entries the hub appends on its own account
// (initialisation, expiry and open-sharing grants).
var HubPolicy = vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "policy"}

// Init appends the first entry if the log is empty, pinning the hub's CA
// and ledger key. On a log that already has it, it checks that they match.
func (cp *ControlPlane) Init(ctx context.Context, init HubInit) error {
	if err := cp.CatchUp(ctx); err != nil {
		return err
	}
	check := func() (bool, error) {
		var have HubInit
		var ok bool
		err := cp.st.View(func(txn *store.Txn) (err error) {
			ok, err = txn.Get(keyInit, &have)
			return err
		})
		if err != nil || !ok {
			return false, err
		}
		if have.CASHA256 != init.CASHA256 {
			return true, vocab.Precondition("HUB_IDENTITY", "ca", "this node's certificate authority (sha256 %s) is not the hub's (sha256 %s): a node joins a running hub with a token (xhub node token; then xhub serve --join-file FILE on an empty data dir)", init.CASHA256, have.CASHA256)
		}
		if have.VerifierKey != init.VerifierKey {
			return true, vocab.Precondition("HUB_IDENTITY", "ledger_key", "this node's ledger key is not the hub's: a node joins a running hub with a token (xhub node token; then xhub serve --join-file FILE on an empty data dir)")
		}
		return true, nil
	}
	if ok, err := check(); ok || err != nil {
		return err
	}
	_, err := cp.submit(ctx, HubPolicy, ledger.KindHubInit, func(txn *store.Txn, _ time.Time) (string, any, error) {
		var have HubInit
		if ok, err := txn.Get(keyInit, &have); err != nil || ok {
			return "", nil, errInitDone
		}
		return "hub", init, nil
	})
	if err == errInitDone {
		err = nil
	}
	if err != nil {
		return err
	}
	_, err = check()
	return err
}

var errInitDone = &vocab.Error{Kind: vocab.KindExists, Msg: "hub already initialised"}

// IsNotTheHub says whether err is Init's refusal of a node whose CA or
// ledger key is not the one the log's hub.init pins.
func IsNotTheHub(err error) bool {
	var fe *vocab.Error
	if !errors.As(err, &fe) {
		return false
	}
	for _, v := range fe.Violations {
		if v.Type == "HUB_IDENTITY" {
			return true
		}
	}
	return false
}

// CheckIssue says whether actor may issue a credential for id, before the
// hub signs anything. A department not registered in the applied state is
// looked for again once this node has applied the log as it stands (one
// another node added and acknowledged a moment ago is then found).
func (cp *ControlPlane) CheckIssue(ctx context.Context, actor vocab.Identity, id vocab.Identity, validDays int) error {
	if _, err := vocab.ParseIdentity(id.URI()); err != nil {
		return err
	}
	if validDays < 1 || validDays > MaxCredValidDays {
		return vocab.Invalid("valid_days", "%d is not between 1 and %d", validDays, MaxCredValidDays)
	}
	switch {
	case actor.Role == vocab.RoleAdmin:
	case actor.Role == vocab.RoleOfficer && id.Role == vocab.RoleSystem && id.Dept == actor.Dept:
	default:
		return vocab.Denied("%s may not issue a %s credential for department %s: the hub operator issues credentials; an officer only system credentials of its own department", actor.URI(), id.Role, id.Dept)
	}
	if id.Dept == catalog.HubDept {
		return nil
	}
	_, err := cp.Department(id.Dept)
	if vocab.KindOf(err) == vocab.KindNotFound {
		if cerr := cp.CatchUp(ctx); cerr != nil {
			return cerr
		}
		_, err = cp.Department(id.Dept)
	}
	return err
}

// RecordCredential appends the issue of a signed certificate.
func (cp *ControlPlane) RecordCredential(ctx context.Context, actor vocab.Identity, c Credential) (uint64, error) {
	id, err := vocab.ParseIdentity(c.Identity)
	if err != nil {
		return 0, err
	}
	c.Dept, c.Role, c.Name = id.Dept, id.Role, id.Name
	return cp.submit(ctx, actor, ledger.KindCredIssued, func(txn *store.Txn, _ time.Time) (string, any, error) {
		if id.Dept != catalog.HubDept {
			if ok, err := txn.Get(catalog.DeptKey(id.Dept), &catalog.Department{}); err != nil || !ok {
				return "", nil, vocab.NotFound("department %s is not registered", id.Dept)
			}
		}
		if ok, err := txn.Get(credKey(c.Serial), &Credential{}); err != nil || ok {
			return "", nil, vocab.Exists("credential serial %s already recorded", c.Serial)
		}
		return string(id.Dept), credIssued{Serial: c.Serial, Identity: c.Identity, Dept: c.Dept, Role: c.Role, Name: c.Name, NotAfter: c.NotAfter}, nil
	})
}

// RevokeCredential stops a credential at once on every node that has
// applied the entry. Admin, or an officer for its own department's
// system credentials.
func (cp *ControlPlane) RevokeCredential(ctx context.Context, actor vocab.Identity, serial, reason string) (Credential, uint64, error) {
	serial = vocab.NormalizeSerial(serial)
	if serial == "" {
		return Credential{}, 0, vocab.Invalid("serial", "is required (hex, as openssl x509 -serial prints it)")
	}
	reason = strings.TrimSpace(reason) // stored as checked
	if err := checkReason(reason, false); err != nil {
		return Credential{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindCredRevoked, func(txn *store.Txn, _ time.Time) (string, any, error) {
		var c Credential
		if ok, err := txn.Get(credKey(serial), &c); err != nil {
			return "", nil, err
		} else if !ok {
			return "", nil, vocab.NotFound("credential %s is not known", serial)
		}
		if c.Revoked {
			return "", nil, vocab.Precondition("CREDENTIAL_STATE", serial, "credential %s is already revoked", serial)
		}
		if actor.Role != vocab.RoleAdmin && !(actor.Role == vocab.RoleOfficer && c.Dept == actor.Dept && c.Role == vocab.RoleSystem) {
			return "", nil, vocab.Denied("%s may not revoke credential %s of %s", actor.URI(), serial, c.Identity)
		}
		return string(c.Dept), credRevoked{Serial: serial, Reason: reason}, nil
	}))
	if err != nil {
		return Credential{}, 0, err
	}
	c, _ := cp.Credential(serial)
	return c, seq, nil
}

// Credential returns one credential from the in-memory view.
func (cp *ControlPlane) Credential(serial string) (Credential, bool) {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	c, ok := cp.creds[serial]
	return c, ok
}

// IdentitiesWithCredential is the set of identities (SPIFFE URIs) that
// hold at least one credential not revoked.
func (cp *ControlPlane) IdentitiesWithCredential() map[string]bool {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	out := make(map[string]bool)
	for _, c := range cp.creds {
		if !c.Revoked {
			out[c.Identity] = true
		}
	}
	return out
}

// Credentials lists credentials (of one department, if dept is set) in
// serial order after the given serial.
func (cp *ControlPlane) Credentials(dept catalog.DeptID, after string, limit int) ([]Credential, string, error) {
	var out []Credential
	err := cp.st.View(func(txn *store.Txn) error {
		return txn.Scan(string(keyspace.Credentials), afterKey(string(keyspace.Credentials), after), func(_ string, val []byte) (bool, error) {
			var c Credential
			if err := jsonUnmarshal(val, &c); err != nil {
				return false, err
			}
			if dept == "" || c.Dept == dept {
				out = append(out, c)
			}
			return len(out) <= limit, nil
		})
	})
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Serial
	}
	return out, next, err
}

func credKey(serial string) string { return keyspace.Credentials.Key(serial) }

// applyHubInit applies a hub.init entry.
func (cp *ControlPlane) applyHubInit(txn views, e ledger.Entry) (func(), error) {
	var b HubInit
	if err := json.Unmarshal(e.Body, &b); err != nil {
		return nil, err
	}
	if e.Seq != 1 {
		return nil, fmt.Errorf("hub.init at %d", e.Seq)
	}
	return nil, txn.Put(keyInit, b)
}

// applyCredIssued applies a cred.issued entry.
func (cp *ControlPlane) applyCredIssued(txn views, e ledger.Entry) (func(), error) {
	var b credIssued
	if err := json.Unmarshal(e.Body, &b); err != nil {
		return nil, err
	}
	c := Credential{Serial: b.Serial, Identity: b.Identity, Dept: b.Dept, Role: b.Role, Name: b.Name, NotAfter: b.NotAfter, IssuedAt: e.Time, Seq: e.Seq}
	if err := txn.Put(credKey(c.Serial), c); err != nil {
		return nil, err
	}
	return func() { cp.creds[c.Serial] = c }, nil
}

// applyCredRevoked applies a cred.revoked entry.
func (cp *ControlPlane) applyCredRevoked(txn views, e ledger.Entry) (func(), error) {
	var r credRevoked
	if err := json.Unmarshal(e.Body, &r); err != nil {
		return nil, err
	}
	var c Credential
	if ok, err := txn.Get(credKey(r.Serial), &c); err != nil || !ok {
		return nil, fmt.Errorf("credential %s unknown", r.Serial)
	}
	c.Revoked, c.RevokedAt, c.RevokeReason, c.Seq = true, e.Time, r.Reason, e.Seq
	if err := txn.Put(credKey(c.Serial), c); err != nil {
		return nil, err
	}
	return func() { cp.creds[c.Serial] = c }, nil
}
