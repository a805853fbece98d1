package shares

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// Data disputes (数据异议): a department holding a grant on a dataset
// disputes data it received; the owner verifies it and answers, corrected
// or rejected, within a deadline of working days. Both steps are ledger
// entries, like shares.

// The entry kinds of disputes are named in exchange/ledger (kinds.go).

// DisputeID identifies a dispute: "d-<seq>", the sequence of the entry
// that opened it.
type DisputeID string

// DisputeIDAt is the id of the dispute opened by entry seq.
func DisputeIDAt(seq uint64) DisputeID { return DisputeID(fmt.Sprintf("d-%d", seq)) }

// ParseDisputeID checks s.
func ParseDisputeID(s string) (DisputeID, error) {
	if _, err := idSeq(s, "d-"); err != nil {
		return "", vocab.Invalid("dispute", "%q is not a dispute id (d-<number>)", s)
	}
	return DisputeID(s), nil
}

// DisputeStatus is a dispute's state.
type DisputeStatus string

const (
	DisputeOpen      DisputeStatus = "open"
	DisputeCorrected DisputeStatus = "corrected" // the owner corrected the data
	DisputeRejected  DisputeStatus = "rejected"  // the owner found the data right
)

// Bounds of a dispute.
const (
	MaxRecordKeyLen = 256
	// MaxOpenDisputes bounds the disputes one department has open.
	MaxOpenDisputes = 100
	// DefaultDisputeDays is the owner's response time, in working days.
	DefaultDisputeDays = 5
)

// Dispute is the view of one dispute.
type Dispute struct {
	ID         DisputeID         `json:"id"`
	Dataset    catalog.DatasetID `json:"dataset"`
	Opener     catalog.DeptID    `json:"opener"`
	OpenedBy   string            `json:"opened_by"`
	Reason     string            `json:"reason"`
	RecordKey  string            `json:"record_key,omitempty"`
	Field      string            `json:"field,omitempty"`
	Days       int               `json:"days"` // working days the owner has
	OpenedAt   time.Time         `json:"opened_at"`
	Deadline   time.Time         `json:"deadline"`
	Status     DisputeStatus     `json:"status"`
	ResolvedBy string            `json:"resolved_by,omitempty"`
	ResolvedAt time.Time         `json:"resolved_at,omitzero"`
	Resolution string            `json:"resolution,omitempty"` // the owner's reason
	Seq        uint64            `json:"seq"`
}

// Overdue reports whether the owner has not answered by the deadline.
func (d *Dispute) Overdue(now time.Time) bool {
	return d.Status == DisputeOpen && now.After(d.Deadline)
}

// DisputeBody is the body of a dispute.opened entry.
type DisputeBody struct {
	ID        DisputeID         `json:"id"`
	Dataset   catalog.DatasetID `json:"dataset"`
	Opener    catalog.DeptID    `json:"opener"`
	Reason    string            `json:"reason"`
	RecordKey string            `json:"record_key,omitempty"`
	Field     string            `json:"field,omitempty"`
	Days      int               `json:"days"`
}

// ResolutionBody is the body of a dispute.resolved entry.
type ResolutionBody struct {
	Dispute DisputeID     `json:"dispute"`
	Outcome DisputeStatus `json:"outcome"`
	Reason  string        `json:"reason"`
}

// DisputeKey is where a dispute lives; OpenDisputeKey indexes the open
// disputes of the department that opened them.
func DisputeKey(id DisputeID) string {
	seq, _ := idSeq(string(id), "d-")
	return keyspace.Disputes.Key(fmt.Sprintf("%016x", seq))
}

func OpenDisputeKey(dept catalog.DeptID, id DisputeID) string {
	seq, _ := idSeq(string(id), "d-")
	return keyspace.OpenDisputes.Key(fmt.Sprintf("%s/%016x", dept, seq))
}

// DisputePrefix is the prefix of every dispute's key.
const DisputePrefix = string(keyspace.Disputes)

// AddWorkingDays is t plus n working days (Saturdays and Sundays do not
// count), in t's location.
func AddWorkingDays(t time.Time, n int) time.Time {
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	return t
}

// DisputeInput is what an officer gives to open a dispute.
type DisputeInput struct {
	Dataset   catalog.DatasetID
	Reason    string
	RecordKey string
	Field     string
}

// NewDispute checks the opening of a dispute by actor, an officer of a
// department holding an active grant on the dataset, and returns the
// dispute.opened body. A field outside the department's grant is refused
// with the same words whether or not the dataset has it: the refusal
// tells nothing the grant does not.
func NewDispute(v Views, actor vocab.Identity, in DisputeInput, days int, open int, id DisputeID, now time.Time) (DisputeBody, error) {
	if actor.Role != vocab.RoleOfficer {
		return DisputeBody{}, vocab.Denied("%s: only a department's officer opens disputes, not role %s", actor.URI(), actor.Role)
	}
	ds, err := dataset(v, in.Dataset)
	if err != nil {
		return DisputeBody{}, err
	}
	if ds.Owner() == actor.Dept {
		return DisputeBody{}, vocab.Invalid("dataset", "%s is your department's own dataset: correct it directly", ds.ID)
	}
	reason := strings.TrimSpace(in.Reason)
	if err := checkText("reason", reason, 1, MaxPurposeLen); err != nil {
		return DisputeBody{}, err
	}
	key := strings.TrimSpace(in.RecordKey)
	if err := checkText("record_key", key, 0, MaxRecordKeyLen); err != nil {
		return DisputeBody{}, err
	}
	fields, ok, err := grantedFields(v, actor.Dept, ds.ID, now)
	if err != nil {
		return DisputeBody{}, err
	}
	if !ok {
		return DisputeBody{}, vocab.Denied("department %s holds no active grant on %s: a dispute is about data received under a grant", actor.Dept, ds.ID)
	}
	field := strings.TrimSpace(in.Field)
	if field != "" && !slices.Contains(fields, field) {
		return DisputeBody{}, vocab.Denied("field %q is not among the fields granted to %s on %s (%s)", field, actor.Dept, ds.ID, strings.Join(fields, ", "))
	}
	if open >= MaxOpenDisputes {
		return DisputeBody{}, vocab.Exhausted("dept:"+string(actor.Dept), "department %s has %d disputes open, the most the hub allows (%d): wait for answers", actor.Dept, open, MaxOpenDisputes)
	}
	if days <= 0 {
		days = DefaultDisputeDays
	}
	return DisputeBody{ID: id, Dataset: ds.ID, Opener: actor.Dept, Reason: reason, RecordKey: key, Field: field, Days: days}, nil
}

// grantedFields is the union of the fields of dept's active grants on ds.
func grantedFields(v Views, dept catalog.DeptID, ds catalog.DatasetID, now time.Time) ([]string, bool, error) {
	var fields []string
	found := false
	err := v.Scan(GrantsByDatasetPrefix(ds), "", func(_ string, val []byte) (bool, error) {
		var id GrantID
		if err := json.Unmarshal(val, &id); err != nil {
			return false, err
		}
		g, err := GetGrant(v, id)
		if err != nil {
			return false, err
		}
		if g.Grantee == dept && g.ActiveAt(now) {
			found = true
			fields = append(fields, g.Fields...)
		}
		return true, nil
	})
	slices.Sort(fields)
	return slices.Compact(fields), found, err
}

// Resolve checks the answer to a dispute by actor, an officer of the
// dataset's owner (or the operator), and returns the dispute.resolved body.
func Resolve(v Views, actor vocab.Identity, id DisputeID, outcome DisputeStatus, reason string) (ResolutionBody, catalog.DatasetID, error) {
	if outcome != DisputeCorrected && outcome != DisputeRejected {
		return ResolutionBody{}, "", vocab.Invalid("outcome", "%q is not corrected or rejected", outcome)
	}
	reason = strings.TrimSpace(reason)
	if err := checkText("reason", reason, 1, MaxPurposeLen); err != nil {
		return ResolutionBody{}, "", err
	}
	d, err := GetDispute(v, id)
	if err != nil {
		return ResolutionBody{}, "", err
	}
	if err := mayDecide(actor, d.Dataset.Owner(), "resolve disputes on "+string(d.Dataset)); err != nil {
		return ResolutionBody{}, "", err
	}
	if d.Status != DisputeOpen {
		return ResolutionBody{}, "", vocab.Precondition("DISPUTE_STATE", string(id), "dispute %s is already %s", id, d.Status)
	}
	return ResolutionBody{Dispute: id, Outcome: outcome, Reason: reason}, d.Dataset, nil
}

// GetDispute reads one dispute.
func GetDispute(v Views, id DisputeID) (Dispute, error) {
	var d Dispute
	ok, err := v.Get(DisputeKey(id), &d)
	if err == nil && !ok {
		err = vocab.NotFound("dispute %s does not exist", id)
	}
	return d, err
}

// ApplyDispute applies a dispute entry.
func ApplyDispute(v Views, e ledger.Entry) (Dispute, error) {
	switch e.Kind {
	case ledger.KindDisputeOpened:
		var b DisputeBody
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return Dispute{}, err
		}
		if b.ID != DisputeIDAt(e.Seq) {
			return Dispute{}, fmt.Errorf("dispute id %s in entry %d", b.ID, e.Seq)
		}
		d := Dispute{ID: b.ID, Dataset: b.Dataset, Opener: b.Opener, OpenedBy: e.Actor, Reason: b.Reason, RecordKey: b.RecordKey,
			Field: b.Field, Days: b.Days, OpenedAt: e.Time, Deadline: AddWorkingDays(e.Time, b.Days), Status: DisputeOpen, Seq: e.Seq}
		if err := v.Put(DisputeKey(d.ID), d); err != nil {
			return d, err
		}
		return d, v.Put(OpenDisputeKey(d.Opener, d.ID), d.ID)
	case ledger.KindDisputeResolved:
		var b ResolutionBody
		if err := json.Unmarshal(e.Body, &b); err != nil {
			return Dispute{}, err
		}
		d, err := GetDispute(v, b.Dispute)
		if err != nil {
			return d, err
		}
		if d.Status != DisputeOpen {
			return d, fmt.Errorf("dispute %s is %s", d.ID, d.Status)
		}
		d.Status, d.ResolvedBy, d.ResolvedAt, d.Resolution, d.Seq = b.Outcome, e.Actor, e.Time, b.Reason, e.Seq
		if err := v.Put(DisputeKey(d.ID), d); err != nil {
			return d, err
		}
		return d, v.Delete(OpenDisputeKey(d.Opener, d.ID))
	}
	return Dispute{}, fmt.Errorf("not a dispute entry: %s", e.Kind)
}

// OpenDisputes counts the disputes dept has open.
func OpenDisputes(v Views, dept catalog.DeptID) (int, error) {
	n := 0
	err := v.Scan(keyspace.OpenDisputes.Key(string(dept)+"/"), "", func(string, []byte) (bool, error) { n++; return true, nil })
	return n, err
}

// checkText checks a line of dispute text (catalog.CheckLine) and its
// length in bytes.
func checkText(field, s string, min, max int) error {
	if err := catalog.CheckLine(field, s); err != nil {
		return err
	}
	switch {
	case len(s) < min:
		return vocab.Invalid(field, "is required")
	case len(s) > max:
		return vocab.Invalid(field, "is %d bytes, at most %d", len(s), max)
	}
	return nil
}
