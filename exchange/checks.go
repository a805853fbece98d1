package exchange

import (
	"strings"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// Checks that commands of several subjects share, and the limits on
// control-plane input.

// Limits on control-plane input.
const (
	MaxReasonLen     = catalog.MaxReasonLen
	MaxCredValidDays = 3650
)

// checkReason checks the reason for a decision (approve, reject, revoke
// a grant or a credential) as it will be stored, trimmed: one line of
// text (catalog.CheckLine), since ledger log, share list and inbox print
// it in an officer's terminal.
func checkReason(reason string, required bool) error {
	r := strings.TrimSpace(reason)
	if required && r == "" {
		return vocab.Invalid("reason", "is required")
	}
	if err := catalog.CheckLine("reason", r); err != nil {
		return err
	}
	if len(r) > MaxReasonLen {
		return vocab.Invalid("reason", "is %d bytes, at most %d", len(r), MaxReasonLen)
	}
	return nil
}

// mayActFor checks that actor is an officer of the department that owns a subject or dataset.
func mayActFor(actor vocab.Identity, owner catalog.DeptID, what string) error {
	if actor.Role != vocab.RoleOfficer {
		return vocab.Denied("%s: only a data officer of %s may %s (caller is %s)", actor.URI(), owner, what, actor.Role)
	}
	if actor.Dept != owner {
		return vocab.Denied("%s: an officer of %s may not %s of department %s", actor.URI(), actor.Dept, what, owner)
	}
	return nil
}
