package catalog

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/url"
	"strings"
)

// The catalog in the forms other systems read: DCAT-AP 3 as JSON-LD, for
// data portals and data-space connectors, and the columns of the
// government resource catalog (政务信息资源目录) as CSV, for the
// platforms departments report to.

// ExportOptions say where the exported catalog points.
type ExportOptions struct {
	// Base is the IRI under which datasets, departments and schemas get
	// their ids (Base + "dataset/" + id, …). Zero: "urn:xhub:".
	Base string
	// Title of the catalog. Zero: "xhub resource catalog".
	Title string
	// Hub is the hub's address, named by the query and subscribe
	// distributions (may be empty).
	Hub string
}

func (o *ExportOptions) defaults() {
	if o.Base == "" {
		o.Base = "urn:xhub:"
	}
	if o.Title == "" {
		o.Title = "xhub resource catalog"
	}
}

// EU access-right authority: what each share type means to a reader of
// DCAT-AP.
var accessRights = map[ShareType]string{
	ShareOpen:        "http://publications.europa.eu/resource/authority/access-right/PUBLIC",
	ShareConditional: "http://publications.europa.eu/resource/authority/access-right/RESTRICTED",
	ShareNone:        "http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC",
}

// shareWords are the share types as the resource-catalog rules name them.
var shareWords = map[ShareType]struct{ en, zh string }{
	ShareOpen:        {"shared without conditions: every department may read it once it asks", "无条件共享"},
	ShareConditional: {"shared on conditions: the owner decides each request", "有条件共享"},
	ShareNone:        {"not shared", "不予共享"},
}

// EU frequency authority, for the frequencies officers write most.
var frequencies = map[string]string{
	"continuous": "CONT", "realtime": "CONT", "real-time": "CONT", "hourly": "HOURLY",
	"daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY", "quarterly": "QUARTERLY",
	"annually": "ANNUAL", "annual": "ANNUAL", "yearly": "ANNUAL", "irregular": "IRREG", "never": "NEVER",
	"实时": "CONT", "每小时": "HOURLY", "每日": "DAILY", "每天": "DAILY", "每周": "WEEKLY", "每月": "MONTHLY",
	"每季度": "QUARTERLY", "每年": "ANNUAL", "不定期": "IRREG",
}

// DCAT writes datasets as one dcat:Catalog in JSON-LD (DCAT-AP 3): each
// dataset with its identifier, title, description, keywords, publisher
// (its department, by name where names gives one), access rights (the
// share type), update frequency, the schema version it conforms to, its
// fields, its retention where the owner set one (xhub:retention, an
// xsd:duration), and two distributions: query and subscribe through the hub.
func DCAT(w io.Writer, datasets []Dataset, names map[DeptID]string, o ExportOptions) error {
	o.defaults()
	type obj = map[string]any
	id := func(kind, name string) string { return o.Base + kind + "/" + url.PathEscape(name) }
	var list []obj
	for _, d := range datasets {
		owner := d.Owner()
		publisher := obj{"@id": id("dept", string(owner)), "@type": "foaf:Agent", "dct:identifier": string(owner)}
		if n := names[owner]; n != "" {
			publisher["foaf:name"] = n
		}
		var fields []obj
		for _, f := range d.Fields {
			fo := obj{"@type": "dcat:Resource", "dct:identifier": f.Name, "dct:type": f.Type, "xhub:required": f.Required}
			if f.Description != "" {
				fo["dct:description"] = f.Description
			}
			fields = append(fields, fo)
		}
		words := shareWords[d.ShareType]
		do := obj{
			"@id":            id("dataset", string(d.ID)),
			"@type":          "dcat:Dataset",
			"dct:identifier": string(d.ID),
			"dct:title":      d.Title,
			"dct:publisher":  publisher,
			"dct:accessRights": obj{
				"@id": accessRights[d.ShareType], "@type": "dct:RightsStatement",
				"rdfs:label":     []obj{{"@value": words.en, "@language": "en"}, {"@value": words.zh, "@language": "zh"}},
				"xhub:shareType": string(d.ShareType),
			},
			"dct:conformsTo": obj{
				"@id": id("schema", d.SchemaSubject) + "/" + itoa(d.SchemaVersion), "@type": "dct:Standard",
				"dct:identifier": d.SchemaSubject, "owl:versionInfo": itoa(d.SchemaVersion),
				"dct:description": "JSON Schema of the dataset's records; its top-level properties are the information items (xhub:field)",
			},
			"xhub:field": fields,
			"dcat:distribution": []obj{
				distribution(id, d, "query", "Query through the hub (gRPC Exchange.Query; a grant is needed unless open)", o.Hub),
				distribution(id, d, "subscribe", "Subscribe through the hub (gRPC Exchange.Subscribe, durable, at-least-once)", o.Hub),
			},
			"adms:status": string(d.Status),
		}
		if d.Description != "" {
			do["dct:description"] = d.Description
		}
		if len(d.Keywords) > 0 {
			do["dcat:keyword"] = d.Keywords
		}
		if d.Frequency != "" {
			if code, ok := frequencies[strings.ToLower(strings.TrimSpace(d.Frequency))]; ok {
				do["dct:accrualPeriodicity"] = obj{"@id": "http://publications.europa.eu/resource/authority/frequency/" + code, "rdfs:label": d.Frequency}
			} else {
				do["dct:accrualPeriodicity"] = obj{"@type": "dct:Frequency", "rdfs:label": d.Frequency}
			}
		}
		if d.Retention != 0 {
			do["xhub:retention"] = obj{"@value": d.Retention.ISO8601(), "@type": "xsd:duration"}
		}
		if !d.PublishedAt.IsZero() {
			do["dct:issued"] = obj{"@value": d.PublishedAt.UTC().Format("2006-01-02T15:04:05Z"), "@type": "xsd:dateTime"}
		}
		if !d.UpdatedAt.IsZero() {
			do["dct:modified"] = obj{"@value": d.UpdatedAt.UTC().Format("2006-01-02T15:04:05Z"), "@type": "xsd:dateTime"}
		}
		list = append(list, do)
	}
	if list == nil {
		list = []obj{}
	}
	doc := obj{
		"@context": obj{
			"dcat":         "http://www.w3.org/ns/dcat#",
			"dct":          "http://purl.org/dc/terms/",
			"foaf":         "http://xmlns.com/foaf/0.1/",
			"rdfs":         "http://www.w3.org/2000/01/rdf-schema#",
			"owl":          "http://www.w3.org/2002/07/owl#",
			"xsd":          "http://www.w3.org/2001/XMLSchema#",
			"adms":         "http://www.w3.org/ns/adms#",
			"xhub":         "https://xhub-gov.github.io/ns#",
			"dcat:keyword": obj{"@container": "@set"},
			"xhub:field":   obj{"@container": "@list"},
		},
		"@id":          o.Base + "catalog",
		"@type":        "dcat:Catalog",
		"dct:title":    o.Title,
		"dcat:dataset": list,
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func distribution(id func(kind, name string) string, d Dataset, how, title, hub string) map[string]any {
	dist := map[string]any{
		"@id":       id("dataset", string(d.ID)) + "/" + how,
		"@type":     "dcat:Distribution",
		"dct:title": title,
		"dcat:mediaType": map[string]any{
			"@id": "https://www.iana.org/assignments/media-types/application/json",
		},
		"dcat:accessService": map[string]any{"@type": "dcat:DataService", "dct:title": "xhub " + how},
	}
	if hub != "" {
		dist["dcat:accessURL"] = map[string]any{"@id": "xhub://" + hub + "/" + how + "/" + string(d.ID)}
	}
	return dist
}

// CSVHeader is the resource catalog's columns, in Chinese as the rules
// name them, with the dataset id and the schema version after them.
var CSVHeader = []string{"资源代码", "资源名称", "资源摘要", "提供方", "提供方代码", "共享类型", "更新周期", "信息项", "关键词", "状态", "模式版本", "保存期限"}

// CSV writes one row per dataset under CSVHeader. 信息项 (the
// information items) lists each field as name(type), with * on required
// ones, separated by "; ". 保存期限 (how long the hub keeps the dataset's
// published batches) is empty for the hub's default.
func CSV(w io.Writer, datasets []Dataset, names map[DeptID]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, d := range datasets {
		var items []string
		for _, f := range d.Fields {
			item := f.Name + "(" + f.Type + ")"
			if f.Required {
				item += "*"
			}
			items = append(items, item)
		}
		owner := d.Owner()
		name := names[owner]
		if name == "" {
			name = string(owner)
		}
		row := []string{string(d.ID), d.Title, d.Description, name, string(owner), shareWords[d.ShareType].zh, d.Frequency,
			strings.Join(items, "; "), strings.Join(d.Keywords, "; "), string(d.Status), d.SchemaSubject + ":" + itoa(d.SchemaVersion), d.Retention.String()}
		for i, v := range row {
			row[i] = csvSafe(v)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a cell from being read as a formula by a spreadsheet
// (titles and descriptions are officers' text).
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
