package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/exchange/ledger"
)

// LedgerLog is the control-plane log on the XHUB_LEDGER stream: appends
// with expected-last-sequence, and an ordered consumer to follow it.
type LedgerLog struct {
	js      jetstream.JetStream
	stream  string
	subject string
}

// appendTimeout bounds one append's wait for the stream's answer; an
// append that gets none is retried by the control plane after catching up.
const appendTimeout = 3 * time.Second

// NewLedgerLog uses the existing XHUB_LEDGER stream.
func NewLedgerLog(js jetstream.JetStream) *LedgerLog {
	return &LedgerLog{js: js, stream: LedgerStream, subject: LedgerSubject}
}

// Append stores raw as entry number after+1, only if the stream's last
// sequence is still after. It returns once JetStream has stored it.
func (l *LedgerLog) Append(ctx context.Context, raw []byte, after uint64) (uint64, error) {
	actx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	ack, err := l.js.Publish(actx, l.subject, raw, jetstream.WithExpectLastSequence(after), jetstream.WithExpectStream(l.stream))
	if err != nil {
		var apiErr *jetstream.APIError
		switch {
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
			return 0, ledger.ErrConflict
		case unanswered(ctx, err):
			return 0, fmt.Errorf("%w (%v)", ledger.ErrUnknownOutcome, err)
		}
		return 0, fmt.Errorf("ledger append: %w", err)
	}
	if ack.Sequence != after+1 {
		return 0, fmt.Errorf("ledger append: stored at %d, expected %d", ack.Sequence, after+1)
	}
	return ack.Sequence, nil
}

// LastSeq is the sequence of the newest entry in the stream.
func (l *LedgerLog) LastSeq(ctx context.Context) (uint64, error) {
	return whileUnanswered(ctx, func(ctx context.Context) (uint64, error) {
		s, err := l.js.Stream(ctx, l.stream)
		if err != nil {
			return 0, fmt.Errorf("ledger: %w", err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("ledger: %w", err)
		}
		return info.State.LastSeq, nil
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
func PublishOnce(ctx context.Context, js jetstream.JetStream, subject string, data []byte, msgID, stream string) (*jetstream.PubAck, bool, error) {
	attempts := 0
	ack, err := whileUnanswered(ctx, func(ctx context.Context) (*jetstream.PubAck, error) {
		attempts++
		return js.Publish(ctx, subject, data, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(stream))
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
