package dataplane

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/internal/bus"
)

// A batch's time to live is fixed when it is stored, from its dataset's
// retention then. An owner who shortens the retention later (to meet a
// duty to delete) expects the batches already stored to go too: every
// Config.RetentionSweep each node purges, per dataset holding data, the batches
// stored before now less the dataset's retention, and stops counting them
// against the quotas. Purging is idempotent, so every node may sweep.

// DefaultRetentionSweep is how often stored batches are held to their
// dataset's current retention (Config.RetentionSweep).
const DefaultRetentionSweep = time.Minute

func (p *Plane) retentionLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.RetentionSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.sweepRetention(ctx); err != nil && ctx.Err() == nil {
			p.lg.Warn("retention sweep", "err", err)
		}
	}
}

// sweepRetention purges what each dataset holds beyond its retention.
func (p *Plane) sweepRetention(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := p.js.Stream(ctx, bus.DataStream)
	if err != nil {
		return err
	}
	def := bus.DataLimitsOf(stream.CachedInfo().Config).Retention
	now := p.cfg.Now()
	for _, id := range p.usage.datasets() {
		ds, err := p.cp.Dataset(id)
		if err != nil {
			continue
		}
		r := ds.Retention.Duration()
		if r == 0 {
			r = def
		}
		if r <= 0 || r >= bus.DataMaxAge {
			continue
		}
		if err := p.purgeBefore(ctx, stream, id, now.Add(-r)); err != nil {
			return err
		}
	}
	return nil
}

// purgeBefore removes dataset id's batches stored before cutoff.
func (p *Plane) purgeBefore(ctx context.Context, stream jetstream.Stream, id catalog.DatasetID, cutoff time.Time) error {
	subject := bus.DataPrefix + string(id)
	oldest, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !oldest.Time.Before(cutoff) {
		return nil // nothing older than the retention
	}
	// The first batch stored at or after the cutoff ends the purge; with
	// none, everything stored up to now goes (a batch stored meanwhile
	// has a later sequence and stays).
	var keepFrom uint64
	if info, err := stream.Info(ctx); err == nil {
		keepFrom = info.State.LastSeq + 1
	} else {
		return err
	}
	cons, err := p.js.OrderedConsumer(ctx, bus.DataStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &cutoff, HeadersOnly: true,
	})
	if err != nil {
		return err
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return err
	}
	for m := range batch.Messages() {
		if md, err := m.Metadata(); err == nil && md.Sequence.Stream < keepFrom {
			keepFrom = md.Sequence.Stream
		}
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(keepFrom)); err != nil {
		return err
	}
	p.usage.forget(id, cutoff)
	p.lg.Info("batches past their dataset's retention purged", "dataset", id, "stored_before", cutoff, "kept_from_seq", keepFrom)
	return nil
}
