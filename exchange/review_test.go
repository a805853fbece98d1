package exchange

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// controlTexts are reasons that would act on an officer's terminal or
// forge a row of ledger log, share list or inbox, each with the code
// point the refusal must name. Leading and trailing white space is
// trimmed before a reason is checked, so each sits inside the text.
var controlTexts = []struct{ name, text, names string }{
	{"NUL", "no\x00basis", "U+0000"},
	{"newline", "no basis\n42  2026-03-02 09:00:00  forged row", "U+000A"},
	{"carriage return", "no basis\rapproved", "U+000D"},
	{"tab", "no\tbasis", "U+0009"},
	{"ANSI colour", "no \x1b[31mbasis\x1b[0m", "U+001B"},
	{"C1 CSI", "no \u009b2J basis", "U+009B"},
	{"line separator", "no\u2028basis", "U+2028"},
	{"right-to-left override", "no \u202esisab", "U+202E"},
	{"invalid UTF-8", "no \xc3\x28 basis", "0xc3"},
}

func refusedField(t *testing.T, what string, err error, field, want string) {
	t.Helper()
	var fe *vocab.Error
	if !errors.As(err, &fe) || fe.Kind != vocab.KindInvalid {
		t.Fatalf("%s: got %v (kind %s), want an invalid-argument refusal", what, err, vocab.KindOf(err))
	}
	if len(fe.Violations) != 1 || fe.Violations[0].Field != field || !strings.Contains(fe.Violations[0].Description, want) {
		t.Fatalf("%s: refusal %+v, want field %q naming %q", what, fe.Violations, field, want)
	}
}

// TestReviewReasonRefusesControlCharacters: every reason a command
// takes (approving, narrowing, rejecting, revoking a grant or a
// credential, opening and answering a dispute, retiring a dataset) and
// a request's purpose refuse control characters, line separators, bidi
// overrides and invalid UTF-8 through the control plane, naming the
// field and the character, and append nothing; Chinese text and
// punctuation pass. Found by the second outside review: such text was
// stored and printed raw by ledger log, share inbox and share list.
func TestReviewReasonRefusesControlCharacters(t *testing.T) {
	ek := newEveryKind(t)
	cp := ek.cp
	ctx := context.Background()
	admin := vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "admin"}
	health := vocab.Identity{Dept: "health", Role: vocab.RoleOfficer, Name: "o"}
	tax := vocab.Identity{Dept: "tax", Role: vocab.RoleOfficer, Name: "o"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	req, _, _, err := cp.RequestShare(ctx, tax, shares.Input{Dataset: "health.cases", Fields: []string{"id", "ward"}, Purpose: "统计分析", Days: 30})
	must(err)
	if req.Purpose != "统计分析" {
		t.Fatalf("purpose stored as %q", req.Purpose)
	}
	sys := vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "loader"}
	_, err = cp.RecordCredential(ctx, admin, Credential{Serial: "0B02", Identity: sys.URI(), NotAfter: cp.cfg.Now().AddDate(0, 0, 30)})
	must(err)

	// Before the grant: the purpose of a second request, and the
	// decisions on the pending one.
	before := func(bad string) map[string]error {
		_, _, _, errReq := cp.RequestShare(ctx, health, shares.Input{Dataset: "health.cases", Purpose: bad})
		_, _, _, errApprove := cp.Approve(ctx, health, shares.Decision{Request: req.ID, Reason: bad})
		_, _, _, errNarrow := cp.Approve(ctx, health, shares.Decision{Request: req.ID, Fields: []string{"id"}, Days: 7, Reason: bad})
		_, _, errReject := cp.Reject(ctx, health, shares.Decision{Request: req.ID, Reason: bad})
		_, _, errCred := cp.RevokeCredential(ctx, admin, "0B02", bad)
		_, _, errRetire := cp.RetireDataset(ctx, health, "health.cases", bad)
		return map[string]error{"request": errReq, "approve": errApprove, "narrow": errNarrow, "reject": errReject, "revoke credential": errCred, "retire": errRetire}
	}
	check := func(errs map[string]error, c struct{ name, text, names string }) {
		t.Helper()
		for what, err := range errs {
			field := "reason"
			if what == "request" {
				field = "purpose"
			}
			refusedField(t, c.name+": "+what, err, field, c.names)
		}
	}
	applied := cp.Applied()
	for _, c := range controlTexts {
		check(before(c.text), c)
	}
	if got := cp.Applied(); got != applied {
		t.Errorf("refused commands appended %d entries", got-applied)
	}
	_, g, _, err := cp.Approve(ctx, health, shares.Decision{Request: req.ID, Fields: []string{"id"}, Reason: "已核准：仅限统计用途（第 3 条）"})
	must(err)
	if g.Reason != "已核准：仅限统计用途（第 3 条）" {
		t.Fatalf("approval reason stored as %q", g.Reason)
	}
	d, _, err := cp.OpenDispute(ctx, tax, shares.DisputeInput{Dataset: "health.cases", Reason: "记录 7 的编号有误", RecordKey: "7"})
	must(err)

	// With the grant: revoking it, and the dispute's text.
	applied = cp.Applied()
	for _, c := range controlTexts {
		_, _, errRevoke := cp.RevokeGrant(ctx, health, g.ID, c.text)
		_, _, errOpen := cp.OpenDispute(ctx, tax, shares.DisputeInput{Dataset: "health.cases", Reason: c.text})
		_, _, errKey := cp.OpenDispute(ctx, tax, shares.DisputeInput{Dataset: "health.cases", Reason: "wrong", RecordKey: c.text})
		_, _, errResolve := cp.ResolveDispute(ctx, health, d.ID, shares.DisputeRejected, c.text)
		check(map[string]error{"revoke grant": errRevoke, "open dispute": errOpen, "resolve dispute": errResolve}, c)
		refusedField(t, c.name+": record key", errKey, "record_key", c.names)
	}
	if got := cp.Applied(); got != applied {
		t.Errorf("refused commands appended %d entries", got-applied)
	}
	_, _, err = cp.RevokeGrant(ctx, health, g.ID, "目的已达成 — purpose met.")
	must(err)
}
