package exchange

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/schemas"
)

// Entry kinds of the control-plane log.
const (
	KindHubInit          = "hub.init"
	KindDeptAdded        = "dept.added"
	KindCredIssued       = "cred.issued"
	KindCredRevoked      = "cred.revoked"
	KindSchemaRegistered = "schema.registered"
	KindSchemaCompat     = "schema.compat"
	KindDatasetPublished = "dataset.published"
	KindDatasetRetired   = "dataset.retired"
)

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

type credRevoked struct {
	Serial string `json:"serial"`
	Reason string `json:"reason"`
}

// Subject is a schema subject's settings.
type Subject struct {
	Subject catalog.DatasetID `json:"subject"`
	Compat  schemas.Mode      `json:"compat"`
	Latest  int               `json:"latest"`
}

// SchemaVersion is one registered version of a subject.
type SchemaVersion struct {
	Subject      catalog.DatasetID `json:"subject"`
	Version      int               `json:"version"`
	Schema       json.RawMessage   `json:"schema"`
	Fields       []catalog.Field   `json:"fields"`
	Compat       schemas.Mode      `json:"compat"`
	RegisteredAt time.Time         `json:"registered_at"`
	Seq          uint64            `json:"seq"`
}

type schemaCompat struct {
	Subject catalog.DatasetID `json:"subject"`
	Compat  schemas.Mode      `json:"compat"`
}

type datasetRetired struct {
	ID     catalog.DatasetID `json:"id"`
	Reason string            `json:"reason"`
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// apply materialises one entry. It validates before it writes, so an
// error leaves the transaction untouched; the returned function updates
// the in-memory caches after the transaction commits.
func (cp *ControlPlane) apply(txn *store.Txn, e ledger.Entry) (func(), error) {
	switch e.Kind {
	case KindHubInit:
		var b HubInit
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return nil, err
		}
		if e.Seq != 1 {
			return nil, fmt.Errorf("hub.init at %d", e.Seq)
		}
		return nil, txn.Put(keyInit, b)

	case KindDeptAdded:
		var d catalog.Department
		if err := json.Unmarshal(e.Body, &d); err != nil {
			return nil, err
		}
		var old catalog.Department
		if ok, err := txn.Get(deptKey(d.ID), &old); err != nil || ok {
			return nil, fmt.Errorf("department %s exists", d.ID)
		}
		d.CreatedAt, d.Seq = e.Time, e.Seq
		return nil, txn.Put(deptKey(d.ID), d)

	case KindCredIssued:
		var c Credential
		if err := json.Unmarshal(e.Body, &c); err != nil {
			return nil, err
		}
		c.IssuedAt, c.Seq = e.Time, e.Seq
		if err := txn.Put(credKey(c.Serial), c); err != nil {
			return nil, err
		}
		return func() { cp.creds[c.Serial] = c }, nil

	case KindCredRevoked:
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

	case KindSchemaCompat:
		var b schemaCompat
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return nil, err
		}
		subj := Subject{Subject: b.Subject}
		if _, err := txn.Get(subjectKey(b.Subject), &subj); err != nil {
			return nil, err
		}
		subj.Compat = b.Compat
		return nil, txn.Put(subjectKey(b.Subject), subj)

	case KindSchemaRegistered:
		var v SchemaVersion
		if err := json.Unmarshal(e.Body, &v); err != nil {
			return nil, err
		}
		subj := Subject{Subject: v.Subject, Compat: schemas.DefaultMode}
		if _, err := txn.Get(subjectKey(v.Subject), &subj); err != nil {
			return nil, err
		}
		if v.Version != subj.Latest+1 {
			return nil, fmt.Errorf("schema %s version %d after %d", v.Subject, v.Version, subj.Latest)
		}
		subj.Latest = v.Version
		if v.Compat != "" {
			subj.Compat = v.Compat
		}
		v.RegisteredAt, v.Seq = e.Time, e.Seq
		if err := txn.Put(versionKey(v.Subject, v.Version), v); err != nil {
			return nil, err
		}
		return nil, txn.Put(subjectKey(v.Subject), subj)

	case KindDatasetPublished:
		var d catalog.Dataset
		if err := json.Unmarshal(e.Body, &d); err != nil {
			return nil, err
		}
		var old catalog.Dataset
		ok, err := txn.Get(datasetKey(d.ID), &old)
		if err != nil {
			return nil, err
		}
		d.PublishedAt = e.Time
		if ok && old.Status == catalog.StatusPublished {
			d.PublishedAt = old.PublishedAt
		}
		d.Status, d.UpdatedAt, d.Seq = catalog.StatusPublished, e.Time, e.Seq
		if err := txn.Put(datasetKey(d.ID), d); err != nil {
			return nil, err
		}
		return func() { cp.index.Put(d) }, nil

	case KindDatasetRetired:
		var r datasetRetired
		if err := json.Unmarshal(e.Body, &r); err != nil {
			return nil, err
		}
		var d catalog.Dataset
		if ok, err := txn.Get(datasetKey(r.ID), &d); err != nil || !ok {
			return nil, fmt.Errorf("dataset %s unknown", r.ID)
		}
		d.Status, d.UpdatedAt, d.Seq = catalog.StatusRetired, e.Time, e.Seq
		end, err := cp.endForRetirement(txn, e, d.ID)
		if err != nil {
			return nil, err
		}
		if err := txn.Put(datasetKey(d.ID), d); err != nil {
			return nil, err
		}
		return func() { cp.index.Put(d); end() }, nil
	}
	if after, ok, err := cp.applyShare(txn, e); ok {
		return after, err
	}
	return nil, fmt.Errorf("unknown entry kind %q", e.Kind)
}
