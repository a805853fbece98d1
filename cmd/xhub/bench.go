package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/internal/bench"
)

func (c *cli) benchCmd() *cobra.Command {
	var cfg bench.Config
	var cpuProfile string
	spread := bench.DefaultSpread
	var doSpread bool
	cmd := &cobra.Command{
		Use:   "bench [--hub ADDR --creds ADMIN.creds [--raw-nats URL --replicas N]] [--duration D] [--concurrency N] [--spread [--depts N --datasets N --providers N --consumers N --grants N]] [-o json]",
		Short: "Measure the hub's data paths against raw NATS/JetStream baselines, with ratios",
		Long: `Measure, in one run on this machine, with the same payloads and concurrency:
  query      through the hub (grant check, validation, projection, audit;
             consumer and provider on gRPC) vs raw gRPC unary → NATS request → responder
  publish    validated durable batches of 100 records of ~1 KiB vs raw
             JetStream async publish of the same bytes
  subscribe  deliveries to 10 grantee departments vs raw JetStream consumption
  spread     (with --spread, instead of publish and subscribe) a province:
             consumers on their own connections querying random granted
             datasets among many, served by many provider streams, vs the
             same spread over raw NATS responders
By default against an in-process hub in a temp dir; with --hub and the
operator's --creds against a running hub (it creates bench departments
there). The raw baselines run on an in-process NATS, or with --raw-nats on
the hub's own NATS cluster, their streams with --replicas like the hub's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			cfg.Progress = c.stderr
			if doSpread {
				cfg.Spread = &spread
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if cmd.Flags().Changed("hub") {
				cfg.Hub, cfg.AdminCreds = c.hub, c.creds
				if cfg.AdminCreds == "" {
					return fmt.Errorf("--hub needs the operator's --creds (bench creates its departments)")
				}
			}
			rep, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if c.json() {
				return c.printJSON(rep)
			}
			w := c.table()
			w.row("PATH", "HUB", "RAW", "RATIO", "HUB p50/p99 µs", "RAW p50/p99 µs", "UNIT")
			paths := []struct {
				name string
				p    bench.Path
			}{{"query", rep.Query}, {"query-json", rep.QueryJSON}, {"publish", rep.Publish}, {"subscribe", rep.Subscribe}}
			if rep.Spread != nil {
				paths = append(paths[:2], struct {
					name string
					p    bench.Path
				}{"spread", *rep.Spread})
			}
			for _, p := range paths {
				lat := func(a, b float64) string {
					if a == 0 && b == 0 {
						return "-"
					}
					return fmt.Sprintf("%.0f/%.0f", a, b)
				}
				w.row(p.name, fmt.Sprintf("%.0f", p.p.Hub), fmt.Sprintf("%.0f", p.p.Raw), fmt.Sprintf("%.2f", p.p.Ratio), lat(p.p.HubP50us, p.p.HubP99us), lat(p.p.RawP50us, p.p.RawP99us), p.p.Unit)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			c.say("query p99 ratio (hub/raw): %.2f; concurrency %d, %s per phase, records of %d bytes", rep.QueryP99Ratio, rep.Concurrency, time.Duration(rep.DurationS*float64(time.Second)), rep.RecordBytes)
			if s := rep.SpreadSetup; s != nil {
				c.say("spread: %.2f× the single-dataset query (hub); setup of %d departments, %d datasets, %d grants, %d provider streams, %d consumers: %d ledger entries in %.1fs",
					rep.SpreadToSingle, s.Depts, s.Datasets, s.Grants, s.Providers, s.Consumers, s.LedgerEntries, s.SetupS)
			}
			for _, w := range rep.Warnings {
				c.say("warning: %s", w)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&cfg.Duration, "duration", 5*time.Second, "length of each timed phase")
	cmd.Flags().IntVar(&cfg.Concurrency, "concurrency", 64, "concurrent callers for query and publish")
	cmd.Flags().StringVar(&cfg.RawNATS, "raw-nats", "", "run the raw baselines on this NATS (the hub's cluster URL) instead of an in-process one")
	cmd.Flags().IntVar(&cfg.Replicas, "replicas", 1, "replicas of the raw baselines' streams")
	cmd.Flags().BoolVar(&doSpread, "spread", false, "also measure the province-scale query workload (instead of publish and subscribe)")
	cmd.Flags().IntVar(&spread.Depts, "depts", spread.Depts, "spread: departments")
	cmd.Flags().IntVar(&spread.Datasets, "datasets", spread.Datasets, "spread: datasets")
	cmd.Flags().IntVar(&spread.Providers, "providers", spread.Providers, "spread: provider streams")
	cmd.Flags().IntVar(&spread.Consumers, "consumers", spread.Consumers, "spread: consumer connections querying at once")
	cmd.Flags().IntVar(&spread.Grants, "grants", spread.Grants, "spread: grants")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run here")
	return cmd
}
