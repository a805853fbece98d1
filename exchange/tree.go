package exchange

import (
	"golang.org/x/mod/sumdb/tlog"

	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// TreeHead is the Merkle tree head over every applied entry.
func (cp *ControlPlane) TreeHead() (ledger.Tree, error) {
	var t ledger.Tree
	err := cp.st.View(func(txn *store.Txn) (err error) {
		t, err = treeOf(txn, 0, "tree_size")
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
	err := cp.st.View(func(txn *store.Txn) (err error) {
		r := txnHashReader{txn}
		if t, err = treeOf(txn, size, "tree_size"); err != nil {
			return err
		}
		if seq == 0 || int64(seq) > t.N {
			return vocab.Invalid("seq", "entry %d is not in a tree of %d entries", seq, t.N)
		}
		if proof, err = tlog.ProveRecord(t.N, int64(seq-1), r); err != nil {
			return err
		}
		var ok bool
		raw, ok, err = txn.GetRaw(entryKey(seq))
		if err == nil && !ok {
			err = vocab.NotFound("entry %d missing from the view", seq)
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
	err := cp.st.View(func(txn *store.Txn) (err error) {
		if t, err = treeOf(txn, newSize, "new_size"); err != nil {
			return err
		}
		if oldSize == 0 || int64(oldSize) > t.N {
			return vocab.Invalid("old_size", "%d is not between 1 and %d", oldSize, t.N)
		}
		proof, err = tlog.ProveTree(t.N, int64(oldSize), txnHashReader{txn})
		return err
	})
	return t, ledger.ProofBytes(proof), err
}

// treeOf is the tree of size entries (0: all applied) in txn's snapshot.
func treeOf(txn *store.Txn, size uint64, field string) (ledger.Tree, error) {
	m, err := readMeta(txn)
	if err != nil {
		return ledger.Tree{}, err
	}
	if size == 0 {
		size = m.Applied
	}
	if size > m.Applied {
		return ledger.Tree{}, vocab.Invalid(field, "%d is beyond the %d entries applied on this node", size, m.Applied)
	}
	h, err := tlog.TreeHash(int64(size), txnHashReader{txn})
	return ledger.Tree{N: int64(size), Hash: h}, err
}
