package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
)

func (c *cli) deptCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dept", Short: "Register and list departments (operator)"}
	var name string
	add := &cobra.Command{
		Use:   "add ID --name NAME",
		Short: "Register a department (admin)",
		Long:  "Register a department. ID follows [a-z][a-z0-9-]{1,31} (e.g. health, civil-affairs).",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				d, err := cl.AddDepartment(ctx, args[0], name)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(d, d.ID); ok {
					return err
				}
				c.say("department %s (%s) added, ledger entry %d", d.ID, d.Name, d.Seq)
				return nil
			})
		},
	}
	add.Flags().StringVar(&name, "name", "", "display name (required)")
	_ = add.MarkFlagRequired("name")
	list := &cobra.Command{
		Use:   "list",
		Short: "List departments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				all, err := cl.Departments(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"departments": all})
				}
				w := c.table()
				fmt.Fprintln(w, "ID\tNAME\tSINCE\tSEQ")
				for _, d := range all {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", d.ID, d.Name, day(d.CreatedAt), d.Seq)
				}
				return w.Flush()
			})
		},
	}
	cmd.AddCommand(add, list)
	return cmd
}
