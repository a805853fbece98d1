package adapters

import (
	"context"
	"errors"
	"fmt"

	"github.com/xhub-gov/xhub/exchange/ledger"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// ErrNoLedgerKey is returned when there is no pinned key to verify with.
var ErrNoLedgerKey = errors.New("no ledger key to verify with: the creds file has no ledger-key line; pass the hub's key (its DIR/pki/ledger.pub)")

// LedgerVerifier checks the hub's ledger against a key the department
// holds, so that it need not trust the hub: signed heads, inclusion of an
// entry, consistency of a later head with an earlier one, and a full
// recomputation.
type LedgerVerifier struct {
	c   *Client
	key string
}

// LedgerVerifier returns a verifier using key, or the key pinned in the creds file
// when key is "".
func (c *Client) LedgerVerifier(key string) (*LedgerVerifier, error) {
	if key == "" {
		key = c.creds.LedgerKey
	}
	if key == "" {
		return nil, ErrNoLedgerKey
	}
	return &LedgerVerifier{c: c, key: key}, nil
}

// Head fetches and verifies the current signed tree head.
func (l *LedgerVerifier) Head(ctx context.Context) (ledger.Tree, []byte, error) {
	r, err := l.c.ledger.GetHead(ctx, &xhubv1.GetHeadRequest{})
	if err != nil {
		return ledger.Tree{}, nil, err
	}
	t, err := ledger.OpenHead(r.SignedNote, l.key)
	return t, r.SignedNote, err
}

// OpenHead verifies a signed head saved earlier.
func (l *LedgerVerifier) OpenHead(note []byte) (ledger.Tree, error) {
	return ledger.OpenHead(note, l.key)
}

// Inclusion fetches and verifies a proof that entry seq is in the current
// signed tree. It returns the entry and the head it was proved against.
func (l *LedgerVerifier) Inclusion(ctx context.Context, seq uint64) (Entry, ledger.Tree, error) {
	r, err := l.c.ledger.InclusionProof(ctx, &xhubv1.InclusionProofRequest{Seq: seq})
	if err != nil {
		return Entry{}, ledger.Tree{}, err
	}
	t, err := ledger.OpenHead(r.SignedNote, l.key)
	if err != nil {
		return Entry{}, t, err
	}
	return entryOf(r.Entry), t, ledger.CheckInclusion(t, seq, r.Entry.GetRaw(), r.Proof)
}

// Consistency verifies that the current signed tree extends the tree of an
// earlier signed head.
func (l *LedgerVerifier) Consistency(ctx context.Context, earlier []byte) (old, cur ledger.Tree, err error) {
	if old, err = ledger.OpenHead(earlier, l.key); err != nil {
		return old, cur, fmt.Errorf("earlier head: %w", err)
	}
	r, err := l.c.ledger.ConsistencyProof(ctx, &xhubv1.ConsistencyProofRequest{OldSize: uint64(old.N)})
	if err != nil {
		return old, cur, err
	}
	if cur, err = ledger.OpenHead(r.SignedNote, l.key); err != nil {
		return old, cur, err
	}
	return old, cur, ledger.CheckConsistency(old, cur, r.Proof)
}

// treeAt is the hub's signed tree of size n (via an inclusion proof of the
// n-th entry in the tree of n).
func (l *LedgerVerifier) treeAt(ctx context.Context, n uint64) (ledger.Tree, error) {
	r, err := l.c.ledger.InclusionProof(ctx, &xhubv1.InclusionProofRequest{Seq: n, TreeSize: n})
	if err != nil {
		return ledger.Tree{}, err
	}
	return ledger.OpenHead(r.SignedNote, l.key)
}

// Report is the outcome of a full verification.
type Report struct {
	Head    ledger.Tree // the signed head verified against
	Entries uint64
	// Mismatch names the first entry that does not match; nil if all do.
	Mismatch *ledger.MismatchError
}

// Verify fetches every entry up to the current signed head, recomputes
// every hash and the tree, and names the first entry that does not match:
// the first whose bytes differ from what the signed tree commits to
// (found by comparing recomputed and signed trees of growing size), or else
// the first that does not chain to its predecessor.
func (l *LedgerVerifier) Verify(ctx context.Context, progress func(done, total uint64)) (Report, error) {
	head, _, err := l.Head(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Head: head}
	total := uint64(head.N)
	v := &ledger.Verifier{}
	var firstChain *ledger.MismatchError
	var since uint64
	for v.Len() < total {
		r, err := l.c.ledger.ListEntries(ctx, &xhubv1.ListEntriesRequest{Since: since, PageSize: 1000})
		if err != nil {
			return rep, err
		}
		if len(r.Entries) == 0 {
			return rep, fmt.Errorf("the hub served %d entries, its signed head says %d", v.Len(), total)
		}
		for _, e := range r.Entries {
			if v.Len() == total {
				break
			}
			if err := v.Add(e.Raw); err != nil {
				var me *ledger.MismatchError
				if !errors.As(err, &me) {
					return rep, err
				}
				if firstChain == nil {
					firstChain = me
				}
			}
			since = e.Seq
		}
		if progress != nil {
			progress(v.Len(), total)
		}
	}
	rep.Entries = v.Len()
	mine, err := v.Tree()
	if err != nil {
		return rep, err
	}
	if mine != head {
		// Binary search the first size whose recomputed tree differs.
		lo, hi := uint64(1), total // differs at hi
		for lo < hi {
			mid := lo + (hi-lo)/2
			theirs, err := l.treeAt(ctx, mid)
			if err != nil {
				return rep, err
			}
			ours, err := v.TreeAt(mid)
			if err != nil {
				return rep, err
			}
			if ours == theirs {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		rep.Mismatch = &ledger.MismatchError{Seq: lo, Reason: "its bytes are not what the signed tree head commits to (altered after it was appended)"}
		return rep, nil
	}
	rep.Mismatch = firstChain
	return rep, nil
}

// Proof is an inclusion proof with its material, for checking by any
// RFC 6962 implementation: the entry's exact leaf bytes, its leaf hash
// (SHA-256 of 0x00 and the bytes), the audit path from the leaf up, and
// the signed head (tree size and root) it leads to.
type Proof struct {
	Entry      Entry
	Leaf       []byte
	LeafHash   ledger.Hash
	LeafIndex  int64 // Seq - 1
	AuditPath  []ledger.Hash
	Head       ledger.Tree
	SignedNote []byte
}

// InclusionProof fetches the proof that entry seq is in the current
// signed tree, verifies it (signature and path), and returns it whole.
func (l *LedgerVerifier) InclusionProof(ctx context.Context, seq uint64) (Proof, error) {
	r, err := l.c.ledger.InclusionProof(ctx, &xhubv1.InclusionProofRequest{Seq: seq})
	if err != nil {
		return Proof{}, err
	}
	t, err := ledger.OpenHead(r.SignedNote, l.key)
	if err != nil {
		return Proof{}, err
	}
	raw := r.Entry.GetRaw()
	if err := ledger.CheckInclusion(t, seq, raw, r.Proof); err != nil {
		return Proof{}, err
	}
	p := Proof{Entry: entryOf(r.Entry), Leaf: raw, LeafHash: ledger.LeafHash(raw), LeafIndex: int64(seq) - 1, Head: t, SignedNote: r.SignedNote}
	for _, h := range r.Proof {
		var x ledger.Hash
		copy(x[:], h)
		p.AuditPath = append(p.AuditPath, x)
	}
	return p, nil
}
