package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
)

func (c *cli) catalogCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "catalog", Short: "Publish, list, show and retire datasets"}

	var title, share, schema, description, keywords, frequency string
	publish := &cobra.Command{
		Use:   "publish ID --title T --share open|conditional|none --schema SUBJECT[:VERSION]",
		Short: "Publish or update a dataset of your department (officer)",
		Long: `Publish a dataset to the catalog, or update its metadata. ID is
<department>.<name>. The dataset's fields are the top-level properties of
its schema. Share types: open (granted to any department on request),
conditional (your officers decide each request), none (listed, never shared).`,
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
					Frequency: frequency, SchemaSubject: subject, SchemaVersion: version,
				})
				if err != nil {
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
	for _, n := range []string{"title", "share", "schema"} {
		_ = publish.MarkFlagRequired(n)
	}

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
				fmt.Fprintln(w, "ID\tSHARE\tSTATUS\tSCHEMA\tTITLE")
				for _, d := range all {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s:%d\t%s\n", d.ID, d.ShareType, d.Status, d.SchemaSubject, d.SchemaVersion, d.Title)
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
				c.say("id:          %s\ntitle:       %s\nowner:       %s\nshare:       %s\nstatus:      %s\nschema:      %s:%d\nfrequency:   %s\nkeywords:    %s\ndescription: %s\nfields:",
					d.ID, d.Title, d.Owner, d.ShareType, d.Status, d.SchemaSubject, d.SchemaVersion, d.Frequency, strings.Join(d.Keywords, ", "), d.Description)
				for _, f := range d.Fields {
					req := ""
					if f.Required {
						req = " (required)"
					}
					c.say("  %s: %s%s", f.Name, f.Type, req)
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
				c.say("retired %s, ledger entry %d", d.ID, d.Seq)
				return nil
			})
		},
	}
	retire.Flags().StringVar(&reason, "reason", "", "why")
	cmd.AddCommand(publish, list, show, retire)
	return cmd
}
