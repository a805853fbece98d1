package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/internal/hub"
)

// Demo schemas.
const (
	vaccinationsV1 = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "person_id": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
    "vaccine":   {"type": "string", "enum": ["MMR", "DTaP", "HepB", "Influenza"]},
    "dose":      {"type": "integer", "minimum": 1, "maximum": 5},
    "given_on":  {"type": "string", "format": "date"}
  },
  "required": ["person_id", "vaccine", "dose", "given_on"]
}`
	vaccinationsBadV2 = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "person_id": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
    "vaccine":   {"type": "string", "enum": ["MMR", "DTaP", "HepB", "Influenza", "HPV"]},
    "dose":      {"type": "string"},
    "given_on":  {"type": "string", "format": "date"}
  },
  "required": ["person_id", "vaccine", "given_on"]
}`
	vaccinationsV2 = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "person_id": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
    "vaccine":   {"type": "string", "enum": ["MMR", "DTaP", "HepB", "Influenza"]},
    "dose":      {"type": "integer", "minimum": 1, "maximum": 5},
    "given_on":  {"type": "string", "format": "date"},
    "clinic":    {"type": "string", "maxLength": 120}
  },
  "required": ["person_id", "vaccine", "dose", "given_on"]
}`
	residentsV1 = `{
  "type": "object",
  "properties": {
    "person_id": {"type": "string"},
    "name":      {"type": "string"},
    "district":  {"type": "string"},
    "born":      {"type": "string", "format": "date"}
  },
  "required": ["person_id", "district"]
}`
	returnsV1 = `{
  "type": "object",
  "properties": {
    "taxpayer_id": {"type": "string"},
    "year":        {"type": "integer"},
    "income":      {"type": "number", "minimum": 0}
  },
  "required": ["taxpayer_id", "year"]
}`
)

func (c *cli) demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the whole story in one process, in a temp dir, narrated",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dir, err := os.MkdirTemp("", "xhub-demo-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			start := time.Now()
			c.say("# xhub demo: a hub node in %s (embedded NATS + JetStream, Badger, gRPC with mTLS)", dir)
			node, err := hub.Start(ctx, hub.Config{DataDir: filepath.Join(dir, "hub"), Listen: "127.0.0.1:0"})
			if err != nil {
				return err
			}
			defer node.Close()
			c.say("# node listening on %s; the operator's credentials are in %s\n", node.Addr(), node.AdminCreds)

			file := func(name, body string) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
					panic(err)
				}
				return p
			}
			creds := func(who string) string { return filepath.Join(dir, who+".creds") }
			admin := node.AdminCreds
			step := func(note string) { c.say("\n# %s", note) }
			// x runs one CLI command as the holder of credsFile; failing
			// commands the story expects are marked with wantErr.
			var failed error
			x := func(credsFile string, wantErr bool, args ...string) string {
				if failed != nil {
					return ""
				}
				who := strings.TrimSuffix(filepath.Base(credsFile), ".creds")
				c.say("[%s]$ xhub %s", who, strings.Join(quoteArgs(args), " "))
				var out bytes.Buffer
				err := run(ctx, append(args, "--creds", credsFile), io.MultiWriter(c.stdout, &out), c.stderr)
				switch {
				case err != nil && wantErr:
					c.say("  → refused, as it should be: %s", errorLine(err))
				case err != nil:
					failed = fmt.Errorf("demo step %q: %s", strings.Join(args, " "), errorLine(err))
				case wantErr:
					failed = fmt.Errorf("demo step %q succeeded but should have been refused", strings.Join(args, " "))
				}
				return out.String()
			}
			idIn := func(out, prefix string) string {
				return regexp.MustCompile(`\b` + prefix + `-[0-9]+\b`).FindString(out)
			}

			step("The operator registers three departments and issues each an officer credential.")
			x(admin, false, "dept", "add", "health", "--name", "Health Commission")
			x(admin, false, "dept", "add", "civil-affairs", "--name", "Civil Affairs Bureau")
			x(admin, false, "dept", "add", "tax", "--name", "Tax Bureau")
			for _, d := range []string{"health", "civil-affairs", "tax"} {
				x(admin, false, "creds", "issue", "--dept", d, "--role", "officer", "--name", "officer", "--out", creds(d))
			}
			x(admin, false, "dept", "list")

			step("Each officer registers a JSON Schema (draft 2020-12) and publishes a dataset with a share type.")
			x(creds("health"), false, "schema", "register", "health.vaccinations", "--file", file("vacc-v1.json", vaccinationsV1))
			x(creds("health"), false, "catalog", "publish", "health.vaccinations", "--title", "Vaccination records",
				"--share", "conditional", "--schema", "health.vaccinations", "--keywords", "vaccination,immunisation,children",
				"--frequency", "daily", "--description", "One record per dose given in the city's clinics")
			x(creds("civil-affairs"), false, "schema", "register", "civil-affairs.residents", "--file", file("res-v1.json", residentsV1))
			x(creds("civil-affairs"), false, "catalog", "publish", "civil-affairs.residents", "--title", "Registered residents",
				"--share", "open", "--schema", "civil-affairs.residents", "--keywords", "population,household")
			x(creds("tax"), false, "schema", "register", "tax.returns", "--file", file("ret-v1.json", returnsV1))
			x(creds("tax"), false, "catalog", "publish", "tax.returns", "--title", "Income tax returns",
				"--share", "none", "--schema", "tax.returns", "--description", "Listed for transparency; not shared")

			step("Schemas evolve under FORWARD compatibility by default: consumers of version 1 must keep working.")
			x(creds("health"), true, "schema", "check", "health.vaccinations", "--file", file("vacc-bad.json", vaccinationsBadV2))
			x(creds("health"), true, "schema", "register", "health.vaccinations", "--file", filepath.Join(dir, "vacc-bad.json"))
			x(creds("health"), false, "schema", "register", "health.vaccinations", "--file", file("vacc-v2.json", vaccinationsV2))
			x(creds("health"), false, "schema", "register", "health.vaccinations", "--file", filepath.Join(dir, "vacc-v2.json"))
			x(creds("health"), false, "schema", "versions", "health.vaccinations")
			x(creds("health"), false, "catalog", "publish", "health.vaccinations", "--title", "Vaccination records",
				"--share", "conditional", "--schema", "health.vaccinations:2", "--keywords", "vaccination,immunisation,children", "--frequency", "daily")

			step("Every call is authorised by role and department.")
			x(creds("tax"), true, "catalog", "publish", "health.fake", "--title", "Not yours", "--share", "open", "--schema", "health.vaccinations")
			x(creds("tax"), true, "schema", "register", "health.vaccinations", "--file", filepath.Join(dir, "vacc-v1.json"))
			x(creds("health"), true, "dept", "add", "police", "--name", "Police")
			x(creds("health"), false, "creds", "issue", "--dept", "health", "--role", "system", "--name", "clinic-db", "--out", creds("health-system"))
			x(creds("health-system"), true, "catalog", "publish", "health.other", "--title", "A system may not publish", "--share", "open", "--schema", "health.vaccinations")

			step("Anyone with a credential can browse and search the catalog.")
			x(creds("tax"), false, "catalog", "list")
			x(creds("tax"), false, "catalog", "list", "--search", "vaccin")
			x(creds("tax"), false, "catalog", "show", "health.vaccinations")

			step("A revoked credential is refused at once.")
			if failed == nil {
				serial := strings.TrimSpace(mustSerial(creds("health-system")))
				x(admin, false, "creds", "revoke", serial, "--reason", "clinic server decommissioned")
				x(creds("health-system"), true, "catalog", "list")
			}

			step("Sharing. An open dataset is granted at once, by the open-sharing policy.")
			x(creds("tax"), false, "share", "request", "civil-affairs.residents", "--purpose", "verify residence for tax relief", "--fields", "person_id,district", "--days", "90")
			step("A conditional dataset waits for its owner, who may narrow the request.")
			out := x(creds("tax"), false, "share", "request", "health.vaccinations", "--purpose", "school vaccination allowance", "--fields", "person_id,vaccine,dose,given_on", "--days", "180")
			req := idIn(out, "r")
			x(creds("health"), false, "share", "inbox")
			out = x(creds("health"), false, "share", "approve", req, "--fields", "person_id,vaccine", "--days", "30", "--reason", "dose details are not needed for the allowance")
			grant := idIn(out, "g")
			out = x(creds("civil-affairs"), false, "share", "request", "health.vaccinations", "--purpose", "curiosity")
			x(creds("health"), false, "share", "reject", idIn(out, "r"), "--reason", "purpose does not meet the sharing rules (no statutory basis)")
			x(creds("health"), true, "share", "reject", idIn(out, "r"), "--reason", "twice")
			x(creds("civil-affairs"), true, "share", "request", "tax.returns", "--purpose", "benefit checks")
			x(creds("civil-affairs"), true, "share", "approve", req)
			step("Who may read what: complete lists, with history.")
			x(creds("health"), false, "share", "list", "--dataset", "health.vaccinations", "--status", "active")
			x(creds("tax"), false, "share", "list", "--grantee", "tax")

			step("The data plane. Health's registry connects outbound as the provider of its dataset (here: a JSON-lines file).")
			x(creds("health"), false, "creds", "issue", "--dept", "health", "--role", "system", "--name", "registry", "--out", creds("health-registry"))
			x(creds("tax"), false, "creds", "issue", "--dept", "tax", "--role", "system", "--name", "allowance-app", "--out", creds("tax-app"))
			stopProvider := func() {}
			if failed == nil {
				stopProvider, failed = c.demoProvider(ctx, creds("health-registry"), file("registry.jsonl", registryRecords), node.Addr())
			}
			defer stopProvider()
			step("Tax queries it: the hub checks the grant, validates each record against the schema and cuts it down to the granted fields.")
			x(creds("tax-app"), false, "query", "health.vaccinations")
			x(creds("tax-app"), false, "query", "health.vaccinations", "--where", "vaccine=MMR")
			x(creds("tax-app"), true, "query", "health.vaccinations", "--fields", "person_id,dose")
			x(creds("tax-app"), true, "query", "health.vaccinations", "--where", "dose>=2")

			step("Push: tax subscribes; health publishes batches, validated whole and stored durably; a retried batch is stored once.")
			var sub *demoSub
			if failed == nil {
				sub, failed = c.demoSubscribe(ctx, creds("tax-app"), node.Addr())
			}
			x(creds("health-registry"), true, "publish", "health.vaccinations", "--file", file("bad.jsonl", badBatch), "--batch-id", "day-0")
			x(creds("health-registry"), false, "publish", "health.vaccinations", "--file", file("day1.jsonl", day1Batch), "--batch-id", "day-1")
			x(creds("health-registry"), false, "publish", "health.vaccinations", "--file", filepath.Join(dir, "day1.jsonl"), "--batch-id", "day-1")
			if failed == nil {
				failed = sub.expect(2)
			}

			step("Health ends the grant before its term: the open stream ends at once, queries are refused.")
			x(creds("health"), false, "share", "revoke", grant, "--reason", "allowance scheme ended")
			if failed == nil {
				failed = sub.expectEnd()
			}
			x(creds("tax-app"), true, "query", "health.vaccinations")
			x(creds("health"), false, "share", "list", "--dataset", "health.vaccinations")
			step("The audit trail: every query answered and batch delivered, with what was withheld.")
			x(creds("health"), false, "audit", "--dataset", "health.vaccinations")

			step("Every change above is an entry in the tamper-evident ledger (one JetStream stream, one order).")
			x(creds("tax"), false, "ledger", "log", "--since", "24")
			step("A department checks the ledger itself, with the hub's key pinned in its creds file.")
			x(creds("tax"), false, "ledger", "head")
			x(creds("tax"), false, "ledger", "proof", strings.TrimPrefix(grant, "g-"))
			x(creds("tax"), false, "ledger", "verify")
			if failed != nil {
				return failed
			}
			c.say("\n# demo finished in %s; the temp dir is removed and nothing is left running.", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " ,'\"") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}
