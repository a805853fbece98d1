package exchange

import (
	"errors"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// TestRefusedEntryLeavesNoWrites: an entry whose first state machine
// writes and whose second refuses is void as a whole — none of its writes
// stay in the views, and the entries around it apply normally. A node
// never appends such an entry (its draft refuses it: the command gets the
// refusal and the log does not grow); one written around the hub, as here,
// is void at apply.
func TestRefusedEntryLeavesNoWrites(t *testing.T) {
	const kind = "test.halfway"
	appliers[kind] = []applier{
		func(_ *ControlPlane, v views, e ledger.Entry) (func(), error) {
			return nil, v.Put("test/written", e.Seq)
		},
		func(*ControlPlane, views, ledger.Entry) (func(), error) { return nil, errors.New("refused") },
	}
	defer delete(appliers, kind)
	s := newScript(t)
	admin := vocab.Identity{Dept: "hub", Role: vocab.RoleAdmin, Name: "admin"}
	before, _ := s.log.LastSeq(s.ctx)
	_, err := s.cp.submit(s.ctx, admin, kind, func(*store.Txn, time.Time) (string, any, error) { return "x", struct{}{}, nil })
	if err == nil || err.Error() != "refused" {
		t.Fatalf("submitting an entry the state machines refuse: %v, want the refusal", err)
	}
	if after, _ := s.log.LastSeq(s.ctx); after != before {
		t.Fatalf("a refused command was appended: log %d → %d", before, after)
	}
	// The same entry, appended around the hub.
	var last ledger.Hash
	if err := s.cp.st.View(func(txn *store.Txn) error {
		m, err := readMeta(txn)
		last = m.Last
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e, err := ledger.New(before+1, last, s.now, admin.URI(), kind, "x", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.log.Append(s.ctx, [][]byte{e.Marshal()}, before); err != nil {
		t.Fatal(err)
	}
	if err := s.cp.WaitApplied(s.ctx, before+1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.cp.AddDepartment(s.ctx, admin, "tax", "Tax"); err != nil {
		t.Fatalf("the entry after a void one: %v", err)
	}
	var seq uint64
	err = s.cp.st.View(func(txn *store.Txn) error {
		ok, err := txn.Get("test/written", &seq)
		if ok {
			t.Errorf("a void entry's write stayed in the views (entry %d)", seq)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.cp.Department("tax"); err != nil {
		t.Fatal(err)
	}
}
