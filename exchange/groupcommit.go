package exchange

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// Group commit. Every command a node receives goes through its one
// appender: it takes the commands waiting, drafts their entries one after
// another in a Badger transaction it then throws away — each command
// validated against the applied state plus the entries drafted before it,
// each entry applied to the draft by the same state machines that will
// apply it for real — and appends the group to the log in one atomic
// append that expects the last applied entry. A command the draft refuses
// gets its error and no entry; a group that loses the race to another
// node's append is drafted again on the state that includes it, and so is
// a group that comes after this node applied another node's entries (a
// refusal must come from a state that includes everything applied). One round
// trip to the log's replicas is shared by the whole group: that is what
// lets a node with many writers keep up on R3 streams.

// command validates a change against the applied state and builds its
// entry; it runs inside a draft transaction.
type command func(txn *store.Txn, now time.Time) (subject string, body any, err error)

// maxAttempts bounds retries when other nodes keep appending first.
const maxAttempts = 50

// unknownBudget bounds how long a command keeps trying after appends whose
// outcome it could not learn (the log's leader moving).
const unknownBudget = 20 * time.Second

// maxQueuedCommands bounds the commands waiting for the appender; more
// callers wait (bounded by their own deadlines) to queue.
const maxQueuedCommands = 4096

// maxGroup and maxGroupBytes bound one group: the atomic append's entry
// count (bus.MaxAppendBatch), and its bytes.
const (
	maxGroup      = 256
	maxGroupBytes = 1 << 20
)

// op is one command waiting for the appender.
type op struct {
	ctx   context.Context
	actor vocab.Identity
	rid   string
	cmd   func(txn *store.Txn, now time.Time) (kind, subject string, body any, err error)
	done  chan opResult // buffered: the appender never waits on a caller
}

type opResult struct {
	seq  uint64
	kind string
	err  error
}

// submit appends one entry: it validates cmd against the state as of the
// last applied entry (and the entries grouped before it), appends, and on
// a conflict catches up and tries again (re-validating). It returns once
// this node has applied the new entry.
func (cp *ControlPlane) submit(ctx context.Context, actor vocab.Identity, kind string, cmd command) (uint64, error) {
	return cp.submitKind(ctx, actor, func(txn *store.Txn, now time.Time) (string, string, any, error) {
		subject, body, err := cmd(txn, now)
		return kind, subject, body, err
	})
}

// submitKind is submit for a command that decides the entry's kind.
func (cp *ControlPlane) submitKind(ctx context.Context, actor vocab.Identity, cmd func(txn *store.Txn, now time.Time) (kind, subject string, body any, err error)) (uint64, error) {
	o := &op{ctx: ctx, actor: actor, rid: requestIDFrom(ctx), cmd: cmd, done: make(chan opResult, 1)}
	select {
	case cp.ops <- o:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-cp.done:
		return 0, cp.stopped()
	}
	select {
	case r := <-o.done:
		if r.err == nil {
			cp.lg.Info("ledger entry appended", "seq", r.seq, "kind", r.kind, "actor", actor.URI(), "request_id", o.rid)
		}
		return r.seq, r.err
	case <-ctx.Done():
		// The command may still be appended: the caller's request id,
		// if it tries again, finds it.
		return 0, ctx.Err()
	case <-cp.done:
		return 0, cp.stopped()
	}
}

// stopped is the error of a command on a node whose appender has stopped.
func (cp *ControlPlane) stopped() error {
	if err := cp.Integrity(); err != nil {
		return &vocab.Error{Kind: vocab.KindUnavailable, Msg: "this node's state does not verify; it appends nothing: " + err.Error()}
	}
	if err := cp.Err(); err != nil {
		return &vocab.Error{Kind: vocab.KindUnavailable, Msg: "apply loop stopped: " + err.Error()}
	}
	return &vocab.Error{Kind: vocab.KindUnavailable, Msg: "this node's control plane is closed"}
}

// appendLoop is the node's one appender: it takes the commands waiting
// and commits them, keeping its draft from one group to the next.
func (cp *ControlPlane) appendLoop(ctx context.Context) {
	a := &appender{cp: cp, inflight: make(chan struct{}, maxGroupsApplying)}
	defer a.reset()
	for {
		var ops []*op
		select {
		case o := <-cp.ops:
			ops = append(ops, o)
		case <-ctx.Done():
			return
		}
	fill:
		for len(ops) < maxQueuedCommands {
			select {
			case o := <-cp.ops:
				ops = append(ops, o)
			default:
				break fill
			}
		}
		a.commit(ctx, ops)
	}
}

// maxGroupsApplying bounds the groups appended and not yet applied on this
// node (each answered, when applied, by its own goroutine).
const maxGroupsApplying = 8

// maxDraftEntries and maxDraftBytes bound a draft before it is begun anew
// on the applied state.
const (
	maxDraftEntries = 4096
	maxDraftBytes   = 1 << 20
)

// appender is the state of the node's appender between groups: the draft
// holds the applied state plus every entry appended since it began (which
// this node may not have applied yet), so the next group is drafted
// without waiting for the last one to be applied.
type appender struct {
	cp       *ControlPlane
	d        *store.Draft // nil: begin one on the applied state
	m        meta         // the draft's last entry
	appended uint64       // the last entry this appender stored
	entries  int          // drafted in d
	bytes    int
	inflight chan struct{} // one token per group appended, not yet answered
}

// reset drops the draft (after a conflict, a refusal mid-entry, when this
// node has applied entries it does not hold, or when it has grown): the
// next group is drafted on the applied state, once this node has applied
// every entry the old draft held.
func (a *appender) reset() {
	if a.d != nil {
		a.d.Discard()
		a.d = nil
	}
	a.cp.clearDrafted()
}

// begin starts a draft on the applied state, after waiting until the
// entries the last draft appended are applied.
func (a *appender) begin(ctx context.Context) error {
	if err := a.cp.waitApplied(ctx, a.appended, max(a.cp.cfg.ReadWait, unknownBudget)); err != nil {
		return err
	}
	a.d = a.cp.st.BeginDraft()
	m, err := readMeta(&a.d.Txn)
	if err != nil {
		a.reset()
		return err
	}
	a.m, a.entries, a.bytes = m, 0, 0
	return nil
}

// behind reports whether this node has applied entries the draft does not
// hold: entries another node appended, after the draft's last. The draft
// then judges on a state older than the applied one — refusing, say, a
// credential for a department this node has already applied — so it is
// begun anew on the applied state. Checked before each group, it makes
// every command judged on a state that includes each entry this node had
// applied when the command reached the appender. A node that alone
// appends is never behind: its draft holds every entry it has applied.
func (a *appender) behind() bool {
	return a.cp.Applied() > a.m.Applied
}

// drafted is a command's outcome in a draft: an entry, or an error.
type drafted struct {
	op   *op
	raw  []byte
	kind string
	seq  uint64
	err  error
}

// commit appends the entries of ops, in groups of at most maxGroup, and
// has each op answered once its group is applied on this node (or failed).
func (a *appender) commit(ctx context.Context, ops []*op) {
	cp := a.cp
	started := time.Now()
	attempts := 0
	fail := func(ops []*op, err error) {
		for _, o := range ops {
			o.done <- opResult{err: err}
		}
	}
	refused := map[*op]error{} // by the state machines, in an earlier draft
	headChecked := false       // refusals judged on a state that includes the log's last entry
	for len(ops) > 0 {
		live := ops[:0:0]
		for _, o := range ops {
			if err := o.ctx.Err(); err != nil {
				o.done <- opResult{err: err}
				continue
			}
			live = append(live, o)
		}
		if len(live) == 0 {
			return
		}
		if attempts++; attempts > maxAttempts {
			fail(live, &vocab.Error{Kind: vocab.KindUnavailable, Msg: "ledger busy: lost the append race too often, try again"})
			return
		}
		if a.d != nil && (a.entries >= maxDraftEntries || a.bytes >= maxDraftBytes || a.behind()) {
			a.reset()
		}
		if a.d == nil {
			if err := a.begin(ctx); err != nil {
				fail(live, err)
				return
			}
		}
		after := a.m.Applied
		grown := a.entries
		out, rest, err := a.draft(live, refused)
		if errors.Is(err, errVoided) {
			// The draft holds part of a refused entry: begin again from
			// the applied state, without it.
			a.reset()
			continue
		}
		if errors.Is(err, store.ErrTxnTooBig) && grown > 0 {
			// The draft is full before its bound (entries whose views
			// are large): begin again from the applied state.
			a.reset()
			attempts--
			continue
		}
		if err != nil {
			a.reset()
			fail(live, err)
			return
		}
		var raws [][]byte
		for _, d := range out {
			if d.err == nil {
				raws = append(raws, d.raw)
			}
		}
		if len(raws) == 0 && !headChecked && refusesAny(out) {
			// A group of refusals appends nothing, so no expected last
			// sequence proves its draft was the log's head: an entry
			// another node appended (and acknowledged) a moment ago may
			// not be applied here yet. Judge them again once this node
			// has applied the log as it stands now, once. A node too far
			// behind to do so answers that it is, not the refusal.
			headChecked = true
			if herr := cp.CatchUp(ctx); herr != nil {
				for i := range out {
					if StateRefusal(out[i].err) {
						out[i].err = herr
					}
				}
			} else if cp.Applied() > after {
				a.reset()
				clear(refused)
				attempts--
				continue
			}
		}
		last, err := cp.log.Append(ctx, raws, after)
		// What is stored is a prefix of the group: its commands, and the
		// refusals judged before the first entry not stored, are answered
		// once this node has applied it — waiting as long as an append may
		// take to learn its outcome, rather than report a failure of what
		// succeeded — while the next group is drafted on top of it. The
		// others are drafted again.
		cut := len(out)
		for i, d := range out {
			if d.err == nil && d.seq > last {
				cut = i
				break
			}
		}
		if err != nil && last == after {
			// Nothing stored: no expected last sequence proved the draft
			// was the log's head, so the refusals drafted before the
			// first entry are judged again with it (another node's entry
			// may be what they lack).
			cut = 0
		}
		if cut > 0 {
			a.answer(ctx, out[:cut], last)
		}
		if last > after {
			a.appended = last
		}
		if err != nil {
			again := make([]*op, 0, len(out)-cut+len(rest))
			for _, d := range out[cut:] {
				again = append(again, d.op)
			}
			ops = append(again, rest...)
		}
		cp.stats.record(len(raws), last-after, err)
		switch {
		case err == nil:
		case errors.Is(err, ledger.ErrConflict):
			// Another node appended first: draft again on its entries,
			// every refusal too (the conflict proves the draft they were
			// judged on was not the head).
			a.reset()
			clear(refused)
			cctx, cancel := context.WithTimeout(ctx, cp.cfg.ReadWait)
			cerr := cp.CatchUp(cctx)
			cancel()
			if cerr != nil {
				fail(ops, cerr)
				return
			}
			continue
		case errors.Is(err, ledger.ErrUnknownOutcome) && time.Since(started) < unknownBudget:
			// Entries may be stored: catch up (once the log answers
			// again) and draft anew; request ids then find their entries,
			// and commands without one are checked against the state that
			// now includes them.
			cp.lg.Warn("ledger append outcome unknown; catching up and trying again", "entries", len(raws), "err", err)
			a.reset()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			if cerr := cp.CatchUp(cctx); cerr != nil {
				select {
				case <-time.After(200 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			cancel()
			continue
		default:
			a.reset()
			fail(ops, &vocab.Error{Kind: vocab.KindUnavailable, Msg: err.Error()})
			return
		}
		ops, started, attempts, refused, headChecked = rest, time.Now(), 0, map[*op]error{}, false
	}
}

// refusesAny reports whether a command of out was refused for what the
// draft's state holds (a replayed request is answered from its entry, and
// malformed input is refused on any state).
func refusesAny(out []drafted) bool {
	for _, d := range out {
		if StateRefusal(d.err) {
			return true
		}
	}
	return false
}

// answer has the commands of out answered once this node has applied
// entry last, by a goroutine of its own (at most maxGroupsApplying).
func (a *appender) answer(ctx context.Context, out []drafted, last uint64) {
	a.inflight <- struct{}{}
	go func() {
		defer func() { <-a.inflight }()
		werr := a.cp.waitApplied(ctx, last, max(a.cp.cfg.ReadWait, unknownBudget))
		for _, d := range out {
			switch {
			case d.err != nil:
				d.op.done <- opResult{err: d.err}
			case werr != nil:
				d.op.done <- opResult{err: werr}
			default:
				d.op.done <- opResult{seq: d.seq, kind: d.kind}
			}
		}
	}()
}

// draft drafts ops in order on top of the draft: out is the outcome of
// each command drafted, rest the commands left for the next group.
// errVoided (the op in refused) means the draft must be begun anew.
func (a *appender) draft(ops []*op, refused map[*op]error) (out []drafted, rest []*op, err error) {
	entries, bytes := 0, 0
	for i, o := range ops {
		if entries == maxGroup || entries > 0 && bytes >= maxGroupBytes {
			return out, ops[i:], nil
		}
		if err, ok := refused[o]; ok {
			out = append(out, drafted{op: o, err: err})
			continue
		}
		d, err := a.draftOne(o)
		if errors.Is(err, errVoided) {
			refused[o] = d.err
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, d)
		if d.err == nil {
			entries++
			bytes += len(d.raw)
		}
	}
	return out, nil, nil
}

// draftOne drafts one command on top of the draft's state and advances
// it. A command's own refusal is d.err; the error returned ends the
// draft: errVoided (d.err saying why) when the state machines refused the
// entry, perhaps after writing part of it.
func (a *appender) draftOne(o *op) (drafted, error) {
	cp, txn, m := a.cp, &a.d.Txn, &a.m
	d := drafted{op: o}
	if o.rid != "" {
		var rec recordedRequest
		if ok, err := txn.Get(requestKey(o.actor.URI(), o.rid), &rec); err != nil {
			return d, err
		} else if ok {
			d.err = &Replayed{Seq: rec.Seq, Kind: rec.Kind, RequestID: o.rid}
			return d, nil
		}
	}
	now := cp.cfg.Now()
	kind, subject, body, err := o.cmd(txn, now)
	if errors.Is(err, store.ErrTxnTooBig) {
		return d, err
	}
	if err != nil {
		d.err = err
		return d, nil
	}
	e, err := ledger.New(m.Applied+1, m.Last, now, o.actor.URI(), kind, subject, body)
	if err != nil {
		d.err = err
		return d, nil
	}
	e.Request = o.rid
	raw := e.Marshal()
	if err := cp.ledgerRoom(o.actor, kind, len(raw)); err != nil {
		d.err = err
		return d, nil
	}
	// Apply it to the draft as every node will: what the state machines
	// would refuse is not appended, and the commands after it see it.
	checked, err := ledger.Check(raw, e.Seq, m.Last)
	if err != nil {
		return d, fmt.Errorf("drafted entry %d does not check: %w", e.Seq, err)
	}
	if _, err := cp.apply(txn, checked); err != nil {
		if errors.Is(err, store.ErrTxnTooBig) {
			return d, err
		}
		d.err = err
		return d, errVoided
	}
	m.Applied, m.Last = e.Seq, ledger.LeafHash(raw)
	if err := txn.Put(keyApplied, m.Applied); err != nil {
		return d, err
	}
	if err := txn.Put(keyLast, m.Last); err != nil {
		return d, err
	}
	if kind == ledger.KindShareRequested {
		cp.addDrafted(e.Seq, o.actor.Dept)
	}
	if dept, ok := countedDept(e.Actor); ok {
		cp.addDraftedBytes(e.Seq, dept, len(raw))
	}
	a.entries++
	a.bytes += len(raw)
	d.raw, d.kind, d.seq = raw, kind, e.Seq
	return d, nil
}

// draftedRequest is a share request in the appender's draft.
type draftedRequest struct {
	seq  uint64
	dept catalog.DeptID
}

// clearDrafted forgets the draft's entries (the draft is dropped).
func (cp *ControlPlane) clearDrafted() {
	cp.mu.Lock()
	cp.drafted, cp.draftedBytes = nil, nil
	cp.mu.Unlock()
}

func (cp *ControlPlane) addDrafted(seq uint64, dept catalog.DeptID) {
	cp.mu.Lock()
	cp.drafted = append(cp.drafted, draftedRequest{seq, dept})
	cp.mu.Unlock()
}

// AppendStats counts the appender's work since the node started.
type AppendStats struct {
	Appends   uint64 // calls to the log's Append with entries
	Entries   uint64 // entries stored by them
	Conflicts uint64 // appends refused because another node appended first
	Unknown   uint64 // appends whose outcome was not learnt
}

type appendStats struct {
	mu sync.Mutex
	s  AppendStats
}

func (a *appendStats) record(sent int, stored uint64, err error) {
	if sent == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.s.Appends++
	a.s.Entries += stored
	switch {
	case errors.Is(err, ledger.ErrConflict):
		a.s.Conflicts++
	case errors.Is(err, ledger.ErrUnknownOutcome):
		a.s.Unknown++
	}
}

// AppendStats is what the appender has done so far.
func (cp *ControlPlane) AppendStats() AppendStats {
	cp.stats.mu.Lock()
	defer cp.stats.mu.Unlock()
	return cp.stats.s
}
