// Package ledger owns the control-plane log: the entry format (canonical
// JSON, each entry naming its predecessor's hash), the append with
// JetStream's expected-last-sequence so concurrent hub nodes cannot fork
// the order, the ordered reading of entries, and the RFC 6962 Merkle tree
// over them (golang.org/x/mod/sumdb/tlog).
package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Version is the entry format version.
const Version = 1

// Entry is one control-plane change. Its canonical JSON encoding (Marshal)
// is what the log stores and what the Merkle tree hashes: a leaf is
// tlog.RecordHash(raw). Prev is the leaf hash of the entry before it (zero
// for the first), so each entry commits to the whole history.
type Entry struct {
	V       int             `json:"v"`
	Seq     uint64          `json:"seq"`
	Time    time.Time       `json:"time"`
	Actor   string          `json:"actor"`
	Kind    string          `json:"kind"`
	Subject string          `json:"subject"`
	Prev    tlog.Hash       `json:"prev"`
	Body    json.RawMessage `json:"body"`
	// Request is the client's request id of the call that appended the
	// entry (absent for the hub's own entries and calls without one): a
	// call retried with the same id, on any node, is answered with this
	// entry instead of appending another.
	Request string `json:"request,omitempty"`
}

// Hash is a leaf hash.
type Hash = tlog.Hash

// ErrMalformed is returned for bytes that are not a canonical entry.
var ErrMalformed = errors.New("ledger: malformed entry")

// New builds an entry. body is encoded with encoding/json, which sorts map
// keys and keeps struct field order, so the encoding is canonical.
func New(seq uint64, prev Hash, at time.Time, actor, kind, subject string, body any) (Entry, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: encode %s body: %w", kind, err)
	}
	return Entry{V: Version, Seq: seq, Time: at.UTC().Truncate(time.Microsecond), Actor: actor, Kind: kind, Subject: subject, Prev: prev, Body: compact(b)}, nil
}

// Marshal returns the canonical encoding.
func (e Entry) Marshal() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // every field is plainly encodable
	}
	return b
}

// Parse decodes raw and checks that it is canonical: re-encoding gives the
// same bytes. A leaf hash is only meaningful over canonical bytes.
func Parse(raw []byte) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.V != Version {
		return Entry{}, fmt.Errorf("%w: version %d", ErrMalformed, e.V)
	}
	if !bytes.Equal(e.Marshal(), raw) {
		return Entry{}, fmt.Errorf("%w: not in canonical form", ErrMalformed)
	}
	return e, nil
}

// LeafHash is the Merkle leaf hash of an entry's canonical bytes.
func LeafHash(raw []byte) Hash { return tlog.RecordHash(raw) }

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}
