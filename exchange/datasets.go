package exchange

import (
	"context"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/schemas"
)

// This file runs the catalog's dataset commands: publishing, republishing
// and retirement. The checks against state are catalog's (rules.go); here
// the caller's authority is checked and the publication's schema version
// resolved from the schemas subject.

// PublishDataset creates or updates a dataset's catalog entry. Only an
// officer of the owning department; the schema subject must belong to the
// same department and exist.
func (cp *ControlPlane) PublishDataset(ctx context.Context, actor vocab.Identity, d catalog.Published) (catalog.Dataset, uint64, error) {
	if err := d.ValidateMetadata(); err != nil {
		return catalog.Dataset{}, 0, err
	}
	if err := mayActFor(actor, d.ID.Owner(), "publish datasets"); err != nil {
		return catalog.Dataset{}, 0, err
	}
	subject, err := datasetSchema(d.ID, d.SchemaSubject, d.SchemaVersion)
	if err != nil {
		return catalog.Dataset{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindDatasetPublished, func(txn *store.Txn, _ time.Time) (string, any, error) {
		ref, err := schemaRef(txn, subject, d.SchemaVersion)
		if err != nil {
			return "", nil, err
		}
		body, err := catalog.Publication(txn, d, ref)
		return string(d.ID), body, err
	}))
	if err != nil {
		return catalog.Dataset{}, 0, err
	}
	out, err := cp.Dataset(d.ID)
	return out, seq, err
}

// datasetSchema checks the schema subject and version named for dataset
// id: a subject of the same department, a version not negative (0: the
// latest).
func datasetSchema(id catalog.DatasetID, subject string, version int) (catalog.DatasetID, error) {
	s, err := catalog.ParseDatasetID(subject)
	if err != nil {
		return "", vocab.Invalid("schema", "subject %q: %v", subject, err)
	}
	if s.Owner() != id.Owner() {
		return "", vocab.Invalid("schema", "subject %s belongs to %s, not to the dataset's owner %s", s, s.Owner(), id.Owner())
	}
	if version < 0 {
		return "", vocab.Invalid("schema_version", "%d is negative", version)
	}
	return s, nil
}

// schemaRef resolves version (0: the latest) of schema subject in txn.
func schemaRef(txn *store.Txn, subject catalog.DatasetID, version int) (catalog.SchemaRef, error) {
	var subj schemas.Subject
	if ok, err := txn.Get(schemas.SubjectKey(subject), &subj); err != nil {
		return catalog.SchemaRef{}, err
	} else if !ok || subj.Latest == 0 {
		return catalog.SchemaRef{}, vocab.Precondition("SCHEMA_MISSING", string(subject), "schema subject %s has no registered version: register it first (xhub schema register)", subject)
	}
	if version == 0 {
		version = subj.Latest
	}
	var sv schemas.Version
	if ok, err := txn.Get(schemas.VersionKey(subject, version), &sv); err != nil {
		return catalog.SchemaRef{}, err
	} else if !ok {
		return catalog.SchemaRef{}, vocab.NotFound("schema %s has no version %d (latest is %d)", subject, version, subj.Latest)
	}
	return catalog.SchemaRef{Subject: subject, Version: version, Fields: sv.Fields}, nil
}

// UpdateDataset changes only what u gives of a published dataset, as one
// dataset.updated entry. Only an officer of its owner; a new schema must
// be a version of a subject of the same department. It returns the
// dataset, the fields changed, and the grants still active on it (a
// stricter share type does not end them).
func (cp *ControlPlane) UpdateDataset(ctx context.Context, actor vocab.Identity, u catalog.Update, schemaSubject string, schemaVersion int) (catalog.Dataset, []string, int, uint64, error) {
	if _, err := catalog.ParseDatasetID(string(u.ID)); err != nil {
		return catalog.Dataset{}, nil, 0, 0, err
	}
	if err := mayActFor(actor, u.ID.Owner(), "update datasets"); err != nil {
		return catalog.Dataset{}, nil, 0, 0, err
	}
	var subject catalog.DatasetID
	if schemaSubject != "" || schemaVersion != 0 {
		if schemaSubject == "" {
			d, err := cp.Dataset(u.ID)
			if err != nil {
				return catalog.Dataset{}, nil, 0, 0, err
			}
			schemaSubject = d.SchemaSubject
		}
		var err error
		if subject, err = datasetSchema(u.ID, schemaSubject, schemaVersion); err != nil {
			return catalog.Dataset{}, nil, 0, 0, err
		}
	}
	var changed []string
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindDatasetUpdated, func(txn *store.Txn, _ time.Time) (string, any, error) {
		if subject != "" {
			ref, err := schemaRef(txn, subject, schemaVersion)
			if err != nil {
				return "", nil, err
			}
			u.Schema = &ref
		}
		body, _, err := catalog.CheckUpdate(txn, u)
		changed = body.Changed()
		return string(u.ID), body, err
	}))
	if err != nil {
		return catalog.Dataset{}, nil, 0, 0, err
	}
	out, err := cp.Dataset(u.ID)
	if err != nil {
		return out, nil, 0, 0, err
	}
	active := 0
	for _, gp := range cp.ActiveGrantPairs(cp.cfg.Now()) {
		if gp.Dataset == u.ID {
			active++
		}
	}
	return out, changed, active, seq, nil
}

// RetireDataset marks a dataset retired. Only an officer of its owner.
func (cp *ControlPlane) RetireDataset(ctx context.Context, actor vocab.Identity, id catalog.DatasetID, reason string) (catalog.Dataset, uint64, error) {
	if _, err := catalog.ParseDatasetID(string(id)); err != nil {
		return catalog.Dataset{}, 0, err
	}
	if err := mayActFor(actor, id.Owner(), "retire datasets"); err != nil {
		return catalog.Dataset{}, 0, err
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindDatasetRetired, func(txn *store.Txn, _ time.Time) (string, any, error) {
		body, err := catalog.Retire(txn, id, reason)
		return string(id), body, err
	}))
	if err != nil {
		return catalog.Dataset{}, 0, err
	}
	out, err := cp.Dataset(id)
	return out, seq, err
}

// Dataset returns one dataset from the catalog index.
func (cp *ControlPlane) Dataset(id catalog.DatasetID) (catalog.Dataset, error) {
	d, ok := cp.index.Get(id)
	if !ok {
		return d, vocab.NotFound("dataset %s is not in the catalog", id)
	}
	return d, nil
}

// Datasets lists the catalog: see catalog.Index.List.
func (cp *ControlPlane) Datasets(q catalog.Query) ([]catalog.Dataset, catalog.DatasetID, int) {
	return cp.index.List(q)
}

// applyDatasetPublished applies a dataset.published entry
// (catalog.ApplyDatasetPublished) and indexes the dataset.
func (cp *ControlPlane) applyDatasetPublished(txn views, e ledger.Entry) (func(), error) {
	d, err := catalog.ApplyDatasetPublished(txn, e.Body, e.Time, e.Seq)
	if err != nil {
		return nil, err
	}
	return func() { cp.index.Put(d) }, nil
}

// applyDatasetUpdated applies a dataset.updated entry
// (catalog.ApplyDatasetUpdated) and indexes the dataset.
func (cp *ControlPlane) applyDatasetUpdated(txn views, e ledger.Entry) (func(), error) {
	d, err := catalog.ApplyDatasetUpdated(txn, e.Body, e.Time, e.Seq)
	if err != nil {
		return nil, err
	}
	return func() { cp.index.Put(d) }, nil
}

// applyDatasetRetired applies a dataset.retired entry
// (catalog.ApplyDatasetRetired) and indexes the dataset.
func (cp *ControlPlane) applyDatasetRetired(txn views, e ledger.Entry) (func(), error) {
	d, err := catalog.ApplyDatasetRetired(txn, e.Body, e.Time, e.Seq)
	if err != nil {
		return nil, err
	}
	return func() { cp.index.Put(d) }, nil
}
