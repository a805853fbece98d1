package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
)

func (c *cli) schemaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Register, check and show JSON Schemas (draft 2020-12)",
		Long: `The schema registry: one subject per dataset id, versions 1, 2, 3..., a
compatibility mode per subject (NONE, BACKWARD, FORWARD, FULL and the
_TRANSITIVE variants, with Confluent Schema Registry's meaning; default
FORWARD). Every incompatibility is explained with a JSON pointer and a rule.`,
	}
	var file, compat string
	readFile := func() ([]byte, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		return b, nil
	}
	register := &cobra.Command{
		Use:   "register SUBJECT --file F [--compat MODE]",
		Short: "Register a schema version (officer of the subject's department)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readFile()
			if err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				s, existing, err := cl.RegisterSchema(ctx, args[0], b, compat)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(map[string]any{"schema": s, "existing": existing}, fmt.Sprintf("%s:%d", s.Subject, s.Version)); ok {
					return err
				}
				if existing {
					c.say("%s: identical to version %d, nothing new registered", s.Subject, s.Version)
					return nil
				}
				c.say("%s: registered version %d (%s), %d fields, ledger entry %d", s.Subject, s.Version, s.Compat, len(s.Fields), s.Seq)
				return nil
			})
		},
	}
	register.Flags().StringVar(&file, "file", "", "schema file (JSON)")
	register.Flags().StringVar(&compat, "compat", "", "set the subject's compatibility mode")
	_ = register.MarkFlagRequired("file")

	check := &cobra.Command{
		Use:   "check SUBJECT --file F [--compat MODE]",
		Short: "Check a schema against a subject without registering it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readFile()
			if err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				r, err := cl.CheckSchema(ctx, args[0], b, compat)
				if err != nil {
					return err
				}
				if c.json() {
					if err := c.printJSON(r); err != nil {
						return err
					}
				} else if r.Compatible {
					c.say("%s: compatible under %s; would be version %d", args[0], r.Compat, r.NextVersion)
				} else {
					c.say("%s: INCOMPATIBLE under %s:", args[0], r.Compat)
					for _, p := range r.Problems {
						c.say("  %s", p)
					}
				}
				if !r.Compatible {
					return fmt.Errorf("schema is incompatible with %s under %s (%d problems)", args[0], r.Compat, len(r.Problems))
				}
				return nil
			})
		},
	}
	check.Flags().StringVar(&file, "file", "", "schema file (JSON)")
	check.Flags().StringVar(&compat, "compat", "", "check under this mode instead of the subject's")
	_ = check.MarkFlagRequired("file")

	var version int
	show := &cobra.Command{
		Use:   "show SUBJECT [--version N]",
		Short: "Show a schema version (default: latest)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				s, err := cl.Schema(ctx, args[0], version)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(s)
				}
				c.say("subject: %s\nversion: %d\ncompat:  %s\nfields:", s.Subject, s.Version, s.Compat)
				for _, f := range s.Fields {
					req := ""
					if f.Required {
						req = " (required)"
					}
					c.say("  %s: %s%s", catalog.EscapeLine(f.Name), f.Type, req)
				}
				c.say("schema:  %s", string(s.JSON))
				return nil
			})
		},
	}
	show.Flags().IntVar(&version, "version", 0, "version (default latest)")

	versions := &cobra.Command{
		Use:   "versions SUBJECT",
		Short: "List a subject's versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				all, err := cl.SchemaVersions(ctx, args[0])
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"versions": all})
				}
				w := c.table()
				w.row("VERSION", "COMPAT", "REGISTERED", "FIELDS", "SEQ")
				for _, v := range all {
					names := make([]string, len(v.Fields))
					for i, f := range v.Fields {
						names[i] = f.Name
					}
					w.row(v.Version, v.Compat, v.RegisteredAt.Format("2006-01-02 15:04"), strings.Join(names, ","), v.Seq)
				}
				return w.Flush()
			})
		},
	}
	cmd.AddCommand(register, check, show, versions)
	return cmd
}
