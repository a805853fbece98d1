package ledger

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Tree is a tree head: the number of entries and the Merkle root over them.
type Tree = tlog.Tree

// SignHead signs a tree head with the hub's ledger key. The signed text is
// tlog's tree format, the same signed-note form the Go checksum database
// uses (RFC 6962 hashes, ed25519).
func SignHead(t Tree, signer note.Signer) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(t))}, signer)
	if err != nil {
		return nil, fmt.Errorf("ledger: sign head: %w", err)
	}
	return msg, nil
}

// ErrBadSignature is returned for a head not signed by the expected key.
var ErrBadSignature = errors.New("ledger: tree head is not signed by the hub's ledger key")

// OpenHead checks a signed head against the hub's verifier key and returns
// the tree it commits to.
func OpenHead(msg []byte, verifierKey string) (Tree, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return Tree{}, fmt.Errorf("ledger: verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Tree{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	t, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return Tree{}, fmt.Errorf("ledger: signed head: %w", err)
	}
	return t, nil
}

// ErrProof is returned for a proof that does not verify.
var ErrProof = errors.New("ledger: proof does not verify")

// CheckInclusion verifies that raw is entry seq of the tree head t.
func CheckInclusion(t Tree, seq uint64, raw []byte, proof [][]byte) error {
	p, err := hashes(proof)
	if err != nil {
		return err
	}
	if seq == 0 || int64(seq) > t.N {
		return fmt.Errorf("%w: entry %d is outside a tree of %d", ErrProof, seq, t.N)
	}
	if err := tlog.CheckRecord(tlog.RecordProof(p), t.N, t.Hash, int64(seq-1), LeafHash(raw)); err != nil {
		return fmt.Errorf("%w: entry %d in tree of %d: %v", ErrProof, seq, t.N, err)
	}
	return nil
}

// CheckConsistency verifies that tree head newer extends tree head older.
func CheckConsistency(older, newer Tree, proof [][]byte) error {
	p, err := hashes(proof)
	if err != nil {
		return err
	}
	if err := tlog.CheckTree(tlog.TreeProof(p), newer.N, newer.Hash, older.N, older.Hash); err != nil {
		return fmt.Errorf("%w: tree of %d does not extend tree of %d: %v", ErrProof, newer.N, older.N, err)
	}
	return nil
}

func hashes(proof [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(proof))
	for i, b := range proof {
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("%w: proof hash %d has %d bytes", ErrProof, i, len(b))
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// ProofBytes converts proof hashes for the wire.
func ProofBytes[P ~[]tlog.Hash](p P) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// MismatchError names the first entry that does not match.
type MismatchError struct {
	Seq    uint64
	Reason string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("entry %d does not match: %s", e.Seq, e.Reason)
}

// Verifier recomputes the ledger from its entries, in order: each entry
// must be canonical, carry its own sequence, and name its predecessor's
// hash; the Merkle tree over them is rebuilt in memory.
type Verifier struct {
	n      uint64
	prev   Hash
	leaves []Hash
	stored hashStore
}

type hashStore []tlog.Hash

func (s hashStore) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(s)) {
			return nil, fmt.Errorf("hash %d not computed", x)
		}
		out[i] = s[x]
	}
	return out, nil
}

// Add checks and adds the next entry. A *MismatchError says which entry
// broke the chain; for a broken Prev it names this entry, and the caller
// may use an inclusion proof to tell whether the predecessor was altered
// instead (see Leaf).
func (v *Verifier) Add(raw []byte) error {
	seq := v.n + 1
	e, err := Parse(raw)
	if err != nil {
		return &MismatchError{Seq: seq, Reason: err.Error()}
	}
	if e.Seq != seq {
		return &MismatchError{Seq: seq, Reason: fmt.Sprintf("it says it is entry %d", e.Seq)}
	}
	if e.Prev != v.prev {
		return &MismatchError{Seq: seq, Reason: fmt.Sprintf("its predecessor hash %s is not the hash of entry %d", e.Prev, seq-1)}
	}
	leaf := LeafHash(raw)
	hs, err := tlog.StoredHashesForRecordHash(int64(v.n), leaf, v.stored)
	if err != nil {
		return err
	}
	v.stored = append(v.stored, hs...)
	v.leaves = append(v.leaves, leaf)
	v.n, v.prev = seq, leaf
	return nil
}

// Leaf is the recomputed leaf hash of entry seq (1-based).
func (v *Verifier) Leaf(seq uint64) Hash { return v.leaves[seq-1] }

// Len is the number of entries added.
func (v *Verifier) Len() uint64 { return v.n }

// Tree is the recomputed tree head.
func (v *Verifier) Tree() (Tree, error) {
	h, err := tlog.TreeHash(int64(v.n), v.stored)
	return Tree{N: int64(v.n), Hash: h}, err
}
