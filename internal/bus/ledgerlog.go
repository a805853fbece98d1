package bus

import (
	"context"
	"errors"
	"fmt"

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

// NewLedgerLog uses the existing XHUB_LEDGER stream.
func NewLedgerLog(js jetstream.JetStream) *LedgerLog {
	return &LedgerLog{js: js, stream: LedgerStream, subject: LedgerSubject}
}

// Append stores raw as entry number after+1, only if the stream's last
// sequence is still after. It returns once JetStream has stored it.
func (l *LedgerLog) Append(ctx context.Context, raw []byte, after uint64) (uint64, error) {
	ack, err := l.js.Publish(ctx, l.subject, raw, jetstream.WithExpectLastSequence(after), jetstream.WithExpectStream(l.stream))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, ledger.ErrConflict
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
	s, err := l.js.Stream(ctx, l.stream)
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	return info.State.LastSeq, nil
}

// Get reads one entry's bytes from the stream.
func (l *LedgerLog) Get(ctx context.Context, seq uint64) ([]byte, error) {
	s, err := l.js.Stream(ctx, l.stream)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("ledger get %d: %w", seq, err)
	}
	return m.Data, nil
}

// Follow delivers every entry from sequence from onwards, in order, to out,
// until ctx ends or Stop is called on the returned handle.
func (l *LedgerLog) Follow(ctx context.Context, from uint64, out chan<- ledger.Message) (func(), error) {
	cons, err := l.js.OrderedConsumer(ctx, l.stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   max(from, 1),
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
