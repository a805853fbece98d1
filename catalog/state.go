package catalog

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/xhub-gov/xhub/exchange/keyspace"
)

// The catalog's state machine: the entry kinds that change departments
// and datasets, the keys of their views, and how an entry changes them.
// Apply functions read and write only the Views they are given, take time
// from the entry and do no other I/O: every node that applies the same
// entries holds the same views. Package exchange runs them from the log.

// The entry kinds of the catalog are named in exchange/ledger (kinds.go).

// Views are JSON values by key, in one transaction.
type Views interface {
	Get(key string, v any) (bool, error)
	Put(key string, v any) error
}

// DeptKey and DatasetKey are where a department and a dataset live.
func DeptKey(id DeptID) string       { return keyspace.Departments.Key(string(id)) }
func DatasetKey(id DatasetID) string { return keyspace.Datasets.Key(string(id)) }

// DeptAdded is the body of a dept.added entry: what the command decided.
// The department's registration time and entry (Department.CreatedAt,
// Seq) are the entry's own, set by the apply. (Bodies appended before
// this type carry them as zero values; the apply ignores them.)
type DeptAdded struct {
	ID   DeptID `json:"id"`
	Name string `json:"name"`
}

// Published is the body of a dataset.published entry: the metadata and
// the schema version the officer published. The dataset's status, its
// times and its entry (Dataset.Status, PublishedAt, UpdatedAt, Seq) are
// the log's, set by the apply. (Bodies appended before this type carry
// them as zero values; the apply ignores them.)
type Published struct {
	ID          DatasetID `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	Keywords    []string  `json:"keywords,omitempty"`
	ShareType   ShareType `json:"share_type"`
	Frequency   string    `json:"frequency,omitempty"`
	// Retention: how long the hub keeps its published batches (zero:
	// the hub's default).
	Retention     Retention `json:"retention,omitempty"`
	SchemaSubject string    `json:"schema_subject"`
	SchemaVersion int       `json:"schema_version"`
	Fields        []Field   `json:"fields"`
}

// Retirement is the body of a dataset.retired entry.
type Retirement struct {
	ID     DatasetID `json:"id"`
	Reason string    `json:"reason"`
}

// ApplyDeptAdded registers the department in body (a dept.added entry
// appended at at, as entry seq).
func ApplyDeptAdded(v Views, body []byte, at time.Time, seq uint64) (Department, error) {
	var b DeptAdded
	if err := json.Unmarshal(body, &b); err != nil {
		return Department{}, err
	}
	d := Department{ID: b.ID, Name: b.Name}
	var old Department
	if ok, err := v.Get(DeptKey(d.ID), &old); err != nil || ok {
		return d, fmt.Errorf("department %s exists", d.ID)
	}
	d.CreatedAt, d.Seq = at, seq
	return d, v.Put(DeptKey(d.ID), d)
}

// ApplyDatasetPublished publishes (or republishes) the dataset in body;
// a republished dataset keeps its first publication time.
func ApplyDatasetPublished(v Views, body []byte, at time.Time, seq uint64) (Dataset, error) {
	var p Published
	if err := json.Unmarshal(body, &p); err != nil {
		return Dataset{}, err
	}
	d := Dataset{Published: p}
	var old Dataset
	ok, err := v.Get(DatasetKey(d.ID), &old)
	if err != nil {
		return d, err
	}
	d.PublishedAt = at
	if ok && old.Status == StatusPublished {
		d.PublishedAt = old.PublishedAt
	}
	d.Status, d.UpdatedAt, d.Seq = StatusPublished, at, seq
	return d, v.Put(DatasetKey(d.ID), d)
}

// ApplyDatasetRetired retires the dataset named in body.
func ApplyDatasetRetired(v Views, body []byte, at time.Time, seq uint64) (Dataset, error) {
	var r Retirement
	if err := json.Unmarshal(body, &r); err != nil {
		return Dataset{}, err
	}
	var d Dataset
	if ok, err := v.Get(DatasetKey(r.ID), &d); err != nil || !ok {
		return d, fmt.Errorf("dataset %s unknown", r.ID)
	}
	d.Status, d.UpdatedAt, d.Seq = StatusRetired, at, seq
	return d, v.Put(DatasetKey(d.ID), d)
}
