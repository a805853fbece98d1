package exchange

import (
	"context"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// This file runs the catalog's department commands (the checks against
// state and the state machine are in package catalog); only the operator
// may give them.

// AddDepartment registers a department. Admin only.
func (cp *ControlPlane) AddDepartment(ctx context.Context, actor vocab.Identity, id catalog.DeptID, name string) (catalog.Department, uint64, error) {
	if actor.Role != vocab.RoleAdmin {
		return catalog.Department{}, 0, vocab.Denied("only the hub operator (admin) adds departments")
	}
	seq, err := replayed(cp.submit(ctx, actor, ledger.KindDeptAdded, func(txn *store.Txn, _ time.Time) (string, any, error) {
		body, err := catalog.NewDepartment(txn, id, name)
		return string(id), body, err
	}))
	if err != nil {
		return catalog.Department{}, 0, err
	}
	d, err := cp.Department(id)
	return d, seq, err
}

// Department returns one department.
func (cp *ControlPlane) Department(id catalog.DeptID) (catalog.Department, error) {
	var d catalog.Department
	var ok bool
	err := cp.st.View(func(txn *store.Txn) (err error) {
		ok, err = txn.Get(catalog.DeptKey(id), &d)
		return err
	})
	if err == nil && !ok {
		err = vocab.NotFound("department %s is not registered", id)
	}
	return d, err
}

// Departments lists departments in id order after the given id.
func (cp *ControlPlane) Departments(after catalog.DeptID, limit int) ([]catalog.Department, catalog.DeptID, error) {
	var out []catalog.Department
	err := cp.st.View(func(txn *store.Txn) error {
		return scanPage(txn, string(keyspace.Departments), string(after), limit+1, func(d catalog.Department) { out = append(out, d) })
	})
	var next catalog.DeptID
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, err
}

// applyDeptAdded applies a dept.added entry (catalog.ApplyDeptAdded).
func (cp *ControlPlane) applyDeptAdded(txn views, e ledger.Entry) (func(), error) {
	_, err := catalog.ApplyDeptAdded(txn, e.Body, e.Time, e.Seq)
	return nil, err
}
