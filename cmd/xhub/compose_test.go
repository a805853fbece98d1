package main

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestComposeUsesRealFlags: every xhub command line in docker-compose.yml
// (and the Dockerfile's default) names commands and flags that exist.
// Compose cannot run here; this is what can be checked without it.
func TestComposeUsesRealFlags(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]string
	// Services of the xhub image: their command: [...] flow sequences.
	services := regexp.MustCompile(`(?m)^  ([a-z0-9-]+):\n((?:    .*\n|\n)*)`).FindAllStringSubmatch(string(b), -1)
	for _, s := range services {
		body := s[2]
		if !strings.Contains(body, "image: xhub") && !strings.Contains(body, "<<: *hub") {
			continue
		}
		lines = append(lines, flowSeq(t, s[1], body, "command:"))
	}
	hub := regexp.MustCompile(`(?s)x-hub: &hub\n(.*?)\n\n`).FindStringSubmatch(string(b))
	if hub == nil {
		t.Fatal("no x-hub anchor")
	}
	hc := flowSeq(t, "x-hub healthcheck", hub[1], "test:")
	lines = append(lines, hc[2:]) // "CMD", "/usr/local/bin/xhub"
	lines = append(lines, flowSeq(t, "Dockerfile", string(df), "CMD"))
	if len(lines) < 6 {
		t.Fatalf("found %d xhub command lines; the pattern lost some", len(lines))
	}
	for _, args := range lines {
		checkArgs(t, args)
	}
}

// flowSeq reads the JSON-style list after key in text.
func flowSeq(t *testing.T, where, text, key string) []string {
	t.Helper()
	i := strings.Index(text, key)
	if i < 0 {
		t.Fatalf("%s: no %s", where, key)
	}
	rest := text[i+len(key):]
	j := strings.Index(rest, "]")
	raw := strings.TrimSpace(rest[:j+1])
	var out []string
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("%s: %s %s: %v", where, key, raw, err)
	}
	return out
}

func checkArgs(t *testing.T, args []string) {
	t.Helper()
	root := newRoot(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Errorf("%q: no such xhub command (%v)", args, err)
		return
	}
	flags := cmd.Flags()
	flags.AddFlagSet(cmd.InheritedFlags())
	for _, a := range rest {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		var f *pflag.Flag
		if len(name) == 1 {
			f = flags.ShorthandLookup(name)
		} else {
			f = flags.Lookup(name)
		}
		if f == nil {
			t.Errorf("%q: `xhub %s` has no flag %s", strings.Join(args, " "), cmd.CommandPath(), a)
		}
	}
}
