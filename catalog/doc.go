// Package catalog owns departments and datasets: the id grammar
// (DeptID, DatasetID), the resource-catalog metadata of a dataset (title,
// description, keywords, share type, update frequency, schema reference,
// status) and its validation, the rule for text a person reads that every
// subject applies to its free text (CheckLine, CheckParagraph, and
// EscapeLine for printing what older entries hold: text.go), and the
// in-memory Index that answers listing and text search over the catalog,
// complete and paginated.
//
// The catalog holds no state of its own: datasets change only through
// entries of the control-plane log (package exchange), and the Index is
// rebuilt from the materialised views when a node starts.
package catalog
