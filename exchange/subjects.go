package exchange

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/schemas"
)

// This file runs the schema registry's commands: registering versions and
// changing compatibility modes (the state machine and the rules are in
// package schemas).

// SchemaVerdict is the result of a compatibility check.
type SchemaVerdict struct {
	Compat      schemas.Mode // the mode checked under
	Current     schemas.Mode // the subject's mode now
	Problems    []schemas.Problem
	NextVersion int
	Existing    *schemas.Version // an identical schema already registered
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
		return SchemaVerdict{}, nil, vocab.Invalid("subject", "must be a dataset id <department>.<name>: %v", err)
	}
	cand, err := schemas.Parse(raw)
	if err != nil {
		return SchemaVerdict{}, nil, err
	}
	if err := cand.CheckFields(); err != nil {
		return SchemaVerdict{}, nil, err
	}
	subj := schemas.Subject{Subject: subject, Compat: schemas.DefaultMode}
	if _, err := txn.Get(schemas.SubjectKey(subject), &subj); err != nil {
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
		var sv schemas.Version
		if ok, err := txn.Get(schemas.VersionKey(subject, ver), &sv); err != nil || !ok {
			return SchemaVerdict{}, nil, vocab.NotFound("schema %s version %d missing from the view", subject, ver)
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
func (cp *ControlPlane) RegisterSchema(ctx context.Context, actor vocab.Identity, subject catalog.DatasetID, raw []byte, compat string) (schemas.Version, bool, uint64, error) {
	if _, err := catalog.ParseDatasetID(string(subject)); err != nil {
		return schemas.Version{}, false, 0, vocab.Invalid("subject", "must be a dataset id <department>.<name>: %v", err)
	}
	if err := mayActFor(actor, subject.Owner(), "register schemas"); err != nil {
		return schemas.Version{}, false, 0, err
	}
	var mode schemas.Mode
	if compat != "" {
		var err error
		if mode, err = schemas.ParseMode(compat); err != nil {
			return schemas.Version{}, false, 0, err
		}
	}
	var existing *schemas.Version
	seq, err := cp.submitKind(ctx, actor, func(txn *store.Txn, _ time.Time) (string, string, any, error) {
		v, cand, err := cp.checkSchema(txn, subject, raw, string(mode))
		if err != nil {
			return "", "", nil, err
		}
		if v.Existing != nil {
			existing = v.Existing
			if mode != "" && mode != v.Current {
				return ledger.KindSchemaCompat, string(subject), schemas.CompatChange{Subject: subject, Compat: mode}, nil
			}
			return "", "", nil, errExisting
		}
		if err := schemas.VersionRoom(subject, v.NextVersion); err != nil {
			return "", "", nil, err
		}
		if len(v.Problems) > 0 {
			return "", "", nil, incompatible(subject, v)
		}
		return ledger.KindSchemaRegistered, string(subject), schemas.Registered{
			Subject: subject, Version: v.NextVersion, Schema: json.RawMessage(cand.Canonical()),
			Fields: cand.Fields(), Compat: mode,
		}, nil
	})
	if err == errExisting {
		return *existing, true, existing.Seq, nil
	}
	if r, ok := err.(*Replayed); ok {
		// A retried call: answer with the version that entry registered.
		vs, _, verr := cp.SchemaVersions(subject)
		if verr != nil {
			return schemas.Version{}, false, 0, verr
		}
		for _, v := range vs {
			if v.Seq == r.Seq {
				return v, false, r.Seq, nil
			}
		}
		return schemas.Version{}, false, 0, err
	}
	if err != nil {
		return schemas.Version{}, false, 0, err
	}
	if existing != nil { // identical schema, mode changed
		return *existing, true, seq, nil
	}
	sv, err := cp.SchemaVersion(subject, 0)
	return sv, false, seq, err
}

var errExisting = &vocab.Error{Kind: vocab.KindExists, Msg: "identical schema exists"}

func incompatible(subject catalog.DatasetID, v SchemaVerdict) error {
	e := &vocab.Error{Kind: vocab.KindPrecondition, Msg: "schema is incompatible with " + string(subject) + " under " + string(v.Compat) + ": "}
	var parts []string
	for _, p := range v.Problems {
		e.Violations = append(e.Violations, vocab.Violation{Type: "SCHEMA_COMPATIBILITY", Field: p.Path, Description: p.String()})
		parts = append(parts, p.String())
	}
	e.Msg += strings.Join(parts, "; ")
	return e
}

// schemas.Subject returns a schema subject's settings.
func (cp *ControlPlane) Subject(subject catalog.DatasetID) (schemas.Subject, error) {
	var s schemas.Subject
	var ok bool
	err := cp.st.View(func(txn *store.Txn) (err error) {
		ok, err = txn.Get(schemas.SubjectKey(subject), &s)
		return err
	})
	if err == nil && (!ok || s.Latest == 0) {
		err = vocab.NotFound("schema subject %s has no registered version", subject)
	}
	return s, err
}

// schemas.Version returns one version of a subject (0: the latest).
func (cp *ControlPlane) SchemaVersion(subject catalog.DatasetID, version int) (schemas.Version, error) {
	s, err := cp.Subject(subject)
	if err != nil {
		return schemas.Version{}, err
	}
	if version == 0 {
		version = s.Latest
	}
	if version < 0 || version > s.Latest {
		return schemas.Version{}, vocab.NotFound("schema %s has no version %d (latest is %d)", subject, version, s.Latest)
	}
	var v schemas.Version
	err = cp.st.View(func(txn *store.Txn) error {
		ok, err := txn.Get(schemas.VersionKey(subject, version), &v)
		if err == nil && !ok {
			err = vocab.NotFound("schema %s version %d missing", subject, version)
		}
		return err
	})
	if v.Compat == "" {
		v.Compat = s.Compat
	}
	return v, err
}

// SchemaVersions lists every version of a subject, oldest first.
func (cp *ControlPlane) SchemaVersions(subject catalog.DatasetID) ([]schemas.Version, schemas.Subject, error) {
	s, err := cp.Subject(subject)
	if err != nil {
		return nil, s, err
	}
	var out []schemas.Version
	err = cp.st.View(func(txn *store.Txn) error {
		return scanPage(txn, schemas.VersionsPrefix(subject), "", s.Latest, func(v schemas.Version) { out = append(out, v) })
	})
	return out, s, err
}

// DatasetSchema returns the compiled schema version a dataset uses.
func (cp *ControlPlane) DatasetSchema(d catalog.Dataset) (*schemas.Schema, error) {
	// Versions never change once registered, so the compiled cache needs
	// no invalidation.
	if s, ok := cp.compiled.Get(d.SchemaSubject, d.SchemaVersion); ok {
		return s, nil
	}
	v, err := cp.SchemaVersion(catalog.DatasetID(d.SchemaSubject), d.SchemaVersion)
	if err != nil {
		return nil, err
	}
	return cp.cachedSchema(v)
}

// cachedSchema returns the compiled schema of a stored version.
func (cp *ControlPlane) cachedSchema(v schemas.Version) (*schemas.Schema, error) {
	return cp.compiled.Compile(string(v.Subject), v.Version, v.Schema)
}

// applySchemaCompat applies a schema.compat entry (schemas.ApplyCompat).
func (cp *ControlPlane) applySchemaCompat(txn views, e ledger.Entry) (func(), error) {
	return nil, schemas.ApplyCompat(txn, e.Body)
}

// applySchemaRegistered applies a schema.registered entry
// (schemas.ApplyRegistered).
func (cp *ControlPlane) applySchemaRegistered(txn views, e ledger.Entry) (func(), error) {
	return nil, schemas.ApplyRegistered(txn, e.Body, e.Time, e.Seq)
}
