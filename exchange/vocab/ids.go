package vocab

import (
	"strconv"
	"strings"
)

// DeptID identifies a department: [a-z][a-z0-9-]{1,31}. It is also a NATS
// subject token, so the grammar is strict.
type DeptID string

// DatasetID identifies a dataset: <owner-dept>.<name>, name [a-z][a-z0-9-]{1,63}.
type DatasetID string

// HubDept is the reserved department of the hub operator.
const HubDept DeptID = "hub"

// ParseDeptID checks s against the department id grammar.
func ParseDeptID(s string) (DeptID, error) {
	if err := checkToken(s, 32); err != nil {
		return "", Invalid("department", "%q %s", s, err.Error())
	}
	return DeptID(s), nil
}

// Valid reports whether d follows the department id grammar.
func (d DeptID) Valid() bool { return checkToken(string(d), 32) == nil }

// ParseDatasetID checks s against the dataset id grammar.
func ParseDatasetID(s string) (DatasetID, error) {
	owner, name, ok := strings.Cut(s, ".")
	if !ok {
		return "", Invalid("dataset", "%q is not <department>.<name>", s)
	}
	if err := checkToken(owner, 32); err != nil {
		return "", Invalid("dataset", "%q: department part %s", s, err.Error())
	}
	if err := checkToken(name, 64); err != nil {
		return "", Invalid("dataset", "%q: name part %s", s, err.Error())
	}
	return DatasetID(s), nil
}

// Valid reports whether id follows the dataset id grammar.
func (id DatasetID) Valid() bool { _, err := ParseDatasetID(string(id)); return err == nil }

// Owner is the department part of the id.
func (id DatasetID) Owner() DeptID {
	o, _, _ := strings.Cut(string(id), ".")
	return DeptID(o)
}

// Name is the part after the department.
func (id DatasetID) Name() string {
	_, n, _ := strings.Cut(string(id), ".")
	return n
}

type grammarError string

func (e grammarError) Error() string { return string(e) }

// checkToken enforces [a-z][a-z0-9-]{1,max-1}.
func checkToken(s string, max int) error {
	if len(s) < 2 {
		return grammarError("is too short (at least 2 characters)")
	}
	if len(s) > max {
		return grammarError("is too long (at most " + strconv.Itoa(max) + " characters)")
	}
	if s[0] < 'a' || s[0] > 'z' {
		return grammarError("must start with a lowercase letter a-z")
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return grammarError("may contain only a-z, 0-9 and '-'")
		}
	}
	return nil
}

// Field is one top-level property of a dataset's schema (an information item).
type Field struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
}
