package catalog

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/piprate/json-gold/ld"
)

// xhubNS is the export's xhub: vocabulary.
const xhubNS = "https://xhub-gov.github.io/ns#"

func exportFixture() ([]Dataset, map[DeptID]string) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	fields := []Field{{Name: "id", Type: "integer", Required: true}, {Name: "ward", Type: "string"}}
	return []Dataset{
			{Published: Published{ID: "health.vaccinations", Title: "疫苗接种记录", Description: "Doses given", Keywords: []string{"疫苗", "health"}, ShareType: ShareConditional,
				Frequency: "daily", Retention: Retention(30 * 24 * time.Hour), SchemaSubject: "health.vaccinations", SchemaVersion: 3, Fields: fields}, Status: StatusPublished, PublishedAt: at, UpdatedAt: at},
			{Published: Published{ID: "health.clinics", Title: "=HYPERLINK(\"http://evil\")", ShareType: ShareOpen, Frequency: "每周", SchemaSubject: "health.clinics",
				SchemaVersion: 1, Fields: fields[:1]}, Status: StatusPublished},
			{Published: Published{ID: "tax.filings", Title: "Tax filings", ShareType: ShareNone, Frequency: "when asked", SchemaSubject: "tax.filings", SchemaVersion: 2}, Status: StatusRetired},
		}, map[DeptID]string{
			"health": "卫生健康委员会",
		}
}

// TestDCATExport: the export is JSON-LD that a JSON-LD processor expands
// (json-gold, the W3C algorithms), with every dataset a dcat:Dataset
// carrying its publisher, its share type as access rights, its schema as
// conformsTo, its frequency and its two distributions.
func TestDCATExport(t *testing.T) {
	ds, names := exportFixture()
	var buf bytes.Buffer
	if err := DCAT(&buf, ds, names, ExportOptions{Hub: "127.0.0.1:7443"}); err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	proc := ld.NewJsonLdProcessor()
	opts := ld.NewJsonLdOptions("")
	flat, err := proc.Flatten(doc, nil, opts)
	if err != nil {
		t.Fatalf("not JSON-LD: %v", err)
	}
	const (
		dcat = "http://www.w3.org/ns/dcat#"
		dct  = "http://purl.org/dc/terms/"
	)
	nodes := map[string]map[string]any{}
	graph, ok := flat.([]any) // flattened with no context: the node array
	if !ok {
		t.Fatalf("flattened: %T", flat)
	}
	for _, n := range graph {
		m := n.(map[string]any)
		nodes[m["@id"].(string)] = m
	}
	first := func(n map[string]any, prop string) any {
		v, ok := n[prop].([]any)
		if !ok || len(v) == 0 {
			return nil
		}
		if m, ok := v[0].(map[string]any); ok {
			if id, ok := m["@id"]; ok {
				return id
			}
			return m["@value"]
		}
		return v[0]
	}
	wantRights := map[string]string{
		"health.vaccinations": "RESTRICTED", "health.clinics": "PUBLIC", "tax.filings": "NON_PUBLIC",
	}
	for _, d := range ds {
		n := nodes["urn:xhub:dataset/"+string(d.ID)]
		if n == nil {
			t.Fatalf("%s is not in the expanded graph", d.ID)
		}
		if types, _ := n["@type"].([]any); len(types) != 1 || types[0] != dcat+"Dataset" {
			t.Errorf("%s: @type %v", d.ID, n["@type"])
		}
		if first(n, dct+"title") != d.Title || first(n, dct+"identifier") != string(d.ID) {
			t.Errorf("%s: title %v, identifier %v", d.ID, first(n, dct+"title"), first(n, dct+"identifier"))
		}
		if r, _ := first(n, dct+"accessRights").(string); r != "" {
			if !strings.HasSuffix(r, "/"+wantRights[string(d.ID)]) {
				t.Errorf("%s: access rights %s", d.ID, r)
			}
		} else {
			t.Errorf("%s: no access rights", d.ID)
		}
		if pub, _ := first(n, dct+"publisher").(string); pub != "urn:xhub:dept/"+string(d.Owner()) {
			t.Errorf("%s: publisher %v", d.ID, pub)
		}
		if c, _ := first(n, dct+"conformsTo").(string); !strings.HasPrefix(c, "urn:xhub:schema/"+d.SchemaSubject+"/") {
			t.Errorf("%s: conformsTo %v", d.ID, c)
		}
		if dist, _ := n[dcat+"distribution"].([]any); len(dist) != 2 {
			t.Errorf("%s: %d distributions", d.ID, len(dist))
		}
	}
	if f, _ := first(nodes["urn:xhub:dataset/health.vaccinations"], dct+"accrualPeriodicity").(string); !strings.HasSuffix(f, "/frequency/DAILY") {
		t.Errorf("daily: %v", f)
	}
	if f, _ := first(nodes["urn:xhub:dataset/health.clinics"], dct+"accrualPeriodicity").(string); !strings.HasSuffix(f, "/frequency/WEEKLY") {
		t.Errorf("每周: %v", f)
	}
	if r := first(nodes["urn:xhub:dataset/health.vaccinations"], xhubNS+"retention"); r != "P30D" {
		t.Errorf("retention 30d: %v", r)
	}
	if r := first(nodes["urn:xhub:dataset/health.clinics"], xhubNS+"retention"); r != nil {
		t.Errorf("a dataset on the hub's default retention names one: %v", r)
	}
	if name := first(nodes["urn:xhub:dept/health"], "http://xmlns.com/foaf/0.1/name"); name != "卫生健康委员会" {
		t.Errorf("publisher name %v", name)
	}

	// An empty catalog is still a catalog.
	buf.Reset()
	if err := DCAT(&buf, nil, nil, ExportOptions{}); err != nil || !strings.Contains(buf.String(), `"dcat:dataset": []`) {
		t.Fatalf("empty: %v %s", err, buf.String())
	}
}

// TestCSVExport: one row per dataset under the resource catalog's
// columns; the information items with their types; a cell that a
// spreadsheet would run as a formula is quoted.
func TestCSVExport(t *testing.T) {
	ds, names := exportFixture()
	var buf bytes.Buffer
	if err := CSV(&buf, ds, names); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(ds) || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("rows %d, header %v", len(rows), rows[0])
	}
	col := func(name string) int {
		for i, h := range CSVHeader {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	v := rows[1]
	if v[col("资源名称")] != "疫苗接种记录" || v[col("提供方")] != "卫生健康委员会" || v[col("共享类型")] != "有条件共享" ||
		v[col("信息项")] != "id(integer)*; ward(string)" || v[col("更新周期")] != "daily" || v[col("保存期限")] != "30d" {
		t.Fatalf("row %v", v)
	}
	if got := rows[2][col("资源名称")]; !strings.HasPrefix(got, "'=") {
		t.Fatalf("a formula title is left live: %q", got)
	}
	if rows[3][col("提供方")] != "tax" || rows[3][col("共享类型")] != "不予共享" || rows[3][col("保存期限")] != "" {
		t.Fatalf("row %v", rows[3])
	}
}
