package catalog

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// ledger.KindDatasetUpdated changes some of a published dataset's metadata.

// Update is the body of a dataset.updated entry: only the fields it
// carries change. A stricter share type does not end grants already
// made: they stay until they expire or are revoked (the owner decided
// them under the old terms; the ledger keeps that); new requests follow
// the new type.
type Update struct {
	ID          DatasetID  `json:"id"`
	Title       *string    `json:"title,omitempty"`
	Description *string    `json:"description,omitempty"`
	Keywords    *[]string  `json:"keywords,omitempty"`
	Frequency   *string    `json:"frequency,omitempty"`
	ShareType   *ShareType `json:"share_type,omitempty"`
	Retention   *Retention `json:"retention,omitempty"`
	Schema      *SchemaRef `json:"schema,omitempty"`
}

// Changed names the fields u changes, in a fixed order.
func (u Update) Changed() []string {
	var out []string
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	add(u.Title != nil, "title")
	add(u.Description != nil, "description")
	add(u.Keywords != nil, "keywords")
	add(u.Frequency != nil, "frequency")
	add(u.ShareType != nil, "share_type")
	add(u.Retention != nil, "retention")
	add(u.Schema != nil, "schema")
	return out
}

// merge is d with u's changes.
func (u Update) merge(d Dataset) Dataset {
	if u.Title != nil {
		d.Title = *u.Title
	}
	if u.Description != nil {
		d.Description = *u.Description
	}
	if u.Keywords != nil {
		d.Keywords = slices.Clone(*u.Keywords)
	}
	if u.Frequency != nil {
		d.Frequency = *u.Frequency
	}
	if u.ShareType != nil {
		d.ShareType = *u.ShareType
	}
	if u.Retention != nil {
		d.Retention = *u.Retention
	}
	if u.Schema != nil {
		d.SchemaSubject, d.SchemaVersion, d.Fields = string(u.Schema.Subject), u.Schema.Version, u.Schema.Fields
	}
	return d
}

// CheckUpdate checks u against the dataset's current state and returns
// the dataset.updated body: the dataset is published; u changes something;
// the merged metadata is valid; the schema does not go back to an earlier
// version. Fields u gives with their current value are left out of the
// body, so the entry says what changed.
func CheckUpdate(v Views, u Update) (Update, Dataset, error) {
	if _, err := ParseDatasetID(string(u.ID)); err != nil {
		return Update{}, Dataset{}, err
	}
	var old Dataset
	if ok, err := v.Get(DatasetKey(u.ID), &old); err != nil {
		return Update{}, Dataset{}, err
	} else if !ok {
		return Update{}, Dataset{}, vocab.NotFound("dataset %s is not in the catalog", u.ID)
	}
	if old.Status != StatusPublished {
		return Update{}, Dataset{}, vocab.Precondition("DATASET_STATE", string(u.ID), "dataset %s is %s: publish it again (xhub catalog publish) instead of updating it", u.ID, old.Status)
	}
	if u.Title != nil {
		t := strings.TrimSpace(*u.Title)
		u.Title = &t
	}
	merged := u.merge(old)
	if err := merged.ValidateMetadata(); err != nil {
		return Update{}, Dataset{}, err
	}
	if u.Keywords != nil {
		kw := merged.Keywords // normalised by ValidateMetadata
		if kw == nil {
			kw = []string{}
		}
		u.Keywords = &kw
	}
	if u.ShareType != nil {
		st, _ := ParseShareType(string(*u.ShareType))
		u.ShareType = &st
	}
	if u.Schema != nil && u.Schema.Version < old.SchemaVersion && string(u.Schema.Subject) == old.SchemaSubject {
		return Update{}, Dataset{}, vocab.Precondition("SCHEMA_VERSION", string(u.ID), "dataset %s already uses schema version %d; it cannot go back to %d", u.ID, old.SchemaVersion, u.Schema.Version)
	}
	// Keep only what differs.
	if u.Title != nil && *u.Title == old.Title {
		u.Title = nil
	}
	if u.Description != nil && *u.Description == old.Description {
		u.Description = nil
	}
	if u.Keywords != nil && slices.Equal(*u.Keywords, old.Keywords) {
		u.Keywords = nil
	}
	if u.Frequency != nil && *u.Frequency == old.Frequency {
		u.Frequency = nil
	}
	if u.ShareType != nil && *u.ShareType == old.ShareType {
		u.ShareType = nil
	}
	if u.Retention != nil && *u.Retention == old.Retention {
		u.Retention = nil
	}
	if u.Schema != nil && string(u.Schema.Subject) == old.SchemaSubject && u.Schema.Version == old.SchemaVersion {
		u.Schema = nil
	}
	if len(u.Changed()) == 0 {
		return Update{}, Dataset{}, vocab.Precondition("NO_CHANGE", string(u.ID), "nothing to change: dataset %s already has these values", u.ID)
	}
	return u, old, nil
}

// ApplyDatasetUpdated applies a dataset.updated entry.
func ApplyDatasetUpdated(v Views, body []byte, at time.Time, seq uint64) (Dataset, error) {
	var u Update
	if err := json.Unmarshal(body, &u); err != nil {
		return Dataset{}, err
	}
	var d Dataset
	if ok, err := v.Get(DatasetKey(u.ID), &d); err != nil || !ok {
		return d, fmt.Errorf("dataset %s unknown", u.ID)
	}
	if d.Status != StatusPublished {
		return d, fmt.Errorf("dataset %s is %s", u.ID, d.Status)
	}
	d = u.merge(d)
	d.UpdatedAt, d.Seq = at, seq
	return d, v.Put(DatasetKey(d.ID), d)
}
