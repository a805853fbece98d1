package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestVersion: the binary says what it is, and, with credentials, what
// the hub node is, from the node's health answer.
func TestVersion(t *testing.T) {
	env := testenv.Start(t)
	var v struct {
		Client struct {
			Version, API string
			GoVersion    string `json:"go_version"`
		} `json:"client"`
		Hub map[string]string `json:"hub"`
	}
	out := mustX(t, env, env.Node.AdminCreds, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if v.Client.Version == "" || v.Client.API != "xhub.v1" || !strings.HasPrefix(v.Client.GoVersion, "go") {
		t.Fatalf("client: %+v", v.Client)
	}
	if v.Hub["node"] != "xhub" || !strings.Contains(v.Hub["version"], "xhub.v1") || v.Hub["health"] != "SERVING" {
		t.Fatalf("hub: %+v", v.Hub)
	}
	var vout, verr bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &vout, &verr); err != nil || !strings.HasPrefix(vout.String(), "xhub ") || !strings.Contains(vout.String(), "xhub.v1") {
		t.Fatalf("--version: %q %v", vout.String(), err)
	}
	// Mistyped subcommands one level down fail, with the suggestion.
	_, err := xhub(t, env, env.Node.AdminCreds, "share", "aprove")
	if err == nil || !strings.Contains(errorLine(err), `did you mean approve?`) {
		t.Fatalf("share aprove: %v", err)
	}
	_, err = xhub(t, env, env.Node.AdminCreds, "sahre")
	if err == nil || errorLine(err) != `unknown command "sahre" for "xhub"; did you mean share?` {
		t.Fatalf("sahre: %q", errorLine(err))
	}
}

// TestUnreachableHub: the transport's words become what an officer needs.
func TestUnreachableHub(t *testing.T) {
	env := testenv.Start(t)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"dept", "list", "--creds", env.Node.AdminCreds, "--hub", "127.0.0.1:1"}, &out, &errb)
	if err == nil {
		t.Fatal("a hub at 127.0.0.1:1 answered")
	}
	if got := errorLine(err); !strings.HasPrefix(got, "cannot reach the hub at 127.0.0.1:1: connection refused") {
		t.Fatalf("got %q", got)
	}
}
