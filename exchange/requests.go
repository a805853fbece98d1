package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// A client names each call that changes state with a request id. The id
// goes into the entry the call appends, and applying the entry records it
// under the caller's identity, so the same call retried — after a
// timeout, or on another node after a failover — finds its entry and is
// answered from it instead of appending a second one.

type requestIDKey struct{}

// WithRequestID carries a client's request id to the commands.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom is the client's request id of the call ("" if none).
func RequestIDFrom(ctx context.Context) string { return requestIDFrom(ctx) }

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// MaxRequestIDLen bounds a request id.
const MaxRequestIDLen = 64

// CheckRequestID says what is wrong with a request id ("" is none).
func CheckRequestID(id string) error {
	if len(id) > MaxRequestIDLen {
		return vocab.Invalid("request_id", "is %d bytes, at most %d", len(id), MaxRequestIDLen)
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || r == '.' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return vocab.Invalid("request_id", "%q: letters, digits and - _ . : only", id)
		}
	}
	return nil
}

// requestKey is where the entry of actor's request id is recorded (the
// key is hashed: ids are the client's text).
func requestKey(actor, id string) string {
	sum := sha256.Sum256([]byte(actor + "\x00" + id))
	return keyspace.RequestIDs.Key(hex.EncodeToString(sum[:16]))
}

// recordedRequest is the view of a request id.
type recordedRequest struct {
	Seq  uint64 `json:"seq"`
	Kind string `json:"kind"`
}

// Replayed says that the call's request id was already applied, as entry
// Seq: the commands that can answer from the state do so; the others
// return it (FailedPrecondition), so the client knows the call took
// effect and is not applied twice.
type Replayed struct {
	Seq       uint64
	Kind      string
	RequestID string
}

func (r *Replayed) Error() string {
	return fmt.Sprintf("request %s was already applied as ledger entry %d (%s); its answer cannot be given again: look it up instead", r.RequestID, r.Seq, r.Kind)
}

// replayed turns a *Replayed into the entry's sequence, for commands whose
// answer is read from the state by ids the caller gave or the sequence.
func replayed(seq uint64, err error) (uint64, error) {
	if r, ok := err.(*Replayed); ok {
		return r.Seq, nil
	}
	return seq, err
}
