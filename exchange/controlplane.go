package exchange

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
	"github.com/xhub-gov/xhub/schemas"
)

// Config configures a ControlPlane.
type Config struct {
	// Store holds the materialised views (required).
	Store *store.Store
	// Log is the control-plane log (required); bus.LedgerLog is the one
	// on JetStream.
	Log Log
	// Now is the clock. Zero: time.Now.
	Now func() time.Time
	// Logger receives structured logs. Zero: discard.
	Logger *slog.Logger
	// ReadWait bounds how long a read waits for min_seq. Zero: 5s.
	ReadWait time.Duration
	// ApplyBatch is the most entries applied in one Badger transaction.
	// Zero: 256.
	ApplyBatch int
	// ResponseDays is how long an owner has to answer a conditional
	// request before it shows as overdue. Zero: 10.
	ResponseDays int
	// MaxGrantDays bounds a grant's duration. Zero: 365.
	MaxGrantDays int
	// DisputeDays is how many working days an owner has to answer a data
	// dispute. Zero: shares.DefaultDisputeDays (5).
	DisputeDays int
	// MaxPendingRequests bounds the share requests one department may
	// have pending at once, across all datasets. Zero: 100.
	MaxPendingRequests int
	// DeptLedgerBytes bounds the bytes of the ledger entries one
	// department's identities (its officers and systems) may append, over
	// the log's life: the ledger keeps every entry, and its room in the
	// store is every department's. The operator's and the hub's own
	// entries are not counted. Zero: 32 MiB.
	DeptLedgerBytes int64
	// SweepInterval is how often this node looks for grants due to expire
	// (and open requests still to grant). Zero: 1s; negative: never (tests).
	SweepInterval time.Duration
	// Events, if set, receives share events for each department's
	// officers (bus.Events sends them on xhub.ev.<dept>).
	Events EventPublisher
}

// Log is the control-plane log as the driver uses it: an append that
// only succeeds on the expected last entry, and an ordered follow.
type Log interface {
	// Append stores raws as entries after+1, after+2, … and returns the
	// last one stored: a prefix of raws, all of them unless err says why
	// not (ledger.ErrConflict: the log had moved on, the rest is not
	// stored; ledger.ErrUnknownOutcome: it may be).
	Append(ctx context.Context, raws [][]byte, after uint64) (uint64, error)
	// LastSeq is the newest entry's sequence.
	LastSeq(ctx context.Context) (uint64, error)
	// Follow delivers every entry from from on, in order, until the
	// returned stop is called or ctx ends.
	Follow(ctx context.Context, from uint64, out chan<- ledger.Message) (func(), error)
}

// EventPublisher sends one event to a department's officers.
type EventPublisher interface {
	PublishEvent(dept catalog.DeptID, data []byte) error
}

func (c *Config) validate() error {
	if c.Store == nil || c.Log == nil {
		return errors.New("exchange: Config.Store and Config.Log are required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ReadWait <= 0 {
		c.ReadWait = 5 * time.Second
	}
	if c.ApplyBatch <= 0 {
		c.ApplyBatch = 256
	}
	if c.ResponseDays == 0 {
		c.ResponseDays = 10
	}
	if c.MaxGrantDays == 0 {
		c.MaxGrantDays = 365
	}
	if c.DisputeDays == 0 {
		c.DisputeDays = shares.DefaultDisputeDays
	}
	if c.MaxPendingRequests <= 0 {
		c.MaxPendingRequests = 100
	}
	if c.DeptLedgerBytes <= 0 {
		c.DeptLedgerBytes = DefaultDeptLedgerBytes
	}
	if c.ResponseDays < 1 || c.MaxGrantDays < 1 {
		return errors.New("exchange: ResponseDays and MaxGrantDays must be positive")
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Second
	}
	return nil
}

// ControlPlane is one node's view of the control-plane log: it appends
// commands as entries and applies entries, in order, to the store.
type ControlPlane struct {
	cfg Config
	st  *store.Store
	log Log
	lg  *slog.Logger

	ops   chan *op // commands waiting for the appender (groupcommit.go)
	stats appendStats
	head  *headReads // where the log ends, for refusals (CatchUp)
	// drafted are the share requests in the appender's draft: those
	// not applied yet count as pending (pendingOf).
	drafted []draftedRequest
	// draftedBytes are the department entries in the appender's draft:
	// those not applied yet count towards their department's ledger
	// bytes (ledgerRoom).
	draftedBytes []draftedEntry

	mu        sync.RWMutex
	applied   uint64
	advanced  chan struct{}          // closed and replaced whenever applied grows
	ended     chan struct{}          // closed and replaced when an entry ends access
	watchers  map[catalog.DeptID]int // event watchers per department (WatchEvents)
	creds     map[string]Credential
	index     *catalog.Index
	grants    grantIndex
	pending   map[shares.RequestID]shares.Request // pending requests
	compiled  schemas.Cache
	applyErr  error
	integrity error // non-nil: the log or the views do not verify
	stopApply context.CancelFunc
	done      chan struct{}

	// ledgerBytes (under mu) are the bytes of the applied entries of
	// each department's identities (ledgerquota.go): in memory only,
	// from the log (verifyViews's replay, then every entry applied).
	ledgerBytes map[catalog.DeptID]int64
}

// Open loads the views, then follows the log from the last applied entry.
func Open(ctx context.Context, cfg Config) (*ControlPlane, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cp := &ControlPlane{
		cfg: cfg, st: cfg.Store, log: cfg.Log, lg: cfg.Logger,
		head:     &headReads{read: cfg.Log.LastSeq, wait: cfg.ReadWait},
		advanced: make(chan struct{}),
		ended:    make(chan struct{}),
		creds:    make(map[string]Credential),
		index:    catalog.NewIndex(),
		grants:   newGrantIndex(),
		pending:  make(map[shares.RequestID]shares.Request),
		done:     make(chan struct{}),
		ops:      make(chan *op, maxQueuedCommands),

		ledgerBytes: make(map[catalog.DeptID]int64),
	}
	var applied uint64
	if err := cp.st.View(func(txn *store.Txn) error {
		m, err := readMeta(txn)
		applied = m.Applied
		return err
	}); err != nil {
		return nil, err
	}
	last, err := cp.log.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	if last < applied {
		return nil, fmt.Errorf("exchange: the local views have applied entry %d but the log ends at %d: this data dir's badger belongs to another log; start with --rebuild-views to rebuild it from the log", applied, last)
	}
	// What the node enforces must be a function of the verified log:
	// replay it and compare before serving anything; views written in
	// another format are made again from the replay.
	format, err := cp.viewsFormat()
	if err != nil {
		return nil, err
	}
	switch {
	case format == 0:
		err = cp.writeFormat()
	case format != keyspace.Format:
		err = cp.rebuildViews(ctx, applied, format)
	default:
		err = cp.verifyViews(ctx, applied)
	}
	if err != nil {
		var ie *IntegrityError
		if !errors.As(err, &ie) {
			return nil, err
		}
		cp.lg.Error("node refuses to serve: state does not verify", "err", ie)
		cp.integrity = ie
	}
	if err := cp.load(); err != nil {
		return nil, err
	}
	if cp.integrity != nil {
		// Frozen: no apply, no sweeps, no appends. Ledger reads still
		// answer, so `xhub ledger verify` can name the entry.
		cp.stopApply = func() {}
		close(cp.done)
		return cp, nil
	}
	actx, cancel := context.WithCancel(context.Background())
	cp.stopApply = cancel
	msgs := make(chan ledger.Message, 4*cfg.ApplyBatch)
	cc, err := cp.log.Follow(actx, cp.applied+1, msgs)
	if err != nil {
		cancel()
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cc()
		cp.applyLoop(actx, msgs)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		cp.appendLoop(actx)
	}()
	if cfg.SweepInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp.sweepLoop(actx)
		}()
	}
	go func() {
		wg.Wait()
		close(cp.done)
	}()
	return cp, nil
}

// Integrity is nil when this node's log and views verified at start and
// since; otherwise an *IntegrityError saying which entry is wrong. A node
// with an integrity error must not serve.
func (cp *ControlPlane) Integrity() error {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	return cp.integrity
}

// Close stops the apply loop and waits for it. It does not close the store.
func (cp *ControlPlane) Close() {
	cp.stopApply()
	<-cp.done
}

// Err is why the apply loop stopped on its own (nil while it runs and
// after Close). An *IntegrityError means the log stopped verifying (see
// Integrity).
func (cp *ControlPlane) Err() error {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	return cp.applyErr
}

// Done is closed once the apply loop has stopped.
func (cp *ControlPlane) Done() <-chan struct{} { return cp.done }

// Applied is the sequence of the last applied entry.
func (cp *ControlPlane) Applied() uint64 {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	return cp.applied
}

// WaitApplied waits until entry seq is applied, at most the configured
// ReadWait (or until ctx ends).
func (cp *ControlPlane) WaitApplied(ctx context.Context, seq uint64) error {
	return cp.waitApplied(ctx, seq, cp.cfg.ReadWait)
}

func (cp *ControlPlane) waitApplied(ctx context.Context, seq uint64, wait time.Duration) error {
	if seq == 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		cp.mu.RLock()
		applied, ch, aerr := cp.applied, cp.advanced, cp.applyErr
		if aerr == nil {
			aerr = cp.integrity
		}
		cp.mu.RUnlock()
		if applied >= seq {
			return nil
		}
		if aerr != nil {
			return &vocab.Error{Kind: vocab.KindUnavailable, Msg: "apply loop stopped: " + aerr.Error()}
		}
		select {
		case <-ch:
		case <-timer.C:
			return &vocab.Error{Kind: vocab.KindUnavailable, Msg: fmt.Sprintf("entry %d not applied on this node within %s (applied: %d)", seq, wait, applied)}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CatchUp waits, at most the configured ReadWait, until this node has
// applied everything the log held when it was called. A node further
// behind than that, or one that cannot read where the log ends, answers
// KindUnavailable naming how far behind it is: what it would refuse
// might be allowed by an entry another node has already acknowledged, so
// the caller is told to try again, never given a refusal judged on a
// state older than the log's head.
func (cp *ControlPlane) CatchUp(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, cp.cfg.ReadWait)
	defer cancel()
	head, err := cp.head.last(cctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &vocab.Error{Kind: vocab.KindUnavailable, Msg: fmt.Sprintf("this node cannot read where the log ends (%v): try again", err)}
	}
	err = cp.waitApplied(cctx, head, cp.cfg.ReadWait)
	if err == nil || ctx.Err() != nil || cp.Err() != nil || cp.Integrity() != nil {
		return err
	}
	// Timed out: the apply loop runs, but not fast enough.
	applied := cp.Applied()
	return &vocab.Error{Kind: vocab.KindUnavailable, Msg: fmt.Sprintf("this node is behind the log (it has applied %d of %d entries) and cannot judge this yet: try again, or ask another node", applied, head)}
}

// StateRefusal reports whether err refuses a call for what the state
// holds (or lacks): a refusal another node's newer entry may undo, unlike
// malformed input or a spent bound. Such a refusal is judged on the log's
// head (CatchUp) before it is answered.
func StateRefusal(err error) bool {
	switch vocab.KindOf(err) {
	case vocab.KindNotFound, vocab.KindExists, vocab.KindPrecondition, vocab.KindDenied:
		return true
	}
	return false
}

// Keys of the views (every prefix is in package keyspace).
var (
	keyApplied = keyspace.Meta.Key("applied")
	keyLast    = keyspace.Meta.Key("last")
	keyInit    = keyspace.Meta.Key("init")
)

func entryKey(seq uint64) []byte { return binKey(keyspace.Entries, seq) }

func hashKey(index int64) []byte { return binKey(keyspace.TreeHashes, uint64(index)) }

func binKey(prefix keyspace.Prefix, n uint64) []byte {
	k := make([]byte, len(prefix)+8)
	copy(k, prefix)
	binary.BigEndian.PutUint64(k[len(prefix):], n)
	return k
}

type meta struct {
	Applied uint64
	Last    ledger.Hash
}

func readMeta(txn *store.Txn) (meta, error) {
	var m meta
	if _, err := txn.Get(keyApplied, &m.Applied); err != nil {
		return m, err
	}
	if _, err := txn.Get(keyLast, &m.Last); err != nil {
		return m, err
	}
	return m, nil
}

// load fills the in-memory caches from the store.
func (cp *ControlPlane) load() error {
	return cp.st.View(func(txn *store.Txn) error {
		m, err := readMeta(txn)
		if err != nil {
			return err
		}
		cp.applied = m.Applied
		if err := scanJSON(txn, string(keyspace.Credentials), func(c Credential) { cp.creds[c.Serial] = c }); err != nil {
			return err
		}
		if err := scanJSON(txn, shares.GrantPrefix, func(g shares.Grant) { cp.grants.put(g) }); err != nil {
			return err
		}
		if err := scanJSON(txn, shares.RequestPrefix, func(r shares.Request) {
			if r.Status == shares.RequestPending {
				cp.pending[r.ID] = r
			}
		}); err != nil {
			return err
		}
		return scanJSON(txn, string(keyspace.Datasets), func(d catalog.Dataset) { cp.index.Put(d) })
	})
}

func scanJSON[T any](txn *store.Txn, prefix string, fn func(T)) error {
	return txn.Scan(prefix, "", func(key string, val []byte) (bool, error) {
		var v T
		if err := jsonUnmarshal(val, &v); err != nil {
			return false, fmt.Errorf("view %s: %w", key, err)
		}
		fn(v)
		return true, nil
	})
}

// applyLoop applies entries in batches: one Badger transaction per batch,
// with the applied sequence in the same transaction.
func (cp *ControlPlane) applyLoop(ctx context.Context, msgs <-chan ledger.Message) {
	batch := make([]ledger.Message, 0, cp.cfg.ApplyBatch)
	for {
		batch = batch[:0]
		select {
		case m := <-msgs:
			batch = append(batch, m)
		case <-ctx.Done():
			return
		}
	fill:
		for len(batch) < cp.cfg.ApplyBatch {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if err := cp.applyBatch(batch); err != nil {
			cp.lg.Error("apply stopped", "err", err)
			cp.mu.Lock()
			cp.applyErr = err
			if ie := (*IntegrityError)(nil); errors.As(err, &ie) {
				cp.integrity = ie
			}
			close(cp.advanced)
			cp.advanced = make(chan struct{})
			cp.mu.Unlock()
			return
		}
	}
}

// errVoided makes applyBatch discard its transaction and start the batch
// again with one more entry voided.
var errVoided = errors.New("entry voided: apply the batch again")

func (cp *ControlPlane) applyBatch(batch []ledger.Message) error {
	// An entry its state machines refuse is void: it stays in the log and
	// the tree, and none of its writes stay in the views. Badger has no
	// savepoint, so the batch's transaction is discarded and the batch
	// applied again with the entry skipped. Deterministic on every node.
	void := map[uint64]bool{}
	for {
		err := cp.applyBatchOnce(batch, void)
		if !errors.Is(err, errVoided) {
			return err
		}
	}
}

func (cp *ControlPlane) applyBatchOnce(batch []ledger.Message, void map[uint64]bool) error {
	var after []func()
	var applied uint64
	var ended bool
	var counted map[catalog.DeptID]int64
	err := cp.st.Update(func(txn *store.Txn) error {
		after = after[:0]
		ended = false
		counted = map[catalog.DeptID]int64{}
		m, err := readMeta(txn)
		if err != nil {
			return err
		}
		for _, msg := range batch {
			if msg.Seq <= m.Applied {
				continue // redelivered
			}
			if msg.Seq != m.Applied+1 {
				return fmt.Errorf("gap in the log: applied %d, got %d", m.Applied, msg.Seq)
			}
			leaf := ledger.LeafHash(msg.Raw)
			if err := txn.PutRaw(entryKey(msg.Seq), msg.Raw); err != nil {
				return err
			}
			hashes, err := tlog.StoredHashesForRecordHash(int64(msg.Seq-1), leaf, txnHashReader{txn})
			if err != nil {
				return fmt.Errorf("tree hashes for %d: %w", msg.Seq, err)
			}
			base := tlog.StoredHashIndex(0, int64(msg.Seq-1))
			for i, h := range hashes {
				if err := txn.PutRaw(hashKey(base+int64(i)), h[:]); err != nil {
					return err
				}
			}
			e, err := ledger.Check(msg.Raw, msg.Seq, m.Last)
			if err == nil {
				// A void entry takes its room in the log all the same.
				if dept, ok := countedDept(e.Actor); ok {
					counted[dept] += int64(len(msg.Raw))
				}
			}
			switch {
			case err != nil:
				// No node appends such an entry: the log was written
				// around the hub. Stop rather than decide on it.
				return &IntegrityError{Seq: msg.Seq, InLog: true, Detail: reasonOf(err)}
			case void[e.Seq]:
			default:
				fn, err := cp.apply(txn, e)
				if err != nil {
					cp.lg.Warn("ledger entry refused at apply; void", "seq", e.Seq, "kind", e.Kind, "err", err)
					void[e.Seq] = true
					return errVoided
				}
				if fn != nil {
					after = append(after, fn)
				}
				ended = ended || endsAccess(e.Kind)
			}
			m.Applied, m.Last = msg.Seq, leaf
		}
		applied = m.Applied
		if err := txn.Put(keyApplied, m.Applied); err != nil {
			return err
		}
		return txn.Put(keyLast, m.Last)
	})
	if err != nil {
		return err
	}
	cp.mu.Lock()
	for _, fn := range after {
		fn()
	}
	for dept, n := range counted {
		cp.ledgerBytes[dept] += n
	}
	if applied > cp.applied {
		cp.applied = applied
		close(cp.advanced)
		cp.advanced = make(chan struct{})
	}
	if ended {
		close(cp.ended)
		cp.ended = make(chan struct{})
	}
	cp.mu.Unlock()
	return nil
}

// endsAccess reports whether an entry of kind may end someone's access.
func endsAccess(kind string) bool {
	switch kind {
	case ledger.KindGrantRevoked, ledger.KindGrantExpired, ledger.KindDatasetRetired, ledger.KindCredRevoked:
		return true
	}
	return false
}

// AccessEnded returns a channel closed when this node next applies an
// entry that ends access: a grant revoked or expired, a dataset retired, a
// credential revoked. Take a new channel after each close. Open streams
// and the data plane's cleanup wait on it instead of polling.
func (cp *ControlPlane) AccessEnded() <-chan struct{} {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	return cp.ended
}

type txnHashReader struct{ txn *store.Txn }

func (r txnHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		b, ok, err := r.txn.GetRaw(hashKey(idx))
		if err != nil {
			return nil, err
		}
		if !ok || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("tree hash %d missing", idx)
		}
		copy(out[i][:], b)
	}
	return out, nil
}
