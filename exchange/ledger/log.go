package ledger

import "errors"

// ErrConflict is returned by a log's Append when another node appended
// first: the log's last sequence is not the one the entry was built on.
var ErrConflict = errors.New("ledger: another entry was appended first")

// ErrUnknownOutcome is an append whose answer did not come (the log's
// leader changed, a timeout): the entry may or may not be stored. The
// appender catches up and checks again; a request id in the entry lets
// it recognise its own.
var ErrUnknownOutcome = errors.New("ledger: append outcome unknown")

// Message is one entry read from the log.
type Message struct {
	Seq uint64
	Raw []byte
}
