package exchange

import (
	"golang.org/x/mod/sumdb/tlog"

	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/internal/fault"
	"github.com/xhub-gov/xhub/internal/store"
)

// TreeHead is the Merkle tree head over every applied entry.
func (cp *ControlPlane) TreeHead() (ledger.Tree, error) {
	var t ledger.Tree
	err := cp.st.View(func(txn *store.Txn) error {
		m, err := readMeta(txn)
		if err != nil {
			return err
		}
		t.N = int64(m.Applied)
		t.Hash, err = tlog.TreeHash(t.N, txnHashReader{txn})
		return err
	})
	return t, err
}

// InclusionProof proves entry seq is in the tree of size (0: the current
// head), returning the tree, the proof and the entry's bytes.
func (cp *ControlPlane) InclusionProof(seq, size uint64) (ledger.Tree, [][]byte, []byte, error) {
	var t ledger.Tree
	var proof tlog.RecordProof
	var raw []byte
	err := cp.st.View(func(txn *store.Txn) error {
		m, err := readMeta(txn)
		if err != nil {
			return err
		}
		if size == 0 {
			size = m.Applied
		}
		if size > m.Applied {
			return fault.Invalid("tree_size", "%d is beyond the %d entries applied on this node", size, m.Applied)
		}
		if seq == 0 || seq > size {
			return fault.Invalid("seq", "entry %d is not in a tree of %d entries", seq, size)
		}
		r := txnHashReader{txn}
		t.N = int64(size)
		if t.Hash, err = tlog.TreeHash(t.N, r); err != nil {
			return err
		}
		if proof, err = tlog.ProveRecord(t.N, int64(seq-1), r); err != nil {
			return err
		}
		var ok bool
		raw, ok, err = txn.GetRaw(entryKey(seq))
		if err == nil && !ok {
			err = fault.NotFound("entry %d missing from the view", seq)
		}
		return err
	})
	return t, ledger.ProofBytes(proof), raw, err
}

// ConsistencyProof proves the tree of newSize (0: current) extends the
// tree of oldSize.
func (cp *ControlPlane) ConsistencyProof(oldSize, newSize uint64) (ledger.Tree, [][]byte, error) {
	var t ledger.Tree
	var proof tlog.TreeProof
	err := cp.st.View(func(txn *store.Txn) error {
		m, err := readMeta(txn)
		if err != nil {
			return err
		}
		if newSize == 0 {
			newSize = m.Applied
		}
		if newSize > m.Applied {
			return fault.Invalid("new_size", "%d is beyond the %d entries applied on this node", newSize, m.Applied)
		}
		if oldSize == 0 || oldSize > newSize {
			return fault.Invalid("old_size", "%d is not between 1 and %d", oldSize, newSize)
		}
		r := txnHashReader{txn}
		t.N = int64(newSize)
		if t.Hash, err = tlog.TreeHash(t.N, r); err != nil {
			return err
		}
		proof, err = tlog.ProveTree(t.N, int64(oldSize), r)
		return err
	})
	return t, ledger.ProofBytes(proof), err
}
