package main

import (
	"fmt"
	"time"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// mustSerial reads the serial of a creds file ("" if unreadable).
func mustSerial(path string) string {
	c, err := vocab.LoadCreds(path)
	if err != nil {
		return ""
	}
	return c.Serial
}

// parseTime accepts RFC 3339, a date (2006-01-02), or a duration ago (2h).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want RFC 3339, a date like 2026-11-22, or a duration like 2h", s)
}

// plural is "1 delivery", "2 deliveries": n with the word that fits it.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
