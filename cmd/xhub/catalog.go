package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
)

func (c *cli) catalogCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "catalog", Short: "Publish, list, show and retire datasets"}

	var title, share, schema, description, keywords, frequency, retention string
	publish := &cobra.Command{
		Use:   "publish ID --title T --share open|conditional|none --schema SUBJECT[:VERSION]",
		Short: "Publish or update a dataset of your department (officer)",
		Long: `Publish a dataset to the catalog, or update its metadata. ID is
<department>.<name>. The dataset's fields are the top-level properties of
its schema. Share types: open (granted to any department on request),
conditional (your officers decide each request), none (listed, never shared).
Publishing again replaces all the metadata; to change some of it (a new
schema version keeping keywords and description), use xhub catalog update.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			subject, version := schema, 0
			if s, v, ok := strings.Cut(schema, ":"); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					return fmt.Errorf("--schema %q: version after ':' must be a positive number", schema)
				}
				subject, version = s, n
			}
			var kw []string
			for _, k := range strings.Split(keywords, ",") {
				if k = strings.TrimSpace(k); k != "" {
					kw = append(kw, k)
				}
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				d, err := cl.PublishDataset(ctx, adapters.DatasetSpec{
					ID: args[0], Title: title, Description: description, Keywords: kw, ShareType: share,
					Frequency: frequency, SchemaSubject: subject, SchemaVersion: version, Retention: retention,
				})
				if err != nil {
					return err
				}
				if ok, err := c.emitted(d, d.ID); ok {
					return err
				}
				c.say("published %s (%s, schema %s:%d, %d fields), ledger entry %d", d.ID, d.ShareType, d.SchemaSubject, d.SchemaVersion, len(d.Fields), d.Seq)
				return nil
			})
		},
	}
	f := publish.Flags()
	f.StringVar(&title, "title", "", "title (required)")
	f.StringVar(&share, "share", "", "open, conditional or none (required)")
	f.StringVar(&schema, "schema", "", "schema SUBJECT[:VERSION] (required; default version: latest)")
	f.StringVar(&description, "description", "", "description")
	f.StringVar(&keywords, "keywords", "", "comma-separated keywords")
	f.StringVar(&frequency, "frequency", "", "update frequency, e.g. daily")
	f.StringVar(&retention, "retention", "", "how long the hub keeps published batches: a number and s, m, h or d, e.g. 30d (default: the hub's --data-retention)")
	for _, n := range []string{"title", "share", "schema"} {
		_ = publish.MarkFlagRequired(n)
	}

	var uTitle, uDescription, uKeywords, uFrequency, uShare, uSchema, uRetention string
	update := &cobra.Command{
		Use:   "update ID [--title T] [--description D] [--keywords a,b] [--frequency F] [--retention 30d] [--schema SUBJECT[:VERSION]] [--share T]",
		Short: "Change some of a dataset's metadata, keeping the rest (officer)",
		Long: `Change only the metadata given, as one ledger entry (dataset.updated);
everything else is kept. --keywords "" clears the keywords; --schema moves
the dataset to a newer schema version (default: the subject's latest).
--retention sets how long the hub keeps the dataset's batches: shortened, it
reaches the batches already stored too (each node purges those older than
the new retention within a minute); lengthened, it applies to batches
published from then on (--retention "" goes back to the hub's default).

A stricter share type (open → conditional → none) does not end grants
already made: they stay until they expire or are revoked (the output says
how many; xhub share revoke ends one). New requests follow the new type.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			u := adapters.DatasetUpdate{ID: args[0]}
			if fl.Changed("title") {
				u.Title = &uTitle
			}
			if fl.Changed("description") {
				u.Description = &uDescription
			}
			if fl.Changed("keywords") {
				kw := []string{}
				for _, k := range strings.Split(uKeywords, ",") {
					if k = strings.TrimSpace(k); k != "" {
						kw = append(kw, k)
					}
				}
				u.Keywords = &kw
			}
			if fl.Changed("frequency") {
				u.Frequency = &uFrequency
			}
			if fl.Changed("share") {
				u.ShareType = &uShare
			}
			if fl.Changed("retention") {
				u.Retention = &uRetention
			}
			if fl.Changed("schema") {
				subject, version := uSchema, 0
				if s, v, ok := strings.Cut(uSchema, ":"); ok {
					n, err := strconv.Atoi(v)
					if err != nil || n < 1 {
						return fmt.Errorf("--schema %q: version after ':' must be a positive number", uSchema)
					}
					subject, version = s, n
				}
				if subject == "" && version == 0 {
					return fmt.Errorf("--schema: give SUBJECT, SUBJECT:VERSION or :VERSION")
				}
				u.SchemaSubject, u.SchemaVersion = subject, version
			}
			if u.Title == nil && u.Description == nil && u.Keywords == nil && u.Frequency == nil && u.ShareType == nil && u.Retention == nil && !fl.Changed("schema") {
				return fmt.Errorf("nothing to change: give at least one of --title, --description, --keywords, --frequency, --retention, --schema, --share")
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				r, err := cl.UpdateDataset(ctx, u)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(r, r.Dataset.ID); ok {
					return err
				}
				c.say("updated %s: %s (ledger entry %d)", r.Dataset.ID, strings.Join(r.Changed, ", "), r.Seq)
				if slices.Contains(r.Changed, "share_type") && r.ActiveGrants > 0 {
					c.say("%d active grants on %s stay until they expire or are revoked (xhub share list --dataset %s --status active; xhub share revoke GRANT --reason R)", r.ActiveGrants, r.Dataset.ID, r.Dataset.ID)
				}
				return nil
			})
		},
	}
	uf := update.Flags()
	uf.StringVar(&uTitle, "title", "", "new title")
	uf.StringVar(&uDescription, "description", "", "new description")
	uf.StringVar(&uKeywords, "keywords", "", "new comma-separated keywords (\"\" clears them)")
	uf.StringVar(&uFrequency, "frequency", "", "new update frequency")
	uf.StringVar(&uShare, "share", "", "new share type: open, conditional or none")
	uf.StringVar(&uRetention, "retention", "", "how long the hub keeps the dataset's batches, e.g. 30d; a shorter one also purges older stored batches (\"\": the hub's default)")
	uf.StringVar(&uSchema, "schema", "", "new schema SUBJECT[:VERSION] (default version: latest)")

	var dept, shareF, search string
	var retired bool
	list := &cobra.Command{
		Use:   "list [--dept D] [--share T] [--search TEXT]",
		Short: "List the catalog (every page)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				all, err := cl.Datasets(ctx, adapters.DatasetQuery{Dept: dept, ShareType: shareF, Search: search, IncludeRetired: retired})
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"datasets": all, "total": len(all)})
				}
				w := c.table()
				w.row("ID", "SHARE", "STATUS", "SCHEMA", "TITLE")
				for _, d := range all {
					w.row(d.ID, d.ShareType, d.Status, fmt.Sprintf("%s:%d", d.SchemaSubject, d.SchemaVersion), d.Title)
				}
				if err := w.Flush(); err != nil {
					return err
				}
				c.say("(%d datasets)", len(all))
				return nil
			})
		},
	}
	list.Flags().StringVar(&dept, "dept", "", "only this department's datasets")
	list.Flags().StringVar(&shareF, "share", "", "only this share type")
	list.Flags().StringVar(&search, "search", "", "words to find in id, title, description, keywords")
	list.Flags().BoolVar(&retired, "retired", false, "include retired datasets")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a dataset",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				d, err := cl.Dataset(ctx, args[0])
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(d)
				}
				c.say("id:          %s\ntitle:       %s\nowner:       %s\nshare:       %s\nstatus:      %s\nschema:      %s:%d\nfrequency:   %s\nretention:   %s\nkeywords:    %s\ndescription: %s\nfields:",
					d.ID, catalog.EscapeLine(d.Title), d.Owner, d.ShareType, d.Status, d.SchemaSubject, d.SchemaVersion, catalog.EscapeLine(d.Frequency),
					cmp.Or(d.Retention, "the hub's default"), catalog.EscapeLine(strings.Join(d.Keywords, ", ")), escapeLines(d.Description))
				for _, f := range d.Fields {
					req := ""
					if f.Required {
						req = " (required)"
					}
					c.say("  %s: %s%s", catalog.EscapeLine(f.Name), f.Type, req)
				}
				return nil
			})
		},
	}

	var reason string
	retire := &cobra.Command{
		Use:   "retire ID",
		Short: "Retire a dataset of your department (officer)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				d, err := cl.RetireDataset(ctx, args[0], reason)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(d, d.ID); ok {
					return err
				}
				c.say("retired %s, ledger entry %d", d.ID, d.Seq)
				return nil
			})
		},
	}
	retire.Flags().StringVar(&reason, "reason", "", "why")
	var format, out, base string
	var exportRetired bool
	export := &cobra.Command{
		Use:   "export --format dcat|csv [--out FILE] [--dept D] [--retired] [--base IRI]",
		Short: "Export the catalog as DCAT-AP 3 JSON-LD or as the resource catalog's CSV columns",
		Long: `Export the catalog (every dataset the caller may list):
  dcat  one dcat:Catalog in JSON-LD (DCAT-AP 3): each dataset with its publisher
        department, keywords, the share type as access rights (PUBLIC,
        RESTRICTED, NON_PUBLIC), update frequency, the schema version it
        conforms to, its fields, and query and subscribe distributions
  csv   the government resource catalog's columns (资源代码, 资源名称, 资源摘要,
        提供方, 提供方代码, 共享类型, 更新周期, 信息项, 关键词, 状态, 模式版本,
        保存期限 (retention; empty: the hub's default)),
        one row per dataset; 信息项 lists name(type), * on required fields
Ids are IRIs under --base (default urn:xhub:).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "dcat" && format != "csv" {
				return fmt.Errorf("--format: %q is not dcat or csv", format)
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				all, err := cl.Datasets(ctx, adapters.DatasetQuery{Dept: dept, IncludeRetired: exportRetired})
				if err != nil {
					return err
				}
				depts, err := cl.Departments(ctx)
				if err != nil {
					return err
				}
				names := map[catalog.DeptID]string{}
				for _, d := range depts {
					names[catalog.DeptID(d.ID)] = d.Name
				}
				ds := make([]catalog.Dataset, len(all))
				for i, d := range all {
					ds[i] = d.Catalog()
				}
				var buf bytes.Buffer
				if format == "dcat" {
					err = catalog.DCAT(&buf, ds, names, catalog.ExportOptions{Base: base, Hub: cl.Hub()})
				} else {
					err = catalog.CSV(&buf, ds, names)
				}
				if err != nil {
					return err
				}
				if out == "" {
					_, err = c.stdout.Write(buf.Bytes())
					return err
				}
				if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				c.say("%d datasets written to %s (%s)", len(ds), out, format)
				return nil
			})
		},
	}
	export.Flags().StringVar(&format, "format", "", "dcat or csv (required)")
	export.Flags().StringVar(&out, "out", "", "write here instead of standard output")
	export.Flags().StringVar(&dept, "dept", "", "only this department's datasets")
	export.Flags().BoolVar(&exportRetired, "retired", false, "include retired datasets")
	export.Flags().StringVar(&base, "base", "", "IRI prefix of the exported ids (default urn:xhub:)")
	_ = export.MarkFlagRequired("format")

	cmd.AddCommand(publish, update, list, show, retire, export)
	return cmd
}
