package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// An audit export is a hash chain of audit entries, made by the hub and
// sealed by it: the seal is a note signed with the hub's ledger key that
// states what the export covers (its filter and period), how many entries
// it holds, the chain's last hash, who exported it and when, and the
// ledger head at that time. Whoever holds the export and the hub's
// verifier key can tell an entry edited, dropped, added or moved (the
// chain), a file cut short or a summary edited (the seal), and place the
// export after a ledger head. The chain and the seal are the hub's
// work: a client that writes the file cannot make a seal for anything
// else.
//
// The seal's text starts with its own header line, so it can never be
// read as a tree head signed by the same key (ParseTree refuses it), nor
// a tree head as a seal.

// ZeroChainHash is the chain's hash before its first entry.
var ZeroChainHash = strings.Repeat("0", 64)

// ChainHash is the hash of an entry after prev: hex SHA-256 over prev,
// a newline and the entry's bytes exactly as exported.
func ChainHash(prev string, entry []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(entry)
	return hex.EncodeToString(h.Sum(nil))
}

// AuditSeal is what a sealed audit export states.
type AuditSeal struct {
	Dataset    string    // only this dataset ("": every one the exporter may see)
	Dept       string    // only accesses by, or to datasets of, this department ("": all)
	Since      time.Time // entries at or after
	Until      time.Time // entries before
	Entries    int       // entries in the chain
	LastHash   string    // the chain's last hash (ZeroChainHash when empty)
	ExportedBy string    // the exporter's identity URI
	ExportedAt time.Time
	Head       Tree // the ledger head when the export was made
}

const sealHeader = "xhub audit export v1"

// Format is the text a seal signs, one "key value" line each.
func (s AuditSeal) Format() string {
	orAll := func(v string) string {
		if v == "" {
			return "*"
		}
		return v
	}
	var b strings.Builder
	b.WriteString(sealHeader + "\n")
	fmt.Fprintf(&b, "dataset %s\n", orAll(s.Dataset))
	fmt.Fprintf(&b, "dept %s\n", orAll(s.Dept))
	fmt.Fprintf(&b, "since %s\n", s.Since.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "until %s\n", s.Until.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "entries %d\n", s.Entries)
	fmt.Fprintf(&b, "last %s\n", s.LastHash)
	fmt.Fprintf(&b, "exported-by %s\n", s.ExportedBy)
	fmt.Fprintf(&b, "exported-at %s\n", s.ExportedAt.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "ledger %d %s\n", s.Head.N, s.Head.Hash)
	return b.String()
}

// ErrNotASeal is returned for text that is not an audit export seal.
var ErrNotASeal = errors.New("ledger: not an audit export seal")

// ParseAuditSeal parses Format's text; it refuses anything Format would
// not have written.
func ParseAuditSeal(text string) (AuditSeal, error) {
	lines := strings.Split(text, "\n")
	keys := []string{"dataset", "dept", "since", "until", "entries", "last", "exported-by", "exported-at", "ledger"}
	if len(lines) != len(keys)+2 || lines[0] != sealHeader || lines[len(lines)-1] != "" {
		return AuditSeal{}, ErrNotASeal
	}
	val := make(map[string]string, len(keys))
	for i, k := range keys {
		v, ok := strings.CutPrefix(lines[i+1], k+" ")
		if !ok || v == "" {
			return AuditSeal{}, fmt.Errorf("%w: line %d is not %q", ErrNotASeal, i+2, k)
		}
		val[k] = v
	}
	var s AuditSeal
	var err error
	fromAll := func(v string) string {
		if v == "*" {
			return ""
		}
		return v
	}
	s.Dataset, s.Dept, s.ExportedBy = fromAll(val["dataset"]), fromAll(val["dept"]), val["exported-by"]
	for k, t := range map[string]*time.Time{"since": &s.Since, "until": &s.Until, "exported-at": &s.ExportedAt} {
		if *t, err = time.Parse(time.RFC3339Nano, val[k]); err != nil {
			return AuditSeal{}, fmt.Errorf("%w: %s: %v", ErrNotASeal, k, err)
		}
	}
	if s.Entries, err = strconv.Atoi(val["entries"]); err != nil || s.Entries < 0 || strconv.Itoa(s.Entries) != val["entries"] {
		return AuditSeal{}, fmt.Errorf("%w: entries %q", ErrNotASeal, val["entries"])
	}
	if b, err := hex.DecodeString(val["last"]); err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != val["last"] {
		return AuditSeal{}, fmt.Errorf("%w: last hash %q", ErrNotASeal, val["last"])
	}
	s.LastHash = val["last"]
	size, root, ok := strings.Cut(val["ledger"], " ")
	n, err := strconv.ParseInt(size, 10, 64)
	if !ok || err != nil || n < 0 || strconv.FormatInt(n, 10) != size {
		return AuditSeal{}, fmt.Errorf("%w: ledger %q", ErrNotASeal, val["ledger"])
	}
	h, err := tlog.ParseHash(root)
	if err != nil {
		return AuditSeal{}, fmt.Errorf("%w: ledger root: %v", ErrNotASeal, err)
	}
	s.Head = Tree{N: n, Hash: h}
	if s.Format() != text {
		return AuditSeal{}, fmt.Errorf("%w: not in its one form", ErrNotASeal)
	}
	return s, nil
}

// SignAuditSeal signs a seal with the hub's ledger key.
func SignAuditSeal(s AuditSeal, signer note.Signer) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: s.Format()}, signer)
	if err != nil {
		return nil, fmt.Errorf("ledger: sign audit seal: %w", err)
	}
	return msg, nil
}

// ErrSealSignature is returned for a seal not signed by the expected key.
var ErrSealSignature = errors.New("ledger: audit export seal is not signed by the hub's ledger key")

// OpenAuditSeal checks a signed seal against the hub's verifier key and
// returns what it states.
func OpenAuditSeal(msg []byte, verifierKey string) (AuditSeal, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return AuditSeal{}, fmt.Errorf("ledger: verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return AuditSeal{}, fmt.Errorf("%w: %v", ErrSealSignature, err)
	}
	return ParseAuditSeal(n.Text)
}
