package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
)

func (c *cli) queryCmd() *cobra.Command {
	var fields string
	var where []string
	var limit int
	var all bool
	cmd := &cobra.Command{
		Use:   "query DATASET [--fields a,b] [--where 'field=value' ...] [--limit N]",
		Short: "Read records of a dataset your department is granted (system)",
		Long: `Query a dataset through the hub: your grant is checked, the fields you ask
for and every filter field must be granted, the provider's records are
validated against the dataset's schema and cut down to those fields.
Filters: field OP value, OP one of = != < <= > >= in prefix; the value is
JSON if it parses as JSON, else a string:
  --where 'district=north' --where 'age>=18' --where 'vaccine in ["MMR","HPV"]'
Records are printed as JSON lines (-o jsonl, the default); -o json prints one
JSON document {"records": [...], "withheld": N, ...} and -o table a table
whose columns are the records' fields. Numbers stay exact in every form.
Withheld records are reported on stderr.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// JSON lines unless -o says otherwise: records stream.
			format := "jsonl"
			if cmd.Flags().Changed("output") {
				format = c.output
			}
			if format != "jsonl" && format != "json" && format != "table" {
				return fmt.Errorf("-o %q: want jsonl (the default), json or table", format)
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				token := ""
				var recs []json.RawMessage
				withheld, reasons := 0, []string{}
				for {
					r, err := cl.Query(ctx, args[0], adapters.QueryOptions{Fields: splitList(fields), Where: where, Limit: limit, PageToken: token})
					if err != nil {
						return err
					}
					for _, rec := range r.Records {
						if format == "jsonl" {
							fmt.Fprintln(c.stdout, string(rec))
						} else {
							recs = append(recs, json.RawMessage(rec))
						}
					}
					if r.Withheld > 0 {
						withheld += r.Withheld
						reasons = append(reasons, r.WithheldReasons...)
						fmt.Fprintf(c.stderr, "withheld %d records that failed the schema or the filters: %s\n", r.Withheld, strings.Join(r.WithheldReasons, "; "))
					}
					if token = r.NextPageToken; token == "" || !all {
						if token != "" {
							fmt.Fprintf(c.stderr, "more records: run again with --all\n")
						}
						break
					}
				}
				switch format {
				case "json":
					if recs == nil {
						recs = []json.RawMessage{}
					}
					out := map[string]any{"records": recs, "withheld": withheld, "withheld_reasons": reasons}
					if token != "" {
						out["next_page_token"] = token
					}
					return c.printJSON(out)
				case "table":
					return printRecordTable(c.table(), recs)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&fields, "fields", "", "comma-separated fields (default: all granted)")
	cmd.Flags().StringArrayVar(&where, "where", nil, "filter, repeatable")
	cmd.Flags().IntVar(&limit, "limit", 0, "records per page (default 100, at most 1000)")
	cmd.Flags().BoolVar(&all, "all", false, "follow every page")
	return cmd
}

func (c *cli) publishCmd() *cobra.Command {
	var file, batchID string
	cmd := &cobra.Command{
		Use:   "publish DATASET --file records.jsonl [--batch-id ID]",
		Short: "Publish a batch of records to your department's dataset (system)",
		Long: `Publish one batch: every record (one JSON object per line) is validated
against the dataset's schema and the batch is stored whole or not at all;
each error names the record index and JSON pointer. Retrying with the same
--batch-id stores the batch once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			recs, err := readJSONL(file)
			if err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				r, err := cl.Publish(ctx, args[0], recs, batchID)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(r, strconv.FormatUint(r.StreamSeq, 10)); ok {
					return err
				}
				if r.Duplicate {
					c.say("batch already stored (stream sequence %d); nothing stored again", r.StreamSeq)
					return nil
				}
				c.say("stored %d records of %s (stream sequence %d)", r.Count, args[0], r.StreamSeq)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "JSON lines file (required; - for stdin)")
	cmd.Flags().StringVar(&batchID, "batch-id", "", "idempotency key for retries")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func readJSONL(path string) ([][]byte, error) {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
	}
	var recs [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 2<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		recs = append(recs, []byte(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	return recs, nil
}

func (c *cli) subscribeCmd() *cobra.Command {
	var name, from string
	var max int
	cmd := &cobra.Command{
		Use:   "subscribe DATASET [--name N] [--from new|beginning]",
		Short: "Receive a dataset's published records as JSON lines (system)",
		Long: `Subscribe to a dataset your department is granted. The subscription is
durable per (department, name): it resumes where it left off. Records are
printed as JSON lines and acknowledged once printed; Ctrl-C exits 0 quietly
(what was printed is acknowledged, nothing else). The hub ends the stream
with PermissionDenied when the grant is revoked or expires.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				// The stream outlives Ctrl-C (ctx) long enough to carry the
				// acknowledgements of what was printed.
				subCtx, stopSub := context.WithCancel(context.WithoutCancel(ctx))
				defer stopSub()
				sub, err := cl.Subscribe(subCtx, args[0], name, from)
				if err != nil {
					return err
				}
				type got struct {
					d   *adapters.Delivery
					err error
				}
				recvd := make(chan got, 1)
				go func() {
					for {
						d, err := sub.Recv()
						select {
						case recvd <- got{d, err}:
						case <-subCtx.Done():
							return
						}
						if err != nil {
							return
						}
					}
				}()
				for n := 0; max == 0 || n < max; n++ {
					select {
					case <-ctx.Done():
						// Ctrl-C: everything printed is acknowledged (the
						// acks went before the half-close); wait, bounded,
						// for the hub to end the stream, and exit quietly.
						_ = sub.Close()
						timeout := time.After(2 * time.Second)
						for {
							select {
							case g := <-recvd:
								if g.err != nil {
									return nil
								}
							case <-timeout:
								return nil
							}
						}
					case g := <-recvd:
						if g.err != nil {
							return g.err
						}
						fmt.Fprintln(c.stdout, string(g.d.Record))
						if err := sub.Ack(g.d.ID); err != nil {
							return err
						}
					}
				}
				_ = sub.Close()
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "default", "subscription name")
	cmd.Flags().StringVar(&from, "from", "new", "new or beginning (when the subscription is first made)")
	cmd.Flags().IntVar(&max, "max", 0, "stop after this many records (0: run until stopped)")
	return cmd
}

func (c *cli) auditCmd() *cobra.Command {
	var dataset, dept, since string
	cmd := &cobra.Command{
		Use:   "audit [--dataset D] [--dept D] [--since TIME]",
		Short: "Show data accesses: who read, received or published what, when (officer, admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			q := adapters.AuditQuery{Dataset: dataset, Dept: dept}
			if since != "" {
				t, err := parseTime(since)
				if err != nil {
					return err
				}
				q.Since = t
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				all, err := cl.Audit(ctx, q)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"entries": all})
				}
				w := c.table()
				w.row("TIME", "DEPT", "ACTION", "DATASET", "RECORDS", "WITHHELD", "FIELDS", "REQUEST")
				for _, e := range all {
					w.row(e.Time.Format("2006-01-02 15:04:05"), e.Dept, e.Action, e.Dataset, e.Records, e.Withheld, strings.Join(e.Fields, ","), e.RequestID)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&dataset, "dataset", "", "only this dataset")
	cmd.Flags().StringVar(&dept, "dept", "", "only accesses by, or to datasets of, this department")
	cmd.Flags().StringVar(&since, "since", "", "from this time (RFC 3339, a date, or a duration ago like 2h)")
	cmd.AddCommand(c.auditExportCmd())
	return cmd
}

// printRecordTable prints records as a table: one column per field (the
// union of the records' fields, sorted), strings as they are, other values
// as JSON (numbers exact); tabs and newlines in strings as spaces, other
// control characters escaped (table.row).
func printRecordTable(w *table, recs []json.RawMessage) error {
	var rows []map[string]json.RawMessage
	cols := map[string]bool{}
	for _, r := range recs {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r, &m); err != nil {
			return fmt.Errorf("record is not a JSON object: %w", err)
		}
		for k := range m {
			cols[k] = true
		}
		rows = append(rows, m)
	}
	names := make([]string, 0, len(cols))
	for k := range cols {
		names = append(names, k)
	}
	sort.Strings(names)
	header := make([]any, len(names))
	for i, k := range names {
		header[i] = strings.ToUpper(k)
	}
	w.row(header...)
	for _, m := range rows {
		cells := make([]any, len(names))
		for i, k := range names {
			v, ok := m[k]
			switch {
			case !ok:
				cells[i] = ""
			case len(v) > 0 && v[0] == '"':
				var s string
				_ = json.Unmarshal(v, &s)
				cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
			default:
				cells[i] = string(v)
			}
		}
		w.row(cells...)
	}
	return w.Flush()
}
