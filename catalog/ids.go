package catalog

import "github.com/xhub-gov/xhub/exchange/vocab"

// The identifiers are the vocabulary's (exchange/vocab), so that a client
// can name departments and datasets without the catalog.
type (
	// DeptID identifies a department (vocab.DeptID).
	DeptID = vocab.DeptID
	// DatasetID identifies a dataset (vocab.DatasetID).
	DatasetID = vocab.DatasetID
	// Field is one top-level property of a dataset's schema (vocab.Field).
	Field = vocab.Field
)

// HubDept is the reserved department of the hub operator.
const HubDept = vocab.HubDept

// ParseDeptID checks s against the department id grammar.
func ParseDeptID(s string) (DeptID, error) { return vocab.ParseDeptID(s) }

// ParseDatasetID checks s against the dataset id grammar.
func ParseDatasetID(s string) (DatasetID, error) { return vocab.ParseDatasetID(s) }
