package catalog

import (
	"strings"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// The catalog's commands checked against current state. Each returns the
// body of the entry to append, or the reason it may not be appended; none
// writes. Who may give a command (the operator adds departments, an
// officer of the owner publishes and retires) is checked by the caller,
// which knows identities; so is the schema version a publication resolves
// to, which the schemas subject owns.

// MaxReasonLen bounds a stated reason.
const MaxReasonLen = 1000

// NewDepartment checks the registration of department id with a display
// name and returns the dept.added body.
func NewDepartment(v Views, id DeptID, name string) (DeptAdded, error) {
	if _, err := ParseDeptID(string(id)); err != nil {
		return DeptAdded{}, err
	}
	if id == HubDept {
		return DeptAdded{}, vocab.Invalid("department", "%q is reserved for the hub operator", id)
	}
	name = strings.TrimSpace(name)
	if err := ValidateName(name); err != nil {
		return DeptAdded{}, err
	}
	var old Department
	if ok, err := v.Get(DeptKey(id), &old); err != nil {
		return DeptAdded{}, err
	} else if ok {
		return DeptAdded{}, vocab.Exists("department %s already exists (%s)", id, old.Name)
	}
	return DeptAdded{ID: id, Name: name}, nil
}

// SchemaRef is the schema version a publication resolves to.
type SchemaRef struct {
	Subject DatasetID `json:"subject"`
	Version int       `json:"version"`
	Fields  []Field   `json:"fields"`
}

// Publication checks that d (metadata already validated) may be published
// with schema s, and returns the dataset.published body: a dataset does
// not go back to an earlier schema version while it is published.
func Publication(v Views, d Published, s SchemaRef) (Published, error) {
	var old Dataset
	if ok, err := v.Get(DatasetKey(d.ID), &old); err != nil {
		return Published{}, err
	} else if ok && old.SchemaVersion > s.Version && old.Status == StatusPublished {
		return Published{}, vocab.Precondition("SCHEMA_VERSION", string(d.ID), "dataset %s already uses schema version %d; it cannot go back to %d", d.ID, old.SchemaVersion, s.Version)
	}
	d.SchemaSubject, d.SchemaVersion, d.Fields = string(s.Subject), s.Version, s.Fields
	return d, nil
}

// Retire checks the retirement of dataset id and returns the
// dataset.retired body.
func Retire(v Views, id DatasetID, reason string) (Retirement, error) {
	if _, err := ParseDatasetID(string(id)); err != nil {
		return Retirement{}, err
	}
	reason = strings.TrimSpace(reason)
	if err := CheckLine("reason", reason); err != nil {
		return Retirement{}, err
	}
	if len(reason) > MaxReasonLen {
		return Retirement{}, vocab.Invalid("reason", "is %d bytes, at most %d", len(reason), MaxReasonLen)
	}
	var d Dataset
	if ok, err := v.Get(DatasetKey(id), &d); err != nil {
		return Retirement{}, err
	} else if !ok {
		return Retirement{}, vocab.NotFound("dataset %s is not in the catalog", id)
	}
	if d.Status == StatusRetired {
		return Retirement{}, vocab.Precondition("DATASET_STATE", string(id), "dataset %s is already retired", id)
	}
	return Retirement{ID: id, Reason: reason}, nil
}
