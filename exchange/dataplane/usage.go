package dataplane

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
)

// What a department stores is bounded at publish (quota.go). The usage
// comes from the data stream itself: each node follows XHUB_DATA with an
// ordered consumer that delivers headers only (the stored size, the
// subject, the time and the batch's TTL, never its records), and adds up
// per dataset the bytes of the batches still stored. A batch leaves the
// count when its TTL (or the stream's maximum age) has passed, rounded up
// to 1/64 of that retention, so the count errs towards too much. Before it
// decides, a publish asks the stream for its last sequence and waits until
// the follower has read that far, so every node counts every batch any
// node stored before.

// usage is the follower's count.
type usage struct {
	js  jetstream.JetStream
	lg  *slog.Logger
	now func() time.Time // wall clock: JetStream expires batches by it

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when seq advances
	seq     uint64        // last stream sequence read
	by      map[catalog.DatasetID]*stored
	cons    jetstream.Consumer // nil until the follower has started
}

// stored is what one dataset holds: bytes, and when which of them go.
type stored struct {
	bytes   int64
	expires []expiry // by at
}

type expiry struct {
	at    time.Time
	bytes int64
	last  time.Time // the latest batch counted here was stored then
}

func newUsage(js jetstream.JetStream, lg *slog.Logger) *usage {
	return &usage{js: js, lg: lg, now: time.Now, changed: make(chan struct{}), by: map[catalog.DatasetID]*stored{}}
}

// run follows the data stream until ctx ends.
func (u *usage) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := u.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		u.lg.Warn("data usage: following XHUB_DATA failed; retrying", "in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (u *usage) follow(ctx context.Context) error {
	u.mu.Lock()
	start := u.seq + 1
	u.mu.Unlock()
	cons, err := u.js.OrderedConsumer(ctx, bus.DataStream, jetstream.OrderedConsumerConfig{
		HeadersOnly: true, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
	})
	if err != nil {
		return err
	}
	u.mu.Lock()
	u.cons = cons
	u.mu.Unlock()
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return err
		}
		u.add(msg)
	}
}

// add counts one stored batch.
func (u *usage) add(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	h := msg.Headers()
	size, _ := strconv.ParseInt(h.Get(msgSizeHeader), 10, 64)
	id := catalog.DatasetID(strings.TrimPrefix(msg.Subject(), bus.DataPrefix))
	ttl := bus.DataMaxAge
	if v := h.Get(jetstream.MsgTTLHeader); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 && d < ttl {
			ttl = d
		} else if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && time.Duration(n)*time.Second < ttl {
			ttl = time.Duration(n) * time.Second
		}
	}
	var hdr int
	for k, vs := range h {
		if k == msgSizeHeader {
			continue
		}
		for _, v := range vs {
			hdr += len(k) + len(v) + 4
		}
	}
	n := BatchFootprint(msg.Subject(), hdr, int(size))
	at := expiresAt(md.Timestamp, ttl)

	u.mu.Lock()
	defer u.mu.Unlock()
	if md.Sequence.Stream <= u.seq {
		return
	}
	u.seq = md.Sequence.Stream
	close(u.changed)
	u.changed = make(chan struct{})
	if !at.After(u.now()) {
		return // already gone
	}
	s := u.by[id]
	if s == nil {
		s = &stored{}
		u.by[id] = s
	}
	s.bytes += n
	i, found := slices.BinarySearchFunc(s.expires, at, func(e expiry, t time.Time) int { return e.at.Compare(t) })
	if found {
		s.expires[i].bytes += n
		if md.Timestamp.After(s.expires[i].last) {
			s.expires[i].last = md.Timestamp
		}
	} else {
		s.expires = slices.Insert(s.expires, i, expiry{at, n, md.Timestamp})
	}
}

// BatchFootprint is what a stored batch counts against the quotas: its
// bytes with its subject, headers and the store's own framing per message.
func BatchFootprint(subject string, headerBytes, dataBytes int) int64 {
	return int64(len(subject) + headerBytes + dataBytes + storeOverhead)
}

// storeOverhead is JetStream's file store framing of one message.
const storeOverhead = 22 + 8

// expiresAt is when a batch stored at t with retention ttl has surely
// gone: t+ttl, rounded up to 1/64 of ttl (at least a second), so that one
// dataset has a few dozen expiry times at most.
func expiresAt(t time.Time, ttl time.Duration) time.Time {
	q := max(ttl/64, time.Second)
	at := t.Add(ttl)
	return time.Unix(0, (at.UnixNano()/int64(q)+1)*int64(q))
}

// datasets are the datasets holding stored batches.
func (u *usage) datasets() []catalog.DatasetID {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]catalog.DatasetID, 0, len(u.by))
	for id := range u.by {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// forget stops counting what dataset id stored before cutoff (purged):
// each expiry time whose batches were all stored before it. One holding
// later batches too stays whole: the count errs towards refusal.
func (u *usage) forget(id catalog.DatasetID, cutoff time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.by[id]
	if s == nil {
		return
	}
	kept := s.expires[:0]
	for _, e := range s.expires {
		if e.last.Before(cutoff) {
			s.bytes -= e.bytes
			continue
		}
		kept = append(kept, e)
	}
	s.expires = kept
	if len(s.expires) == 0 {
		delete(u.by, id)
	}
}

// dataset is what dataset id holds now.
func (u *usage) dataset(id catalog.DatasetID) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.expire(id)
}

// dept is what dept's datasets hold now.
func (u *usage) dept(dept catalog.DeptID) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	var n int64
	for id := range u.by {
		if id.Owner() == dept {
			n += u.expire(id)
		}
	}
	return n
}

// expire drops what has gone from id's count and returns the rest. u.mu
// is held.
func (u *usage) expire(id catalog.DatasetID) int64 {
	s := u.by[id]
	if s == nil {
		return 0
	}
	now := u.now()
	i := 0
	for i < len(s.expires) && !s.expires[i].at.After(now) {
		s.bytes -= s.expires[i].bytes
		i++
	}
	s.expires = s.expires[i:]
	if len(s.expires) == 0 {
		delete(u.by, id)
		return 0
	}
	return s.bytes
}

// catchUp waits until the follower has read every batch stored up to
// stream sequence last: read it, or found nothing more to read (the
// batches after what it read are gone).
func (u *usage) catchUp(ctx context.Context, last uint64) error {
	for {
		u.mu.Lock()
		seq, changed, cons := u.seq, u.changed, u.cons
		u.mu.Unlock()
		if seq >= last {
			return nil
		}
		if cons != nil {
			if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 && seq >= info.Delivered.Stream {
				return nil
			}
		}
		select {
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return &vocab.Error{Kind: vocab.KindUnavailable, Msg: fmt.Sprintf("the hub has not yet counted what departments store (read to batch %d of %d): try again", seq, last)}
		}
	}
}

// msgSizeHeader carries a stored message's data size in a headers-only
// delivery.
const msgSizeHeader = "Nats-Msg-Size"

// depts is what each department's datasets hold now.
func (u *usage) depts() map[catalog.DeptID]int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[catalog.DeptID]int64{}
	for id := range u.by {
		if n := u.expire(id); n > 0 {
			out[id.Owner()] += n
		}
	}
	return out
}

// dataStream reports XHUB_DATA's size, bound and quota, and what the
// departments that hold the most store (MaxDatasetSeries by name, the
// rest as dept="other"), as this node counts it.
type dataStream struct {
	p                       *Plane
	bytes, bound, deptQuota *prometheus.Desc
	deptBytes, datasetQuota *prometheus.Desc
}

func newDataStream(p *Plane) *dataStream {
	return &dataStream{
		p:            p,
		bytes:        prometheus.NewDesc("xhub_data_stream_bytes", "Bytes held by the data stream (published batches).", nil, nil),
		bound:        prometheus.NewDesc("xhub_data_max_bytes", "The data stream's byte bound (-1: none).", nil, nil),
		deptQuota:    prometheus.NewDesc("xhub_dept_quota_bytes", "What one department's datasets may hold in the data stream (0: no quota).", nil, nil),
		datasetQuota: prometheus.NewDesc("xhub_dataset_quota_bytes", "What one dataset may hold in the data stream (0: no quota).", nil, nil),
		deptBytes:    prometheus.NewDesc("xhub_dept_stored_bytes", "What a department's datasets hold in the data stream, as counted against its quota (the largest by name, the rest as dept=\"other\").", []string{"dept"}, nil),
	}
}

func (d *dataStream) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.bytes, d.bound, d.deptQuota, d.datasetQuota, d.deptBytes} {
		ch <- x
	}
}

func (d *dataStream) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := d.p.js.Stream(ctx, bus.DataStream)
	if err != nil {
		return
	}
	info := s.CachedInfo()
	l := bus.DataLimitsOf(info.Config)
	ch <- prometheus.MustNewConstMetric(d.bytes, prometheus.GaugeValue, float64(info.State.Bytes))
	ch <- prometheus.MustNewConstMetric(d.bound, prometheus.GaugeValue, float64(info.Config.MaxBytes))
	ch <- prometheus.MustNewConstMetric(d.deptQuota, prometheus.GaugeValue, float64(l.DeptQuota))
	ch <- prometheus.MustNewConstMetric(d.datasetQuota, prometheus.GaugeValue, float64(l.DatasetQuota))
	type row struct {
		dept catalog.DeptID
		n    int64
	}
	var rows []row
	for k, n := range d.p.usage.depts() {
		rows = append(rows, row{k, n})
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.dept, b.dept)) })
	var other int64
	for i, r := range rows {
		if i < MaxDatasetSeries {
			ch <- prometheus.MustNewConstMetric(d.deptBytes, prometheus.GaugeValue, float64(r.n), string(r.dept))
			continue
		}
		other += r.n
	}
	if len(rows) > MaxDatasetSeries {
		ch <- prometheus.MustNewConstMetric(d.deptBytes, prometheus.GaugeValue, float64(other), "other")
	}
}
