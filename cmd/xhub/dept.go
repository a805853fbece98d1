package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
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
				r, err := cl.Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: args[0], Name: name})
				if err != nil {
					return err
				}
				c.say("department %s (%s) added, ledger entry %d", r.Department.Id, r.Department.Name, r.Seq)
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
				all := &xhubv1.ListDepartmentsResponse{}
				token := ""
				for {
					r, err := cl.Departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{PageSize: 1000, PageToken: token})
					if err != nil {
						return err
					}
					all.Departments = append(all.Departments, r.Departments...)
					if token = r.NextPageToken; token == "" {
						break
					}
				}
				if c.json() {
					return c.printProto(all)
				}
				w := c.table()
				fmt.Fprintln(w, "ID\tNAME\tSINCE\tSEQ")
				for _, d := range all.Departments {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", d.Id, d.Name, d.CreatedAt.AsTime().Format("2006-01-02"), d.Seq)
				}
				return w.Flush()
			})
		},
	}
	cmd.AddCommand(add, list)
	return cmd
}
