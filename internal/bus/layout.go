// Package bus owns the NATS side of a hub node: the embedded nats-server
// (JetStream on the data dir, in-process connection, no TCP port unless
// asked and then only with authentication) and the layout of every stream
// the hub uses, kept here as plain jetstream.StreamConfig values so that
// the bus reads at a glance.
package bus

import (
	"github.com/nats-io/nats.go/jetstream"
)

// Subjects and stream names.
const (
	LedgerStream  = "XHUB_LEDGER"
	LedgerSubject = "xhub.ledger"
)

// Ledger is the control-plane log: every entry kept forever, in one total
// order, never deleted or purged.
func Ledger(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        LedgerStream,
		Description: "xhub control-plane log (append-only, tamper-evident)",
		Subjects:    []string{LedgerSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  4 << 20,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	}
}
