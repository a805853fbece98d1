package exchange

import (
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// A department's ledger bytes. The ledger keeps every entry, and the room
// the store keeps for it is every department's: without a bound, one
// department's officer registering large schemas (or any command, in a
// loop) fills it, and every department's writes fail. So the entries of a
// department's identities — officers and systems — count towards its
// bound, Config.DeptLedgerBytes; the operator's and the hub's own entries
// (department hub) do not. The count is a function of the log: every
// entry applied adds its size to its actor's department (a void entry
// too: it takes its room all the same), the replay at start
// (verifyViews) gives the count of the entries already applied, and no
// view holds it. The appender refuses a command whose entry would take
// its department past the bound, counting the entries it has drafted and
// this node not yet applied; another node's entries count once applied
// here, so the nodes together may pass the bound by what each has in
// flight (a group, at most maxGroupBytes and one entry).

// DefaultDeptLedgerBytes is Config.DeptLedgerBytes's default.
const DefaultDeptLedgerBytes = 32 << 20

// draftedEntry is a department's entry in the appender's draft.
type draftedEntry struct {
	seq   uint64
	dept  catalog.DeptID
	bytes int64
}

// countedDept is the department whose bound an entry of actor counts
// towards: none for the hub's own identities and the operator.
func countedDept(actor string) (catalog.DeptID, bool) {
	id, err := vocab.ParseIdentity(actor)
	if err != nil || id.Dept == catalog.HubDept || id.Role == vocab.RoleAdmin {
		return "", false
	}
	return id.Dept, true
}

// LedgerBytes is the bytes of the entries of dept's identities this node
// has applied.
func (cp *ControlPlane) LedgerBytes(dept catalog.DeptID) int64 {
	cp.mu.RLock()
	defer cp.mu.RUnlock()
	return cp.ledgerBytes[dept]
}

// ledgerRoom refuses an entry of n bytes of kind by actor that would take
// its department past its bound. An entry that ends access (a revocation,
// a retirement) is never refused: a department at its bound can still
// take back what it gave; such entries are bounded by the counted ones
// that made what they end.
func (cp *ControlPlane) ledgerRoom(actor vocab.Identity, kind string, n int) error {
	dept, ok := countedDept(actor.URI())
	if !ok || endsAccess(kind) {
		return nil
	}
	cp.mu.RLock()
	used := cp.ledgerBytes[dept]
	for _, d := range cp.draftedBytes {
		if d.dept == dept && d.seq > cp.applied {
			used += d.bytes
		}
	}
	cp.mu.RUnlock()
	bound := cp.cfg.DeptLedgerBytes
	if used+int64(n) <= bound {
		return nil
	}
	return vocab.Exhausted("dept:"+string(dept),
		"department %s's ledger entries take %s of its bound of %s (xhub serve --dept-ledger-bytes); this %s entry of %s would pass it: nothing appended. The ledger keeps every entry, so the room does not come back: the hub operator may raise the bound",
		dept, vocab.Bytes(used), vocab.Bytes(bound), kind, vocab.Bytes(int64(n)))
}

func (cp *ControlPlane) addDraftedBytes(seq uint64, dept catalog.DeptID, n int) {
	cp.mu.Lock()
	cp.draftedBytes = append(cp.draftedBytes, draftedEntry{seq, dept, int64(n)})
	cp.mu.Unlock()
}
