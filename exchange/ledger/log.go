package ledger

import "errors"

// ErrConflict is returned by a log's Append when another node appended
// first: the log's last sequence is not the one the entry was built on.
var ErrConflict = errors.New("ledger: another entry was appended first")

// Message is one entry read from the log.
type Message struct {
	Seq uint64
	Raw []byte
}
