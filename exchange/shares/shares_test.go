package shares

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/internal/store"
)

func entry(t *testing.T, seq uint64, at time.Time, kind string, body any) ledger.Entry {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Entry{Seq: seq, Time: at, Actor: "spiffe://xhub/dept/health/officer/o", Kind: kind, Body: b}
}

func TestApplyOnAMap(t *testing.T) {
	v := store.Map{}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	req := Request{ID: "r-7", Requester: "tax", Dataset: "health.cases", Purpose: "p", Days: 30, Status: RequestPending}
	ch, err := Apply(v, entry(t, 7, t0, ledger.KindShareRequested, req))
	if err != nil || len(ch.Requests) != 1 || ch.Requests[0].Status != RequestPending {
		t.Fatalf("requested: %+v %v", ch, err)
	}
	grant := GrantBody{Request: "r-7", Grant: "g-8", Fields: []string{"id"}, ExpiresAt: t0.Add(24 * time.Hour)}
	ch, err = Apply(v, entry(t, 8, t0, ledger.KindShareApproved, grant))
	if err != nil || ch.Requests[0].Status != RequestApproved || ch.Grants[0].Status != GrantActive {
		t.Fatalf("approved: %+v %v", ch, err)
	}
	if _, err := Apply(v, entry(t, 9, t0, ledger.KindShareApproved, GrantBody{Request: "r-7", Grant: "g-9"})); err == nil {
		t.Fatal("a request approved twice")
	}
	ch, err = ApplyRetirement(v, entry(t, 10, t0.Add(time.Hour), "dataset.retired", nil), "health.cases")
	if err != nil || len(ch.Grants) != 1 || ch.Grants[0].Status != GrantEnded || ch.Grants[0].Reason != "dataset retired" {
		t.Fatalf("retired: %+v %v", ch, err)
	}
	if _, err := Apply(v, entry(t, 11, t0, ledger.KindGrantRevoked, Ended{Grant: "g-8", Reason: "x"})); err == nil {
		t.Fatal("an ended grant revoked")
	}
}
