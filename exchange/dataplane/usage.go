package dataplane

import (
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

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/fault"
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
	} else {
		s.expires = slices.Insert(s.expires, i, expiry{at, n})
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
			return &fault.Error{Kind: fault.KindUnavailable, Msg: fmt.Sprintf("the hub has not yet counted what departments store (read to batch %d of %d): try again", seq, last)}
		}
	}
}

// msgSizeHeader carries a stored message's data size in a headers-only
// delivery.
const msgSizeHeader = "Nats-Msg-Size"
