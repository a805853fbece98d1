package exchange

import (
	"fmt"
	"strings"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/internal/fault"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/schemas"
)

// Page bounds.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// PageSize applies the default and the bound.
func PageSize(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, fault.Invalid("page_size", "%d is not between 1 and %d", n, MaxPageSize)
	}
	return n, nil
}

// Department returns one department.
func (cp *ControlPlane) Department(id catalog.DeptID) (catalog.Department, error) {
	var d catalog.Department
	var ok bool
	err := cp.st.View(func(txn *store.Txn) (err error) {
		ok, err = txn.Get(deptKey(id), &d)
		return err
	})
	if err == nil && !ok {
		err = fault.NotFound("department %s is not registered", id)
	}
	return d, err
}

// Departments lists departments in id order after the given id.
func (cp *ControlPlane) Departments(after catalog.DeptID, limit int) ([]catalog.Department, catalog.DeptID, error) {
	var out []catalog.Department
	err := cp.st.View(func(txn *store.Txn) error {
		return scanPage(txn, "d/", string(after), limit+1, func(d catalog.Department) { out = append(out, d) })
	})
	var next catalog.DeptID
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, err
}

// Credential returns one credential from the in-memory view.
func (cp *ControlPlane) Credential(serial string) (Credential, bool) {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	c, ok := cp.creds[serial]
	return c, ok
}

// IdentitiesWithCredential is the set of identities (SPIFFE URIs) that
// hold at least one credential not revoked.
func (cp *ControlPlane) IdentitiesWithCredential() map[string]bool {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	out := make(map[string]bool)
	for _, c := range cp.creds {
		if !c.Revoked {
			out[c.Identity] = true
		}
	}
	return out
}

// Credentials lists credentials (of one department, if dept is set) in
// serial order after the given serial.
func (cp *ControlPlane) Credentials(dept catalog.DeptID, after string, limit int) ([]Credential, string, error) {
	var out []Credential
	err := cp.st.View(func(txn *store.Txn) error {
		return txn.Scan("c/", afterKey("c/", after), func(_ string, val []byte) (bool, error) {
			var c Credential
			if err := jsonUnmarshal(val, &c); err != nil {
				return false, err
			}
			if dept == "" || c.Dept == dept {
				out = append(out, c)
			}
			return len(out) <= limit, nil
		})
	})
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Serial
	}
	return out, next, err
}

// Subject returns a schema subject's settings.
func (cp *ControlPlane) Subject(subject catalog.DatasetID) (Subject, error) {
	var s Subject
	var ok bool
	err := cp.st.View(func(txn *store.Txn) (err error) {
		ok, err = txn.Get(subjectKey(subject), &s)
		return err
	})
	if err == nil && (!ok || s.Latest == 0) {
		err = fault.NotFound("schema subject %s has no registered version", subject)
	}
	return s, err
}

// SchemaVersion returns one version of a subject (0: the latest).
func (cp *ControlPlane) SchemaVersion(subject catalog.DatasetID, version int) (SchemaVersion, error) {
	s, err := cp.Subject(subject)
	if err != nil {
		return SchemaVersion{}, err
	}
	if version == 0 {
		version = s.Latest
	}
	if version < 0 || version > s.Latest {
		return SchemaVersion{}, fault.NotFound("schema %s has no version %d (latest is %d)", subject, version, s.Latest)
	}
	var v SchemaVersion
	err = cp.st.View(func(txn *store.Txn) error {
		ok, err := txn.Get(versionKey(subject, version), &v)
		if err == nil && !ok {
			err = fault.NotFound("schema %s version %d missing", subject, version)
		}
		return err
	})
	if v.Compat == "" {
		v.Compat = s.Compat
	}
	return v, err
}

// SchemaVersions lists every version of a subject, oldest first.
func (cp *ControlPlane) SchemaVersions(subject catalog.DatasetID) ([]SchemaVersion, Subject, error) {
	s, err := cp.Subject(subject)
	if err != nil {
		return nil, s, err
	}
	var out []SchemaVersion
	err = cp.st.View(func(txn *store.Txn) error {
		return scanPage(txn, "sv/"+string(subject)+"/", "", s.Latest, func(v SchemaVersion) { out = append(out, v) })
	})
	return out, s, err
}

// Dataset returns one dataset from the catalog index.
func (cp *ControlPlane) Dataset(id catalog.DatasetID) (catalog.Dataset, error) {
	d, ok := cp.index.Get(id)
	if !ok {
		return d, fault.NotFound("dataset %s is not in the catalog", id)
	}
	return d, nil
}

// Datasets lists the catalog: see catalog.Index.List.
func (cp *ControlPlane) Datasets(q catalog.Query) ([]catalog.Dataset, catalog.DatasetID, int) {
	return cp.index.List(q)
}

// Entries returns up to limit raw entries with sequence > since.
func (cp *ControlPlane) Entries(since uint64, limit int) ([]ledger.Entry, [][]byte, error) {
	var entries []ledger.Entry
	var raws [][]byte
	err := cp.st.View(func(txn *store.Txn) error {
		return txn.Scan("e/", string(entryKey(since)), func(_ string, val []byte) (bool, error) {
			e, err := ledger.Parse(val)
			if err != nil {
				return false, fmt.Errorf("stored entry: %w", err)
			}
			entries, raws = append(entries, e), append(raws, val)
			return len(entries) < limit, nil
		})
	})
	return entries, raws, err
}

func afterKey(prefix, after string) string {
	if after == "" {
		return ""
	}
	return prefix + after
}

func scanPage[T any](txn *store.Txn, prefix, after string, limit int, fn func(T)) error {
	n := 0
	return txn.Scan(prefix, afterKey(prefix, after), func(key string, val []byte) (bool, error) {
		if !strings.HasPrefix(key, prefix) {
			return false, nil
		}
		var v T
		if err := jsonUnmarshal(val, &v); err != nil {
			return false, fmt.Errorf("view %s: %w", key, err)
		}
		fn(v)
		n++
		return n < limit, nil
	})
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
