package exchange

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/fault"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/schemas"
)

// Limits on control-plane input.
const (
	MaxReasonLen     = 1000
	MaxCredValidDays = 3650
)

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
			return true, fault.Precondition("HUB_IDENTITY", "ca", "this node's certificate authority (sha256 %s) is not the hub's (sha256 %s): copy the pki folder of the hub's first node into this node's data dir", init.CASHA256, have.CASHA256)
		}
		if have.VerifierKey != init.VerifierKey {
			return true, fault.Precondition("HUB_IDENTITY", "ledger_key", "this node's ledger key is not the hub's: copy the pki folder of the hub's first node into this node's data dir")
		}
		return true, nil
	}
	if ok, err := check(); ok || err != nil {
		return err
	}
	_, err := cp.submit(ctx, HubPolicy, KindHubInit, func(txn *store.Txn, _ time.Time) (string, any, error) {
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

var errInitDone = &fault.Error{Kind: fault.KindExists, Msg: "hub already initialised"}

// AddDepartment registers a department. Admin only.
func (cp *ControlPlane) AddDepartment(ctx context.Context, actor vocab.Identity, id catalog.DeptID, name string) (catalog.Department, uint64, error) {
	if actor.Role != vocab.RoleAdmin {
		return catalog.Department{}, 0, fault.Denied("only the hub operator (admin) adds departments")
	}
	if _, err := catalog.ParseDeptID(string(id)); err != nil {
		return catalog.Department{}, 0, err
	}
	if id == catalog.HubDept {
		return catalog.Department{}, 0, fault.Invalid("department", "%q is reserved for the hub operator", id)
	}
	name = strings.TrimSpace(name)
	if err := catalog.ValidateName(name); err != nil {
		return catalog.Department{}, 0, err
	}
	seq, err := cp.submit(ctx, actor, KindDeptAdded, func(txn *store.Txn, _ time.Time) (string, any, error) {
		var old catalog.Department
		if ok, err := txn.Get(deptKey(id), &old); err != nil {
			return "", nil, err
		} else if ok {
			return "", nil, fault.Exists("department %s already exists (%s)", id, old.Name)
		}
		return string(id), catalog.Department{ID: id, Name: name}, nil
	})
	if err != nil {
		return catalog.Department{}, 0, err
	}
	d, err := cp.Department(id)
	return d, seq, err
}

// CheckIssue says whether actor may issue a credential for id, before the
// hub signs anything.
func (cp *ControlPlane) CheckIssue(actor vocab.Identity, id vocab.Identity, validDays int) error {
	if _, err := vocab.ParseIdentity(id.URI()); err != nil {
		return err
	}
	if validDays < 1 || validDays > MaxCredValidDays {
		return fault.Invalid("valid_days", "%d is not between 1 and %d", validDays, MaxCredValidDays)
	}
	switch {
	case actor.Role == vocab.RoleAdmin:
	case actor.Role == vocab.RoleOfficer && id.Role == vocab.RoleSystem && id.Dept == actor.Dept:
	default:
		return fault.Denied("%s may not issue a %s credential for department %s: the hub operator issues credentials; an officer only system credentials of its own department", actor.URI(), id.Role, id.Dept)
	}
	if id.Dept == catalog.HubDept {
		return nil
	}
	_, err := cp.Department(id.Dept)
	return err
}

// RecordCredential appends the issue of a signed certificate.
func (cp *ControlPlane) RecordCredential(ctx context.Context, actor vocab.Identity, c Credential) (uint64, error) {
	id, err := vocab.ParseIdentity(c.Identity)
	if err != nil {
		return 0, err
	}
	c.Dept, c.Role, c.Name = id.Dept, id.Role, id.Name
	return cp.submit(ctx, actor, KindCredIssued, func(txn *store.Txn, _ time.Time) (string, any, error) {
		if id.Dept != catalog.HubDept {
			if ok, err := txn.Get(deptKey(id.Dept), &catalog.Department{}); err != nil || !ok {
				return "", nil, fault.NotFound("department %s is not registered", id.Dept)
			}
		}
		if ok, err := txn.Get(credKey(c.Serial), &Credential{}); err != nil || ok {
			return "", nil, fault.Exists("credential serial %s already recorded", c.Serial)
		}
		return string(id.Dept), c, nil
	})
}

// RevokeCredential stops a credential at once on every node that has
// applied the entry. Admin, or an officer for its own department's
// system credentials.
func (cp *ControlPlane) RevokeCredential(ctx context.Context, actor vocab.Identity, serial, reason string) (Credential, uint64, error) {
	serial = vocab.NormalizeSerial(serial)
	if serial == "" {
		return Credential{}, 0, fault.Invalid("serial", "is required (hex, as openssl x509 -serial prints it)")
	}
	if err := checkReason(reason, false); err != nil {
		return Credential{}, 0, err
	}
	seq, err := cp.submit(ctx, actor, KindCredRevoked, func(txn *store.Txn, _ time.Time) (string, any, error) {
		var c Credential
		if ok, err := txn.Get(credKey(serial), &c); err != nil {
			return "", nil, err
		} else if !ok {
			return "", nil, fault.NotFound("credential %s is not known", serial)
		}
		if c.Revoked {
			return "", nil, fault.Precondition("CREDENTIAL_STATE", serial, "credential %s is already revoked", serial)
		}
		if actor.Role != vocab.RoleAdmin && !(actor.Role == vocab.RoleOfficer && c.Dept == actor.Dept && c.Role == vocab.RoleSystem) {
			return "", nil, fault.Denied("%s may not revoke credential %s of %s", actor.URI(), serial, c.Identity)
		}
		return string(c.Dept), credRevoked{Serial: serial, Reason: reason}, nil
	})
	if err != nil {
		return Credential{}, 0, err
	}
	c, _ := cp.Credential(serial)
	return c, seq, nil
}

func checkReason(reason string, required bool) error {
	r := strings.TrimSpace(reason)
	if required && r == "" {
		return fault.Invalid("reason", "is required")
	}
	if len(r) > MaxReasonLen {
		return fault.Invalid("reason", "is %d bytes, at most %d", len(r), MaxReasonLen)
	}
	return nil
}

// mayActFor checks that actor is an officer of the department that owns a subject or dataset.
func mayActFor(actor vocab.Identity, owner catalog.DeptID, what string) error {
	if actor.Role != vocab.RoleOfficer {
		return fault.Denied("%s: only a data officer of %s may %s (caller is %s)", actor.URI(), owner, what, actor.Role)
	}
	if actor.Dept != owner {
		return fault.Denied("%s: an officer of %s may not %s of department %s", actor.URI(), actor.Dept, what, owner)
	}
	return nil
}

// SchemaVerdict is the result of a compatibility check.
type SchemaVerdict struct {
	Compat      schemas.Mode // the mode checked under
	Current     schemas.Mode // the subject's mode now
	Problems    []schemas.Problem
	NextVersion int
	Existing    *SchemaVersion // an identical schema already registered
}

// CheckSchema checks a candidate against a subject without registering it.
// compat, if not empty, is the mode to check under instead of the subject's.
func (cp *ControlPlane) CheckSchema(subject catalog.DatasetID, raw []byte, compat string) (SchemaVerdict, *schemas.Schema, error) {
	var v SchemaVerdict
	var sch *schemas.Schema
	err := cp.st.View(func(txn *store.Txn) (err error) {
		v, sch, err = cp.checkSchema(txn, subject, raw, compat)
		return err
	})
	return v, sch, err
}

func (cp *ControlPlane) checkSchema(txn *store.Txn, subject catalog.DatasetID, raw []byte, compat string) (SchemaVerdict, *schemas.Schema, error) {
	if _, err := catalog.ParseDatasetID(string(subject)); err != nil {
		return SchemaVerdict{}, nil, fault.Invalid("subject", "must be a dataset id <department>.<name>: %v", err)
	}
	cand, err := schemas.Parse(raw)
	if err != nil {
		return SchemaVerdict{}, nil, err
	}
	subj := Subject{Subject: subject, Compat: schemas.DefaultMode}
	if _, err := txn.Get(subjectKey(subject), &subj); err != nil {
		return SchemaVerdict{}, nil, err
	}
	v := SchemaVerdict{Compat: subj.Compat, Current: subj.Compat, NextVersion: subj.Latest + 1}
	if compat != "" {
		if v.Compat, err = schemas.ParseMode(compat); err != nil {
			return SchemaVerdict{}, nil, err
		}
	}
	var earlier []*schemas.Schema
	for ver := 1; ver <= subj.Latest; ver++ {
		var sv SchemaVersion
		if ok, err := txn.Get(versionKey(subject, ver), &sv); err != nil || !ok {
			return SchemaVerdict{}, nil, fault.NotFound("schema %s version %d missing from the view", subject, ver)
		}
		s, err := cp.cachedSchema(sv)
		if err != nil {
			return SchemaVerdict{}, nil, err
		}
		if s.Equal(cand) && v.Existing == nil {
			svc := sv
			v.Existing = &svc
		}
		earlier = append(earlier, s)
	}
	v.Problems = schemas.Check(v.Compat, earlier, cand)
	return v, cand, nil
}

// RegisterSchema registers a new version under subject, after checking it
// under the subject's mode (changed first to compat, if given). An
// identical schema returns the existing version and appends nothing.
func (cp *ControlPlane) RegisterSchema(ctx context.Context, actor vocab.Identity, subject catalog.DatasetID, raw []byte, compat string) (SchemaVersion, bool, uint64, error) {
	if _, err := catalog.ParseDatasetID(string(subject)); err != nil {
		return SchemaVersion{}, false, 0, fault.Invalid("subject", "must be a dataset id <department>.<name>: %v", err)
	}
	if err := mayActFor(actor, subject.Owner(), "register schemas"); err != nil {
		return SchemaVersion{}, false, 0, err
	}
	var mode schemas.Mode
	if compat != "" {
		var err error
		if mode, err = schemas.ParseMode(compat); err != nil {
			return SchemaVersion{}, false, 0, err
		}
	}
	var existing *SchemaVersion
	seq, err := cp.submitKind(ctx, actor, func(txn *store.Txn, _ time.Time) (string, string, any, error) {
		v, cand, err := cp.checkSchema(txn, subject, raw, string(mode))
		if err != nil {
			return "", "", nil, err
		}
		if v.Existing != nil {
			existing = v.Existing
			if mode != "" && mode != v.Current {
				return KindSchemaCompat, string(subject), schemaCompat{Subject: subject, Compat: mode}, nil
			}
			return "", "", nil, errExisting
		}
		if len(v.Problems) > 0 {
			return "", "", nil, incompatible(subject, v)
		}
		return KindSchemaRegistered, string(subject), SchemaVersion{
			Subject: subject, Version: v.NextVersion, Schema: json.RawMessage(cand.Canonical()),
			Fields: cand.Fields(), Compat: mode,
		}, nil
	})
	if err == errExisting {
		return *existing, true, existing.Seq, nil
	}
	if err != nil {
		return SchemaVersion{}, false, 0, err
	}
	if existing != nil { // identical schema, mode changed
		return *existing, true, seq, nil
	}
	sv, err := cp.SchemaVersion(subject, 0)
	return sv, false, seq, err
}

var errExisting = &fault.Error{Kind: fault.KindExists, Msg: "identical schema exists"}

func incompatible(subject catalog.DatasetID, v SchemaVerdict) error {
	e := &fault.Error{Kind: fault.KindPrecondition, Msg: "schema is incompatible with " + string(subject) + " under " + string(v.Compat) + ": "}
	var parts []string
	for _, p := range v.Problems {
		e.Violations = append(e.Violations, fault.Violation{Type: "SCHEMA_COMPATIBILITY", Field: p.Path, Description: p.String()})
		parts = append(parts, p.String())
	}
	e.Msg += strings.Join(parts, "; ")
	return e
}

// PublishDataset creates or updates a dataset's catalog entry. Only an
// officer of the owning department; the schema subject must belong to the
// same department and exist.
func (cp *ControlPlane) PublishDataset(ctx context.Context, actor vocab.Identity, d catalog.Dataset) (catalog.Dataset, uint64, error) {
	if err := d.ValidateMetadata(); err != nil {
		return catalog.Dataset{}, 0, err
	}
	if err := mayActFor(actor, d.ID.Owner(), "publish datasets"); err != nil {
		return catalog.Dataset{}, 0, err
	}
	subject, err := catalog.ParseDatasetID(d.SchemaSubject)
	if err != nil {
		return catalog.Dataset{}, 0, fault.Invalid("schema", "subject %q: %v", d.SchemaSubject, err)
	}
	if subject.Owner() != d.ID.Owner() {
		return catalog.Dataset{}, 0, fault.Invalid("schema", "subject %s belongs to %s, not to the dataset's owner %s", subject, subject.Owner(), d.ID.Owner())
	}
	if d.SchemaVersion < 0 {
		return catalog.Dataset{}, 0, fault.Invalid("schema_version", "%d is negative", d.SchemaVersion)
	}
	seq, err := cp.submit(ctx, actor, KindDatasetPublished, func(txn *store.Txn, _ time.Time) (string, any, error) {
		var subj Subject
		if ok, err := txn.Get(subjectKey(subject), &subj); err != nil {
			return "", nil, err
		} else if !ok || subj.Latest == 0 {
			return "", nil, fault.Precondition("SCHEMA_MISSING", string(subject), "schema subject %s has no registered version: register it first (xhub schema register)", subject)
		}
		ver := d.SchemaVersion
		if ver == 0 {
			ver = subj.Latest
		}
		var sv SchemaVersion
		if ok, err := txn.Get(versionKey(subject, ver), &sv); err != nil {
			return "", nil, err
		} else if !ok {
			return "", nil, fault.NotFound("schema %s has no version %d (latest is %d)", subject, ver, subj.Latest)
		}
		var old catalog.Dataset
		if ok, err := txn.Get(datasetKey(d.ID), &old); err != nil {
			return "", nil, err
		} else if ok && old.SchemaVersion > ver && old.Status == catalog.StatusPublished {
			return "", nil, fault.Precondition("SCHEMA_VERSION", string(d.ID), "dataset %s already uses schema version %d; it cannot go back to %d", d.ID, old.SchemaVersion, ver)
		}
		body := d
		body.SchemaSubject, body.SchemaVersion, body.Fields = string(subject), ver, sv.Fields
		body.Status, body.Seq = "", 0
		body.PublishedAt, body.UpdatedAt = time.Time{}, time.Time{}
		return string(d.ID), body, nil
	})
	if err != nil {
		return catalog.Dataset{}, 0, err
	}
	out, err := cp.Dataset(d.ID)
	return out, seq, err
}

// RetireDataset marks a dataset retired. Only an officer of its owner.
func (cp *ControlPlane) RetireDataset(ctx context.Context, actor vocab.Identity, id catalog.DatasetID, reason string) (catalog.Dataset, uint64, error) {
	if _, err := catalog.ParseDatasetID(string(id)); err != nil {
		return catalog.Dataset{}, 0, err
	}
	if err := mayActFor(actor, id.Owner(), "retire datasets"); err != nil {
		return catalog.Dataset{}, 0, err
	}
	if err := checkReason(reason, false); err != nil {
		return catalog.Dataset{}, 0, err
	}
	seq, err := cp.submit(ctx, actor, KindDatasetRetired, func(txn *store.Txn, _ time.Time) (string, any, error) {
		var d catalog.Dataset
		if ok, err := txn.Get(datasetKey(id), &d); err != nil {
			return "", nil, err
		} else if !ok {
			return "", nil, fault.NotFound("dataset %s is not in the catalog", id)
		}
		if d.Status == catalog.StatusRetired {
			return "", nil, fault.Precondition("DATASET_STATE", string(id), "dataset %s is already retired", id)
		}
		return string(id), datasetRetired{ID: id, Reason: strings.TrimSpace(reason)}, nil
	})
	if err != nil {
		return catalog.Dataset{}, 0, err
	}
	out, err := cp.Dataset(id)
	return out, seq, err
}
