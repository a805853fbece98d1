package main

import (
	"path/filepath"
	"testing"

	"github.com/xhub-gov/xhub/internal/testenv"
)

// This file holds the webhook tests' common setup: departments with an
// officer each, and conditional datasets whose every request is an event
// for the owner's webhook.

// addOfficers adds each of depts on env, with an officer's creds file for
// each; it returns the files by department.
func addOfficers(t *testing.T, env *testenv.Env, depts ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	creds := map[string]string{}
	for _, d := range depts {
		creds[d] = filepath.Join(dir, d+".creds")
		mustX(t, env, env.Node.AdminCreds, "dept", "add", d, "--name", d)
		mustX(t, env, env.Node.AdminCreds, "creds", "issue", "--dept", d, "--role", "officer", "--out", creds[d])
	}
	return creds
}

// publishCond has dept's officer (creds) register the schema dept.cond
// and publish the conditional dataset dept.cond: each request for it is
// an event for dept's webhook.
func publishCond(t *testing.T, env *testenv.Env, creds, dept string) {
	t.Helper()
	schema := writeFile(t, "s.json", `{"type":"object","properties":{"id":{"type":"integer"}}}`)
	mustX(t, env, creds, "schema", "register", dept+".cond", "--file", schema)
	mustX(t, env, creds, "catalog", "publish", dept+".cond", "--title", "C", "--share", "conditional", "--schema", dept+".cond")
}

// webhookFixture is a hub, health with the conditional dataset
// health.cond (so each request by tax is an event for health's webhook),
// and tax, each with an officer's creds file.
type webhookFixture struct {
	env         *testenv.Env
	health, tax string
}

// startWebhookFixture starts the fixture's hub with opts.
func startWebhookFixture(t *testing.T, opts ...testenv.Option) *webhookFixture {
	t.Helper()
	env := testenv.Start(t, opts...)
	creds := addOfficers(t, env, "health", "tax")
	publishCond(t, env, creds["health"], "health")
	return &webhookFixture{env: env, health: creds["health"], tax: creds["tax"]}
}
