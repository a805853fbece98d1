package exchange

import (
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// TestDatasetSchemaChoice: publishing and updating a dataset choose its
// schema by the same rules, each refusal naming what was wrong: a subject
// of the dataset's own department, a version not negative, a subject with
// a registered version, a version that exists; version 0 is the latest.
// Written when the two commands' copies of these checks became one.
func TestDatasetSchemaChoice(t *testing.T) {
	s := newScript(t)
	admin := vocab.Identity{Dept: "hub", Role: vocab.RoleAdmin, Name: "admin"}
	health := vocab.Identity{Dept: "health", Role: vocab.RoleOfficer, Name: "o"}
	for _, d := range []catalog.DeptID{"health", "tax"} {
		if _, _, err := s.cp.AddDepartment(s.ctx, admin, d, string(d)); err != nil {
			t.Fatal(err)
		}
	}
	tax := vocab.Identity{Dept: "tax", Role: vocab.RoleOfficer, Name: "o"}
	for _, reg := range []struct {
		who     vocab.Identity
		subject catalog.DatasetID
	}{{health, "health.cases"}, {tax, "tax.filings"}} {
		if _, _, _, err := s.cp.RegisterSchema(s.ctx, reg.who, reg.subject, []byte(scriptSchema), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.cp.PublishDataset(s.ctx, health, catalog.Published{ID: "health.cases", Title: "Cases", ShareType: catalog.ShareOpen, SchemaSubject: "health.cases"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		subject string
		version int
		kind    vocab.Kind
		want    string
	}{
		{"not a subject", "cases", 0, vocab.KindInvalid, `subject "cases"`},
		{"another department's", "tax.filings", 0, vocab.KindInvalid, "belongs to tax, not to the dataset's owner health"},
		{"negative version", "health.cases", -1, vocab.KindInvalid, "-1 is negative"},
		{"no version registered", "health.none", 0, vocab.KindPrecondition, "schema subject health.none has no registered version: register it first"},
		{"no such version", "health.cases", 7, vocab.KindNotFound, "schema health.cases has no version 7 (latest is 1)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.cp.PublishDataset(s.ctx, health, catalog.Published{ID: "health.cases", Title: "Cases", ShareType: catalog.ShareOpen, SchemaSubject: tc.subject, SchemaVersion: tc.version})
			if vocab.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("publish: %v, want %s: %s", err, tc.kind, tc.want)
			}
			_, _, _, _, err = s.cp.UpdateDataset(s.ctx, health, catalog.Update{ID: "health.cases"}, tc.subject, tc.version)
			if vocab.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("update: %v, want %s: %s", err, tc.kind, tc.want)
			}
		})
	}
	d, _, err := s.cp.PublishDataset(s.ctx, health, catalog.Published{ID: "health.cases", Title: "Cases", ShareType: catalog.ShareOpen, SchemaSubject: "health.cases"})
	if err != nil || d.SchemaVersion != 1 || len(d.Fields) != 4 {
		t.Fatalf("version 0: %+v %v, want the latest (1, four fields)", d, err)
	}
	v2 := strings.Replace(scriptSchema, `"name":{"type":"string"}`, `"name":{"type":"string"},"ward_code":{"type":"string"}`, 1)
	if _, _, _, err := s.cp.RegisterSchema(s.ctx, health, "health.cases", []byte(v2), ""); err != nil {
		t.Fatal(err)
	}
	d, _, _, _, err = s.cp.UpdateDataset(s.ctx, health, catalog.Update{ID: "health.cases"}, "", 2)
	if err != nil || d.SchemaVersion != 2 || len(d.Fields) != 5 {
		t.Fatalf("update to version 2 of its own subject: %+v %v, want five fields", d, err)
	}
}
