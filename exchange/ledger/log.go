package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrConflict is returned by Append when another node appended first: the
// stream's last sequence is not the one the entry was built on.
var ErrConflict = errors.New("ledger: another entry was appended first")

// Log is the control-plane log on a JetStream stream.
type Log struct {
	js      jetstream.JetStream
	stream  string
	subject string
}

// NewLog uses an existing stream.
func NewLog(js jetstream.JetStream, stream, subject string) *Log {
	return &Log{js: js, stream: stream, subject: subject}
}

// Append stores raw as entry number after+1, only if the stream's last
// sequence is still after. It returns once JetStream has stored it.
func (l *Log) Append(ctx context.Context, raw []byte, after uint64) (uint64, error) {
	ack, err := l.js.Publish(ctx, l.subject, raw, jetstream.WithExpectLastSequence(after), jetstream.WithExpectStream(l.stream))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, ErrConflict
		}
		return 0, fmt.Errorf("ledger append: %w", err)
	}
	if ack.Sequence != after+1 {
		return 0, fmt.Errorf("ledger append: stored at %d, expected %d", ack.Sequence, after+1)
	}
	return ack.Sequence, nil
}

// LastSeq is the sequence of the newest entry in the stream.
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
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
func (l *Log) Get(ctx context.Context, seq uint64) ([]byte, error) {
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

// Message is one entry read from the stream.
type Message struct {
	Seq uint64
	Raw []byte
}

// Follow delivers every entry from sequence from onwards, in order, to out,
// until ctx ends or Stop is called on the returned handle.
func (l *Log) Follow(ctx context.Context, from uint64, out chan<- Message) (jetstream.ConsumeContext, error) {
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
		case out <- Message{Seq: md.Sequence.Stream, Raw: m.Data()}:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return nil, fmt.Errorf("ledger follow: %w", err)
	}
	return cc, nil
}
