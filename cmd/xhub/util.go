package main

import (
	"github.com/xhub-gov/xhub/internal/pki"
)

// mustSerial reads the serial of a creds file ("" if unreadable).
func mustSerial(path string) string {
	c, err := pki.LoadCreds(path)
	if err != nil {
		return ""
	}
	return c.Serial
}
