package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/exchange/shares"
)

// TestDisputes: a grantee's officer disputes data of its grant; the
// owner's officer sees it with its deadline and answers; the opener sees
// the answer; fields outside the grant cannot be named (and the refusal
// does not tell whether the dataset has them); no one else may open or
// answer.
func TestDisputes(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	req, _ := ids(mustX(t, env, f.tax, "share", "request", "health.cond", "--purpose", "relief checks", "--fields", "id,ward", "--days", "30"))
	mustX(t, env, f.health, "share", "approve", req, "--fields", "id")

	out := mustX(t, env, f.tax, "dispute", "open", "health.cond", "--reason", "record 42 has the wrong id", "--record-key", "42", "--field", "id", "-o", "json")
	var d struct {
		ID, Dataset, Opener, Field, RecordKey, Status string
		RecordKeyJSON                                 string    `json:"record_key"`
		OpenedAt                                      time.Time `json:"opened_at"`
		Deadline                                      time.Time `json:"deadline"`
		Days                                          int       `json:"days"`
		Seq                                           uint64    `json:"seq"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if d.Opener != "tax" || d.Status != "open" || d.Field != "id" || d.RecordKeyJSON != "42" || d.Days != 5 || d.Seq == 0 {
		t.Fatalf("opened: %+v", d)
	}
	if want := shares.AddWorkingDays(d.OpenedAt, 5); !d.Deadline.Equal(want) {
		t.Fatalf("deadline %v, want 5 working days after %v: %v", d.Deadline, d.OpenedAt, want)
	}

	// A field outside the grant, whether or not the dataset has it: the
	// same refusal, naming only the granted fields.
	_, e1 := xhub(t, env, f.tax, "dispute", "open", "health.cond", "--reason", "x", "--field", "ward")
	_, e2 := xhub(t, env, f.tax, "dispute", "open", "health.cond", "--reason", "x", "--field", "nosuch")
	wantRefused(t, e1, codes.PermissionDenied, "not among the fields granted")
	wantRefused(t, e2, codes.PermissionDenied, "not among the fields granted")
	if strings.Replace(e1.Error(), `"ward"`, `"F"`, 1) != strings.Replace(e2.Error(), `"nosuch"`, `"F"`, 1) {
		t.Fatalf("the refusals differ beyond the field's name:\n%v\n%v", e1, e2)
	}
	// No grant, wrong role, own dataset, bad text.
	_, err := xhub(t, env, f.police, "dispute", "open", "health.cond", "--reason", "x")
	wantRefused(t, err, codes.PermissionDenied, "no active grant")
	_, err = xhub(t, env, f.hsys, "dispute", "open", "health.cond", "--reason", "x")
	wantRefused(t, err, codes.PermissionDenied, "role system")
	_, err = xhub(t, env, f.health, "dispute", "open", "health.cond", "--reason", "x")
	wantRefused(t, err, codes.InvalidArgument, "own dataset")
	_, err = xhub(t, env, f.tax, "dispute", "open", "health.cond", "--reason", " ")
	wantRefused(t, err, codes.InvalidArgument, "reason")

	// The owner sees it open, with its due date.
	out = mustX(t, env, f.health, "dispute", "list", "--status", "open")
	if !strings.Contains(out, d.ID) || !strings.Contains(out, "record 42 has the wrong id") || !strings.Contains(out, d.Deadline.Local().Format(time.DateOnly)) {
		t.Fatalf("owner's list:\n%s", out)
	}
	// A department with nothing to do with it does not see it.
	if out := mustX(t, env, f.police, "dispute", "list"); strings.Contains(out, d.ID) {
		t.Fatalf("police sees the dispute:\n%s", out)
	}
	// Only the owner answers.
	_, err = xhub(t, env, f.tax, "dispute", "resolve", d.ID, "--outcome", "corrected", "--reason", "x")
	wantRefused(t, err, codes.PermissionDenied, "only an officer of health")
	_, err = xhub(t, env, f.health, "dispute", "resolve", d.ID, "--outcome", "maybe", "--reason", "x")
	wantRefused(t, err, codes.InvalidArgument, "outcome")
	_, err = xhub(t, env, f.health, "dispute", "resolve", "d-999999", "--outcome", "rejected", "--reason", "x")
	wantRefused(t, err, codes.NotFound, "d-999999")
	mustX(t, env, f.health, "dispute", "resolve", d.ID, "--outcome", "corrected", "--reason", "id fixed at the source")
	_, err = xhub(t, env, f.health, "dispute", "resolve", d.ID, "--outcome", "rejected", "--reason", "again")
	wantRefused(t, err, codes.FailedPrecondition, "already corrected")

	// The opener sees the answer.
	var list struct {
		Disputes []struct {
			ID, Status, Resolution string
		} `json:"disputes"`
	}
	if err := json.Unmarshal([]byte(mustX(t, env, f.tax, "dispute", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Disputes) != 1 || list.Disputes[0].Status != "corrected" || list.Disputes[0].Resolution != "id fixed at the source" {
		t.Fatalf("opener's list: %+v", list)
	}
	if out := mustX(t, env, f.tax, "ledger", "log", "--kind", "dispute."); strings.Count(out, "dispute.") != 2 {
		t.Fatalf("ledger:\n%s", out)
	}
}
