package exchange

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/internal/store"
)

// IntegrityError says that a node's state does not verify: its log does
// not chain, or its views are not what the log gives. Such a node serves
// no decision: every access decision must be a function of the verified
// log.
type IntegrityError struct {
	Seq    uint64 // the entry at fault (0: not known)
	Key    string // the view that differs, if any
	InLog  bool   // the log itself is at fault: rebuilding the views will not help
	Detail string
}

func (e *IntegrityError) Error() string {
	var b strings.Builder
	if e.InLog {
		fmt.Fprintf(&b, "the ledger does not verify at entry %d: %s; ", e.Seq, e.Detail)
		b.WriteString("restore the XHUB_LEDGER stream from a replica or backup (`xhub ledger verify` names the entry; a head a department saved proves the original)")
		return b.String()
	}
	b.WriteString("this node's views do not match its ledger")
	if e.Seq > 0 {
		fmt.Fprintf(&b, " at entry %d", e.Seq)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, " (view %s)", e.Key)
	}
	fmt.Fprintf(&b, ": %s; the data dir's Badger was changed outside the hub: restart with `xhub serve --rebuild-views` to rebuild the views from the ledger", e.Detail)
	return b.String()
}

// verifyViews replays entries 1..applied of the log into a store in
// memory, checking that each entry parses and chains to its predecessor,
// and compares the result, key by key, with the views on disk: the raw
// entries, the Merkle tree hashes, the applied sequence and every view.
// The first difference is returned as an *IntegrityError.
func (cp *ControlPlane) verifyViews(ctx context.Context, applied uint64) error {
	if applied == 0 {
		return nil
	}
	mem, err := cp.replayLog(ctx, applied)
	if err != nil {
		return err
	}
	defer mem.Close()
	d, err := cp.st.FirstDifference(mem)
	if err != nil || !d.Differ {
		return err
	}
	return cp.explainDifference(d)
}

// rebuildViews replaces views written in another format (keyspace.Format)
// with those a replay of entries 1..applied gives, checked as verifyViews
// checks them: each entry must be the one this node's Merkle tree
// committed to (the tree hashes, keyspace.TreeHashes, keep their format)
// and chain to its predecessor. The format is written last, so a node
// stopped half-way rebuilds again at its next start.
func (cp *ControlPlane) rebuildViews(ctx context.Context, applied uint64, old int) error {
	start := time.Now()
	cp.lg.Warn("views written in another format: rebuilding them from the ledger", "old_format", old, "new_format", keyspace.Format, "entries", applied)
	mem, err := cp.replayLog(ctx, applied)
	if err != nil {
		return err
	}
	defer mem.Close()
	if err := mem.Update(func(txn *store.Txn) error { return txn.Delete(keyspace.FormatKey) }); err != nil {
		return err
	}
	if err := cp.st.ReplaceWith(mem); err != nil {
		return fmt.Errorf("exchange: rebuild views: %w", err)
	}
	if err := cp.writeFormat(); err != nil {
		return err
	}
	cp.lg.Info("views rebuilt from the ledger", "old_format", old, "new_format", keyspace.Format, "entries", applied, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// viewsFormat is the format the views on disk were written in: 0 when
// the store is empty (a new node), 1 for views from before formats were
// recorded.
func (cp *ControlPlane) viewsFormat() (int, error) {
	empty, err := cp.st.Empty()
	if err != nil || empty {
		return 0, err
	}
	format := 1
	err = cp.st.View(func(txn *store.Txn) error {
		_, err := txn.Get(keyspace.FormatKey, &format)
		return err
	})
	return format, err
}

func (cp *ControlPlane) writeFormat() error {
	return cp.st.Update(func(txn *store.Txn) error { return txn.Put(keyspace.FormatKey, keyspace.Format) })
}

// replayLog applies entries 1..applied of the log to a new store in
// memory (with this format recorded), checking that each is the entry
// this node's Merkle tree holds and chains to its predecessor; it sets
// this node's ledger bytes from the replay.
func (cp *ControlPlane) replayLog(ctx context.Context, applied uint64) (*store.Store, error) {
	mem, err := store.OpenMemory()
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			mem.Close()
		}
	}()
	if err := mem.Update(func(txn *store.Txn) error { return txn.Put(keyspace.FormatKey, keyspace.Format) }); err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	cfg := cp.cfg
	cfg.Events, cfg.Logger, cfg.Store = nil, quiet, mem
	replay := &ControlPlane{
		cfg: cfg, st: mem, log: cp.log, lg: quiet, head: cp.head,
		advanced: make(chan struct{}), ended: make(chan struct{}),
		creds: make(map[string]Credential), index: catalog.NewIndex(), grants: newGrantIndex(),
		pending: make(map[shares.RequestID]shares.Request), ledgerBytes: make(map[catalog.DeptID]int64),
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan ledger.Message, 4*cfg.ApplyBatch)
	cc, err := cp.log.Follow(fctx, 1, msgs)
	if err != nil {
		return nil, fmt.Errorf("verify views: read the log: %w", err)
	}
	defer cc()
	var prev ledger.Hash
	batch := make([]ledger.Message, 0, cfg.ApplyBatch)
	for seq := uint64(1); seq <= applied; seq++ {
		var m ledger.Message
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return nil, fmt.Errorf("verify views: reading entry %d of %d: %w", seq, applied, ctx.Err())
		}
		if m.Seq != seq {
			return nil, &IntegrityError{Seq: seq, InLog: true, Detail: fmt.Sprintf("the log has entry %d where %d belongs", m.Seq, seq)}
		}
		leaf := ledger.LeafHash(m.Raw)
		if !cp.storedLeafIs(seq, leaf) {
			return nil, &IntegrityError{Seq: seq, InLog: true, Detail: "the log's entry differs from the one this node applied and committed to in its Merkle tree"}
		}
		if _, err := ledger.Check(m.Raw, seq, prev); err != nil {
			return nil, &IntegrityError{Seq: seq, InLog: true, Detail: reasonOf(err)}
		}
		prev = leaf
		if batch = append(batch, m); len(batch) == cap(batch) || seq == applied {
			if err := replay.applyBatch(batch); err != nil {
				return nil, fmt.Errorf("verify views: replay: %w", err)
			}
			batch = batch[:0]
		}
	}
	// The views on disk hold no ledger bytes (they are counted in
	// memory, so that views written before the count verify as they
	// are): the replay's count of entries 1..applied is this node's;
	// the apply loop counts on from applied+1.
	cp.mu.Lock()
	cp.ledgerBytes = replay.ledgerBytes
	cp.mu.Unlock()
	ok = true
	return mem, nil
}

// explainDifference names the entry behind the first difference between
// the views on disk (A) and the replayed log (B).
func (cp *ControlPlane) explainDifference(d store.Difference) error {
	key := d.Key
	switch {
	case bytes.HasPrefix(key, []byte(keyspace.Entries)) && len(key) == len(keyspace.Entries)+8:
		seq := binary.BigEndian.Uint64(key[len(keyspace.Entries):])
		if d.A != nil && d.B != nil && cp.storedLeafIs(seq, ledger.LeafHash(d.A)) {
			// The node's copy matches the tree it committed to: the log
			// was changed after it applied the entry.
			return &IntegrityError{Seq: seq, InLog: true, Detail: "the log's entry is not the one this node applied and committed to in its Merkle tree"}
		}
		return &IntegrityError{Seq: seq, Key: keyspace.Entries.Key(fmt.Sprint(seq)), Detail: "the stored copy of the entry differs from the log"}
	case bytes.HasPrefix(key, []byte(keyspace.TreeHashes)) && len(key) == len(keyspace.TreeHashes)+8:
		return &IntegrityError{Key: keyspace.TreeHashes.Key(fmt.Sprint(binary.BigEndian.Uint64(key[len(keyspace.TreeHashes):]))), Detail: "a stored Merkle tree hash differs from the log's"}
	}
	e := &IntegrityError{Key: string(key)}
	var v struct {
		Seq uint64 `json:"seq"`
	}
	for _, b := range [][]byte{d.B, d.A} {
		if b != nil && json.Unmarshal(b, &v) == nil && v.Seq > 0 {
			e.Seq = v.Seq
			break
		}
	}
	switch {
	case d.A == nil:
		e.Detail = "the view is missing"
	case d.B == nil:
		e.Detail = "the log gives no such view"
	default:
		e.Detail = "the view differs from what the log gives"
	}
	if e.Seq > 0 {
		e.Detail += fmt.Sprintf(" (last written by entry %d)", e.Seq)
	}
	return e
}

// reasonOf is a ledger check's reason without its entry number (the
// IntegrityError names the entry).
func reasonOf(err error) string {
	var me *ledger.MismatchError
	if errors.As(err, &me) {
		return me.Reason
	}
	return err.Error()
}

func leafIndex(seq uint64) int64 { return tlog.StoredHashIndex(0, int64(seq-1)) }

// storedLeafIs reports whether the node's tree holds leaf as entry seq's
// hash.
func (cp *ControlPlane) storedLeafIs(seq uint64, leaf ledger.Hash) bool {
	ok := false
	_ = cp.st.View(func(txn *store.Txn) error {
		hs, err := txnHashReader{txn}.ReadHashes([]int64{leafIndex(seq)})
		ok = err == nil && hs[0] == leaf
		return nil
	})
	return ok
}
