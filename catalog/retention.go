package catalog

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// Retention is how long a dataset's published batches are kept before the
// data stream removes them, a whole number of seconds. Zero: the hub's
// default (xhub serve --data-retention). It bounds only what the hub
// stores; records at the provider are the provider's.
type Retention time.Duration

// Bounds of a dataset's retention. The least is what JetStream's message
// expiry can express; the most is the data stream's own maximum age.
const (
	MinRetention = Retention(time.Second)
	MaxRetention = Retention(3650 * 24 * time.Hour)
)

// maxRetentionText bounds the text ParseRetention reads.
const maxRetentionText = 16

// ParseRetention reads a retention written as a whole number and one unit:
// s, m, h or d ("30d", "12h", "2s"). The empty text is zero (the hub's
// default).
func ParseRetention(s string) (Retention, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > maxRetentionText {
		return 0, vocab.Invalid("retention", "is %d characters, at most %d (a number and a unit: 30d, 12h, 2s)", len(s), maxRetentionText)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 's':
		unit = time.Second
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	default:
		return 0, vocab.Invalid("retention", "%q is not a number and a unit s, m, h or d (30d, 12h, 2s)", s)
	}
	digits := s[:len(s)-1]
	if digits == "" || len(digits) > 1 && digits[0] == '0' {
		return 0, vocab.Invalid("retention", "%q is not a number and a unit s, m, h or d (30d, 12h, 2s)", s)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, vocab.Invalid("retention", "%q is not a number and a unit s, m, h or d (30d, 12h, 2s)", s)
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n > int64(MaxRetention)/int64(unit) {
		return 0, vocab.Invalid("retention", "%q is more than %s", s, MaxRetention)
	}
	if n == 0 {
		return 0, vocab.Invalid("retention", "%q: at least %s (leave it empty for the hub's default)", s, MinRetention)
	}
	return Retention(time.Duration(n) * unit), nil
}

// Validate checks r: zero (the hub's default), or whole seconds from
// MinRetention to MaxRetention.
func (r Retention) Validate() error {
	if r == 0 {
		return nil
	}
	if r < MinRetention || r > MaxRetention {
		return vocab.Invalid("retention", "%s is outside %s to %s", r, MinRetention, MaxRetention)
	}
	if time.Duration(r)%time.Second != 0 {
		return vocab.Invalid("retention", "must be whole seconds")
	}
	return nil
}

// Duration is r as a time.Duration.
func (r Retention) Duration() time.Duration { return time.Duration(r) }

// String writes r in the largest unit that divides it ("30d", "36h",
// "2s"); zero is "".
func (r Retention) String() string {
	if r == 0 {
		return ""
	}
	d := time.Duration(r)
	for _, u := range []struct {
		d time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.s
		}
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// ISO8601 writes r as an ISO 8601 duration (P30D, PT12H, PT2S), as
// xsd:duration reads it.
func (r Retention) ISO8601() string {
	d := time.Duration(r)
	if d%(24*time.Hour) == 0 {
		return "P" + strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "D"
	}
	return "PT" + strconv.FormatInt(int64(d/time.Second), 10) + "S"
}

// MarshalJSON writes r as its text ("30d"), so a ledger entry reads as
// the officer wrote it.
func (r Retention) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Retention) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseRetention(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}
