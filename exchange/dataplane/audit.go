package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
)

// Audit actions.
const (
	ActionQuery   = "query"   // records answered to a query
	ActionDeliver = "deliver" // a batch delivered to a subscriber
	ActionPublish = "publish" // a batch stored by its provider
)

// AuditEntry is one data access.
type AuditEntry struct {
	Seq             uint64            `json:"-"` // the stream message holding it
	ID              string            `json:"-"` // <seq>.<index>
	Time            time.Time         `json:"time"`
	RequestID       string            `json:"request_id"`
	Dept            catalog.DeptID    `json:"dept"` // the department that read, received or published
	Identity        string            `json:"identity"`
	Dataset         catalog.DatasetID `json:"dataset"`
	Action          string            `json:"action"`
	Fields          []string          `json:"fields,omitempty"`
	Records         int64             `json:"records"`
	Withheld        int64             `json:"withheld,omitempty"`
	WithheldReasons []string          `json:"withheld_reasons,omitempty"` // in terms of the granted fields
	// ProviderReasons are the full reasons, for the dataset's owner (and
	// the operator) only: they may name what the consumer may not read.
	ProviderReasons []string `json:"provider_reasons,omitempty"`
	Subscription    string   `json:"subscription,omitempty"`
}

// auditLog stores audit entries in JetStream. Entries are grouped: every
// AuditFlush (or 256 entries) one message per dataset holds the entries of
// that dataset, so a busy data path costs one JetStream write per group,
// not per access. An entry is stored within AuditFlush of the access.
type auditLog struct {
	js     jetstream.JetStream
	stream string
	prefix string
	lg     *slog.Logger
	in     chan AuditEntry
	done   chan struct{}
	idBase string // random, per node start
	seq    uint64 // groups stored (the flush goroutine's own)
}

// nextGroupID names the next group of entries for deduplication.
func (a *auditLog) nextGroupID() string {
	a.seq++
	return fmt.Sprintf("audit-%s-%d", a.idBase, a.seq)
}

// AuditFlush is the longest an audit entry waits to be stored.
const AuditFlush = 5 * time.Millisecond

func newAuditLog(js jetstream.JetStream, stream, prefix string, lg *slog.Logger) *auditLog {
	a := &auditLog{js: js, stream: stream, prefix: prefix, lg: lg, in: make(chan AuditEntry, 4096), done: make(chan struct{}), idBase: newRequestID()}
	go a.run()
	return a
}

func (a *auditLog) record(e AuditEntry) { a.in <- e }

// close stores what is pending and stops.
func (a *auditLog) close() {
	close(a.in)
	<-a.done
}

func (a *auditLog) run() {
	defer close(a.done)
	t := time.NewTicker(AuditFlush)
	defer t.Stop()
	var pending []AuditEntry
	for {
		select {
		case e, ok := <-a.in:
			if !ok {
				a.flush(pending)
				return
			}
			if pending = append(pending, e); len(pending) >= 256 {
				a.flush(pending)
				pending = nil
			}
		case <-t.C:
			if len(pending) > 0 {
				a.flush(pending)
				pending = nil
			}
		}
	}
}

func (a *auditLog) flush(es []AuditEntry) {
	byDataset := map[catalog.DatasetID][]AuditEntry{}
	for _, e := range es {
		byDataset[e.Dataset] = append(byDataset[e.Dataset], e)
	}
	for ds, group := range byDataset {
		b, err := json.Marshal(group)
		if err != nil {
			a.lg.Error("audit encode", "err", err)
			continue
		}
		// One message id per group, kept across attempts: a group whose
		// answer was lost while the stream's leader moved is stored once.
		_, _, err = bus.PublishOnce(context.Background(), a.js, a.prefix+string(ds), b, a.nextGroupID(), bus.AuditStream)
		if err != nil {
			a.lg.Error("audit entries not stored", "dataset", ds, "entries", len(group), "err", err)
		}
	}
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Dataset catalog.DatasetID
	Dept    catalog.DeptID // entries of accesses by this department, or to its datasets
	Since   time.Time
	After   uint64 // page: entries after this stream sequence
	Limit   int
}

// ListAudit returns a page of audit entries a viewer may see: an officer
// sees accesses to its department's datasets and by its department; the
// admin sees all. next is the sequence to continue after (0 at the end).
func (p *Plane) ListAudit(ctx context.Context, viewer vocab.Identity, f AuditFilter) ([]AuditEntry, uint64, error) {
	if f.Limit <= 0 || f.Limit > exchange.MaxPageSize {
		return nil, 0, vocab.Invalid("page_size", "%d is not between 1 and %d", f.Limit, exchange.MaxPageSize)
	}
	visible := func(e AuditEntry) bool {
		if viewer.Role == vocab.RoleAdmin {
			return true
		}
		return e.Dept == viewer.Dept || e.Dataset.Owner() == viewer.Dept
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if f.Dataset != "" {
		cfg.FilterSubjects = []string{bus.AuditPrefix + string(f.Dataset)}
	}
	switch {
	case f.After > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.After+1
	case !f.Since.IsZero():
		t := f.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	stream, err := p.js.Stream(ctx, bus.AuditStream)
	if err != nil {
		return nil, 0, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	end := info.State.LastSeq // entries stored when the listing began
	if end == 0 || f.After >= end {
		return nil, 0, nil
	}
	cons, err := p.js.OrderedConsumer(ctx, bus.AuditStream, cfg)
	if err != nil {
		return nil, 0, err
	}
	var out []AuditEntry
	var last uint64
	for len(out) < f.Limit && last < end {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			return nil, 0, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if len(out) >= f.Limit {
				continue // drain; the page ends at last
			}
			last = md.Sequence.Stream
			var group []AuditEntry
			if json.Unmarshal(m.Data(), &group) != nil {
				continue
			}
			for i, e := range group {
				e.Seq = md.Sequence.Stream
				e.ID = fmt.Sprintf("%d.%d", md.Sequence.Stream, i)
				if !visible(e) || f.Dept != "" && e.Dept != f.Dept && e.Dataset.Owner() != f.Dept || e.Time.Before(f.Since) {
					continue
				}
				if viewer.Role != vocab.RoleAdmin && e.Dataset.Owner() != viewer.Dept {
					e.ProviderReasons = nil
				}
				out = append(out, e)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, err
		}
		if n == 0 {
			return out, 0, nil
		}
	}
	if len(out) < f.Limit || last >= end {
		return out, 0, nil
	}
	return out, last, nil
}
