package dataplane

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
)

// A publish stores a batch only if it keeps the dataset within its quota,
// its owner's datasets within the department's, and the data stream
// within its bound (bus.DataLimits, read from the stream at each publish,
// so every node enforces the same ones). The check and the store are one
// step per department on a node; nodes check apart, so a department may go
// over by the batches other nodes store for it at the same moment, at most
// one each.

// admitTimeout bounds the wait for the usage count to catch up.
const admitTimeout = 10 * time.Second

// admission is a publish allowed to store: its TTL, and done to call
// once it has stored (or failed to).
type admission struct {
	ttl  time.Duration // 0: no TTL (the stream's maximum age)
	done func()
}

// admit checks that a batch of data may be stored for dataset ds.
func (p *Plane) admit(ctx context.Context, ds catalog.Dataset, subject, msgID string, data []byte) (admission, error) {
	mu := p.deptLock(ds.Owner())
	mu.Lock()
	ok := false
	defer func() {
		if !ok {
			mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, admitTimeout)
	defer cancel()
	stream, err := p.js.Stream(ctx, bus.DataStream)
	if err != nil {
		return admission{}, &vocab.Error{Kind: vocab.KindUnavailable, Msg: "data store: " + err.Error()}
	}
	info := stream.CachedInfo()
	l := bus.DataLimitsOf(info.Config)
	ttl := ds.Retention.Duration()
	if ttl == 0 {
		ttl = l.Retention
	}
	if ttl >= bus.DataMaxAge {
		ttl = 0
	}
	if err := p.usage.catchUp(ctx, info.State.LastSeq); err != nil {
		return admission{}, err
	}
	// The headers JetStream stores with the batch.
	hdr := len(jetstream.MsgIDHeader) + len(msgID) + 4 + len(jetstream.ExpectedStreamHeader) + len(bus.DataStream) + 4
	if ttl > 0 {
		hdr += len(jetstream.MsgTTLHeader) + len(ttl.String()) + 4
	}
	n := BatchFootprint(subject, hdr, len(data))
	owner := ds.Owner()
	if q := l.DatasetQuota; q > 0 {
		if used := p.usage.dataset(ds.ID); used+n > q {
			return admission{}, vocab.Exhausted("dataset:"+string(ds.ID), "dataset %s holds %s of its quota of %s (xhub serve --dataset-quota); this batch of %s would pass it: nothing stored. Room comes back as stored batches reach their retention (%s)",
				ds.ID, vocab.Bytes(used), vocab.Bytes(q), vocab.Bytes(n), retentionText(ttl))
		}
	}
	if q := l.DeptQuota; q > 0 {
		if used := p.usage.dept(owner); used+n > q {
			return admission{}, vocab.Exhausted("dept:"+string(owner), "department %s's datasets hold %s of its quota of %s (xhub serve --dept-quota); this batch of %s to %s would pass it: nothing stored. Room comes back as stored batches reach their retention (%s here)",
				owner, vocab.Bytes(used), vocab.Bytes(q), vocab.Bytes(n), ds.ID, retentionText(ttl))
		}
	}
	if l.MaxBytes > 0 && int64(info.State.Bytes)+n > l.MaxBytes {
		return admission{}, storeFull(l.MaxBytes)
	}
	ok = true
	return admission{ttl: ttl, done: mu.Unlock}, nil
}

// deptLock is the lock that makes a department's check and store one
// step on this node.
func (p *Plane) deptLock(d catalog.DeptID) *sync.Mutex {
	p.quotaMu.Lock()
	defer p.quotaMu.Unlock()
	mu := p.deptLocks[d]
	if mu == nil {
		mu = &sync.Mutex{}
		p.deptLocks[d] = mu
	}
	return mu
}

// storeError is the refusal of a batch the data stream did not store.
func storeError(err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch {
		case api.ErrorCode == jsErrCodeStoreFailed && strings.Contains(api.Description, "maximum bytes"):
			return storeFull(0)
		case api.ErrorCode == jsErrCodeInsufficientResources:
			return vocab.Exhausted("hub:store", "the hub's store is full: nothing stored. The operator must make room (--store-max-bytes, --data-max-bytes)")
		}
	}
	return &vocab.Error{Kind: vocab.KindUnavailable, Msg: "store batch: " + err.Error()}
}

// JetStream's codes for a store that is full: the stream at its MaxBytes
// ("maximum bytes exceeded"), and the server or account at its MaxStore
// ("insufficient resources").
const (
	jsErrCodeStoreFailed           jetstream.ErrorCode = 10077
	jsErrCodeInsufficientResources jetstream.ErrorCode = 10023
)

func storeFull(bound int64) error {
	what := "its bound"
	if bound > 0 {
		what = "its bound of " + vocab.Bytes(bound)
	}
	return vocab.Exhausted("hub:"+bus.DataStream, "the hub's data store (%s) is at %s (xhub serve --data-max-bytes): nothing stored. Room comes back as stored batches reach their retention", bus.DataStream, what)
}

func retentionText(ttl time.Duration) string {
	if ttl == 0 {
		return catalog.Retention(bus.DataMaxAge).String()
	}
	return catalog.Retention(ttl.Truncate(time.Second)).String()
}
