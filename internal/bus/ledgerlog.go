package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/xhub-gov/xhub/exchange/ledger"
)

// LedgerLog is the control-plane log on the XHUB_LEDGER stream: appends
// with expected-last-sequence, and an ordered consumer to follow it.
type LedgerLog struct {
	js       jetstream.JetStream
	replicas int
	stream   string
	subject  string
}

// appendTimeout bounds one append's wait for the stream's answer; an
// append that gets none is retried by the control plane after catching up.
const appendTimeout = 3 * time.Second

// NewLedgerLog uses the existing XHUB_LEDGER stream, of replicas.
func NewLedgerLog(js jetstream.JetStream, replicas int) *LedgerLog {
	return &LedgerLog{js: js, replicas: replicas, stream: LedgerStream, subject: LedgerSubject}
}

// Append stores raws as entries after+1, after+2, … in order, only if the
// stream's last sequence is still after, and returns the last one stored:
// a prefix of raws, all of them unless err says why not
// (ledger.ErrConflict: the rest is not stored; ledger.ErrUnknownOutcome:
// it may be).
//
// On a replicated stream the group goes as one JetStream atomic batch: one
// round trip to the stream's leader and its replicas for all of it, all
// or nothing. On one server, where that round trip is short and an atomic
// batch costs a store of its own, the entries go one after another, each
// expecting the one before.
func (l *LedgerLog) Append(ctx context.Context, raws [][]byte, after uint64) (uint64, error) {
	if len(raws) == 0 {
		return after, nil
	}
	if len(raws) > MaxAppendBatch {
		return after, fmt.Errorf("ledger append: %d entries, at most %d at once", len(raws), MaxAppendBatch)
	}
	actx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	if l.replicas > 1 && len(raws) > 1 {
		ack, err := l.publishAtomic(actx, raws, after)
		if err != nil {
			return after, appendErr(ctx, err)
		}
		return stored(ack, after, len(raws))
	}
	last := after
	for _, raw := range raws {
		ack, err := l.js.Publish(actx, l.subject, raw, jetstream.WithExpectLastSequence(last), jetstream.WithExpectStream(l.stream))
		if err != nil {
			return last, appendErr(ctx, err)
		}
		if last, err = stored(ack, last, 1); err != nil {
			return last, err
		}
	}
	return last, nil
}

// MaxAppendBatch is the most entries one Append stores (JetStream's
// default limit of an atomic batch is 1,000).
const MaxAppendBatch = 256

// publishAtomic sends raws as one atomic batch: every message but the
// last without waiting (in order, on the one connection), the last as the
// commit whose answer is the whole batch's. The expected last sequence is
// checked on the first message, as JetStream requires.
func (l *LedgerLog) publishAtomic(ctx context.Context, raws [][]byte, after uint64) (*jetstream.PubAck, error) {
	nc := l.js.Conn()
	id := nuid.Next()
	for i, raw := range raws {
		m := nats.NewMsg(l.subject)
		m.Data = raw
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i == 0 {
			m.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(after, 10))
			m.Header.Set(jetstream.ExpectedStreamHeader, l.stream)
		}
		if i < len(raws)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return nil, err
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		return l.js.PublishMsg(ctx, m)
	}
	panic("unreachable")
}

func stored(ack *jetstream.PubAck, after uint64, n int) (uint64, error) {
	if ack.Sequence != after+uint64(n) {
		return after, fmt.Errorf("ledger append: stored up to %d, expected %d", ack.Sequence, after+uint64(n))
	}
	return ack.Sequence, nil
}

// appendErr classifies why entries were not (or perhaps not) stored.
func appendErr(ctx context.Context, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		return ledger.ErrConflict
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeIncompleteBatch:
		// Part of the batch never reached the leader (a reconnect):
		// nothing was stored, so it is safe to try again.
		return fmt.Errorf("%w: batch incomplete at the stream leader", ledger.ErrConflict)
	case unanswered(ctx, err):
		return fmt.Errorf("%w (%v)", ledger.ErrUnknownOutcome, err)
	}
	return fmt.Errorf("ledger append: %w", err)
}

// errCodeIncompleteBatch is JetStream's "atomic publish batch is
// incomplete" (JSAtomicPublishIncompleteBatchErr).
const errCodeIncompleteBatch jetstream.ErrorCode = 10176

// LastSeq is the sequence of the newest entry in the stream.
func (l *LedgerLog) LastSeq(ctx context.Context) (uint64, error) {
	return whileUnanswered(ctx, func(ctx context.Context) (uint64, error) {
		// js.Stream reads the stream's info afresh: one API call, not two.
		s, err := l.js.Stream(ctx, l.stream)
		if err != nil {
			return 0, fmt.Errorf("ledger: %w", err)
		}
		return s.CachedInfo().State.LastSeq, nil
	})
}

// Get reads one entry's bytes from the stream.
func (l *LedgerLog) Get(ctx context.Context, seq uint64) ([]byte, error) {
	return whileUnanswered(ctx, func(ctx context.Context) ([]byte, error) {
		s, err := l.js.Stream(ctx, l.stream)
		if err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("ledger get %d: %w", seq, err)
		}
		return m.Data, nil
	})
}

// whileUnanswered runs a call to the cluster, again while it gets no
// answer (a stream leader moving, a server restarting), for up to
// publishBudget: for reads, and for writes that are safe to repeat.
func whileUnanswered[T any](ctx context.Context, read func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(publishBudget)
	delay := 100 * time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(ctx, appendTimeout)
		v, err := read(rctx)
		cancel()
		if err == nil || !unanswered(ctx, err) || time.Now().Add(delay).After(deadline) {
			return v, err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return v, err
		}
		delay = min(2*delay, time.Second)
	}
}

// Follow delivers every entry from sequence from onwards, in order, to out,
// until ctx ends or Stop is called on the returned handle.
func (l *LedgerLog) Follow(ctx context.Context, from uint64, out chan<- ledger.Message) (func(), error) {
	cons, err := whileUnanswered(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return l.js.OrderedConsumer(ctx, l.stream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   max(from, 1),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("ledger follow: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		select {
		case out <- ledger.Message{Seq: md.Sequence.Stream, Raw: m.Data()}:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return nil, fmt.Errorf("ledger follow: %w", err)
	}
	return cc.Stop, nil
}

// PublishOnce stores data under msgID in stream, trying again while the
// stream does not answer (its leader moving) for up to publishBudget:
// JetStream's duplicate window makes a repeat of a stored message a
// no-op. retried says an attempt's answer was lost (so a duplicate ack
// may be of this call's own first attempt).
func PublishOnce(ctx context.Context, js jetstream.JetStream, subject string, data []byte, msgID, stream string, opts ...jetstream.PublishOpt) (*jetstream.PubAck, bool, error) {
	attempts := 0
	opts = append([]jetstream.PublishOpt{jetstream.WithMsgID(msgID), jetstream.WithExpectStream(stream)}, opts...)
	ack, err := whileUnanswered(ctx, func(ctx context.Context) (*jetstream.PubAck, error) {
		attempts++
		return js.Publish(ctx, subject, data, opts...)
	})
	return ack, attempts > 1, err
}

// publishBudget bounds PublishOnce's attempts.
const publishBudget = 20 * time.Second

// unanswered is a publish that got no answer (not a refusal).
func unanswered(ctx context.Context, err error) bool {
	return ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrConnectionReconnecting))
}
