package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCatalogExport: the CLI exports every dataset the caller may list, as
// DCAT JSON-LD (to stdout) and as CSV (to a file); a format it does not
// know is refused by name.
func TestCatalogExport(t *testing.T) {
	f := newShareFixture(t)
	var doc struct {
		Type     string `json:"@type"`
		Datasets []struct {
			ID     string `json:"dct:identifier"`
			Rights struct {
				ID string `json:"@id"`
			} `json:"dct:accessRights"`
		} `json:"dcat:dataset"`
	}
	if err := json.Unmarshal([]byte(mustX(t, f.env, f.tax, "catalog", "export", "--format", "dcat")), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range doc.Datasets {
		got[d.ID] = d.Rights.ID
	}
	if doc.Type != "dcat:Catalog" || len(got) != 3 || !strings.HasSuffix(got["health.secret"], "NON_PUBLIC") || !strings.HasSuffix(got["health.open"], "PUBLIC") {
		t.Fatalf("dcat export: %+v", doc)
	}
	out := filepath.Join(t.TempDir(), "catalog.csv")
	mustX(t, f.env, f.tax, "catalog", "export", "--format", "csv", "--out", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "资源代码,资源名称") {
		t.Fatalf("csv export:\n%s", b)
	}
	if _, err := xhub(t, f.env, f.tax, "catalog", "export", "--format", "rdfxml"); err == nil || !strings.Contains(err.Error(), "rdfxml") {
		t.Fatalf("unknown format: %v", err)
	}
}
