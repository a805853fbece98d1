package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/modfile"
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
	if len(lines) < 5 {
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

// composeFile is the part of docker-compose.yml the checks read.
type composeFile struct {
	Services map[string]struct {
		Image       string
		Command     []string
		Ports       []any // "[HOST_IP:]HOST:CONTAINER" or the long form's maps
		Volumes     []string
		Environment map[string]string
	}
	Volumes map[string]any
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) < 6 {
		t.Fatalf("docker-compose.yml: %d services read", len(c.Services))
	}
	return c
}

// TestComposeJoinSeesOnlyTheToken: no container but a hub's own mounts
// its data volume (hub-1's holds the CA key and admin credentials); hub-2
// receives its join token alone, in a volume only hub-1 (writing) and
// hub-2 (read-only) mount, as a file, never on a command line or in the
// file itself.
func TestComposeJoinSeesOnlyTheToken(t *testing.T) {
	c := readCompose(t)
	mounts := map[string][]string{} // volume → "service[:ro]"
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if _, named := c.Volumes[parts[0]]; !named {
				continue // a host file (the adapter's creds)
			}
			m := name
			if len(parts) > 2 && parts[2] == "ro" {
				m += ":ro"
			}
			mounts[parts[0]] = append(mounts[parts[0]], m)
		}
		for i, a := range s.Command {
			if a == "--join" || strings.HasPrefix(a, "--join=") || strings.HasPrefix(a, "xhubjoin") {
				t.Errorf("%s: a join token on the command line (%q, argument %d)", name, a, i)
			}
		}
		if v, ok := s.Environment["XHUB_JOIN"]; ok && v != "" {
			t.Errorf("%s: a join token written into the compose file", name)
		}
	}
	for _, vol := range []string{"hub-1", "hub-2"} {
		if got := mounts[vol]; len(got) != 1 || got[0] != vol {
			t.Errorf("volume %s (a data dir) is mounted by %v; only by %s", vol, got, vol)
		}
	}
	slices.Sort(mounts["join"])
	if got := mounts["join"]; !slices.Equal(got, []string{"hub-1", "hub-2:ro"}) {
		t.Errorf("the join volume is mounted by %v; want hub-1 (writing the token) and hub-2 read-only", got)
	}
	flag := func(service, name string) string {
		args := c.Services[service].Command
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}
	out, in := flag("hub-1", "--join-token-out"), flag("hub-2", "--join-file")
	if out == "" || out != in || !strings.HasPrefix(out, "/join/") {
		t.Errorf("hub-1 writes the token to %q and hub-2 reads it from %q: want one file on the join volume", out, in)
	}
}

// TestComposeShipsWhatIsTested: the NATS image is the nats-server
// version the tests build (go.mod), and no port is published on every
// interface but the hubs' API (metrics and NATS are not for the world).
func TestComposeShipsWhatIsTested(t *testing.T) {
	c := readCompose(t)
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse("go.mod", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ""
	for _, r := range mf.Require {
		if r.Mod.Path == "github.com/nats-io/nats-server/v2" {
			want = strings.TrimPrefix(r.Mod.Version, "v")
		}
	}
	if want == "" {
		t.Fatal("go.mod requires no nats-server")
	}
	nats := 0
	for name, s := range c.Services {
		repo, tag, _ := strings.Cut(s.Image, ":")
		if repo == "nats" {
			nats++
			if v, _, _ := strings.Cut(tag, "-"); v != want {
				t.Errorf("%s: image %s; the tests run nats-server %s (go.mod): ship what is tested", name, s.Image, want)
			}
			if len(s.Ports) != 0 {
				t.Errorf("%s publishes NATS ports %v: only the hubs reach NATS", name, s.Ports)
			}
		}
		for _, p := range s.Ports {
			hostIP, target := publishedOn(t, name, p)
			if (hostIP == "" || hostIP == "0.0.0.0" || hostIP == "::" || hostIP == "[::]") && target != "7443" {
				t.Errorf("%s publishes %v on every interface; only the API (7443) is for the world: bind it to 127.0.0.1", name, p)
			}
		}
	}
	if nats != 3 {
		t.Fatalf("%d NATS services read", nats)
	}
}

// publishedOn reads a ports entry: the host address it binds ("" for
// all) and the container port.
func publishedOn(t *testing.T, service string, p any) (hostIP, target string) {
	t.Helper()
	switch v := p.(type) {
	case string:
		v, _, _ = strings.Cut(v, "/") // tcp, udp
		parts := strings.Split(v, ":")
		switch len(parts) {
		case 1, 2:
			return "", parts[len(parts)-1]
		default: // an IPv6 host address holds colons too
			return strings.Join(parts[:len(parts)-2], ":"), parts[len(parts)-1]
		}
	case map[string]any:
		ip, _ := v["host_ip"].(string)
		return ip, fmt.Sprint(v["target"])
	}
	t.Fatalf("%s: ports entry %v (%T) not understood", service, p, p)
	return "", ""
}
