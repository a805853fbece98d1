package ledger

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Tree is a tree head: the number of entries and the Merkle root over them.
type Tree = tlog.Tree

// headHeader is the first line of a signed tree head.
const headHeader = "xhub ledger tree"

// FormatTree is the text a head signs: the header line, the number of
// entries, the base64 root (tlog.FormatTree's layout, with xhub's header).
func FormatTree(t Tree) string {
	return fmt.Sprintf("%s\n%d\n%s\n", headHeader, t.N, t.Hash)
}

// ParseTree parses FormatTree's text.
func ParseTree(text string) (Tree, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[0] != headHeader || lines[3] != "" {
		return Tree{}, errors.New("ledger: not an xhub tree head")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return Tree{}, errors.New("ledger: tree head: bad size")
	}
	h, err := tlog.ParseHash(lines[2])
	if err != nil {
		return Tree{}, fmt.Errorf("ledger: tree head: %w", err)
	}
	return Tree{N: n, Hash: h}, nil
}

// SignHead signs a tree head with the hub's ledger key: a signed note
// (golang.org/x/mod/sumdb/note, ed25519) over FormatTree, the form the Go
// checksum database uses for its RFC 6962 tree.
func SignHead(t Tree, signer note.Signer) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: FormatTree(t)}, signer)
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
	return ParseTree(n.Text)
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

// Add adds the next entry and checks it: it must be canonical, carry its
// own sequence, and name its predecessor's hash. The entry's leaf is added
// to the tree even when a check fails (the returned *MismatchError names
// it), so the caller can go on and compare trees to tell which entry was
// altered.
func (v *Verifier) Add(raw []byte) error {
	seq := v.n + 1
	leaf := LeafHash(raw)
	hs, err := tlog.StoredHashesForRecordHash(int64(v.n), leaf, v.stored)
	if err != nil {
		return err
	}
	prev := v.prev
	v.stored = append(v.stored, hs...)
	v.leaves = append(v.leaves, leaf)
	v.n, v.prev = seq, leaf

	_, err = Check(raw, seq, prev)
	return err
}

// Check parses raw as entry seq of a log whose entry seq-1 has leaf hash
// prev: it must be canonical, carry its own sequence and name prev. A
// failure is a *MismatchError. Verify and a node's apply loop both check
// each entry with it.
func Check(raw []byte, seq uint64, prev Hash) (Entry, error) {
	e, err := Parse(raw)
	if err != nil {
		return e, &MismatchError{Seq: seq, Reason: err.Error()}
	}
	if e.Seq != seq {
		return e, &MismatchError{Seq: seq, Reason: fmt.Sprintf("it says it is entry %d", e.Seq)}
	}
	if e.Prev != prev {
		return e, &MismatchError{Seq: seq, Reason: fmt.Sprintf("its predecessor hash is not the hash of entry %d as stored", seq-1)}
	}
	return e, nil
}

// TreeAt is the recomputed tree head over the first n entries.
func (v *Verifier) TreeAt(n uint64) (Tree, error) {
	if n > v.n {
		return Tree{}, fmt.Errorf("ledger: %d entries added, not %d", v.n, n)
	}
	h, err := tlog.TreeHash(int64(n), v.stored)
	return Tree{N: int64(n), Hash: h}, err
}

// Leaf is the recomputed leaf hash of entry seq (1-based).
func (v *Verifier) Leaf(seq uint64) Hash { return v.leaves[seq-1] }

// Len is the number of entries added.
func (v *Verifier) Len() uint64 { return v.n }

// Tree is the recomputed tree head over every entry added.
func (v *Verifier) Tree() (Tree, error) { return v.TreeAt(v.n) }
