package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"text/template"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// alertRules is deploy/prometheus/alerts.yml as Prometheus reads it (the
// fields of a rule file; an unknown field is an error, as it is there).
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// notServed are series Prometheus makes itself, not a node.
var notServed = map[string]bool{"up": true}

// TestAlertRules: every alerting rule next to the Grafana board parses,
// and every series a rule or a panel names is served by a running node,
// with the labels the rule or panel selects on (after a webhook delivery
// failed, a share request went overdue, a durable subscription and a NATS
// feed were made, so the labelled series exist). Every panel's query is
// of the instance chosen on the board.
func TestAlertRules(t *testing.T) {
	rules := readRules(t)
	board := readBoard(t)

	clock := testenv.NewClock(time.Now())
	env := testenv.Start(t, testenv.WithMetrics(), testenv.WithNATSListen(), testenv.WithWebhooks(10*time.Millisecond), testenv.WithClock(clock))
	f := grantOn(t, env)
	f.serve(t, nil)
	ctx := context.Background()
	if _, err := f.consumer.Query(ctx, "health.cases", adapters.QueryOptions{}); err != nil {
		t.Fatal(err)
	}
	sub, err := f.consumer.Subscribe(ctx, "health.cases", "ops", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Published records, so the department's store is counted.
	if _, err := f.provider.Publish(ctx, "health.cases", [][]byte{[]byte(`{"id":7,"ward":"north"}`)}, "ops-1"); err != nil {
		t.Fatal(err)
	}

	// A webhook that always fails, and a request for it to announce that
	// stays pending.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer hook.Close()
	if _, err := testenv.RPC(f.owner).Departments.SetWebhook(ctx, &xhubv1.SetWebhookRequest{Dept: "health", Url: hook.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(f.owner).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: "health.beds", Title: "Beds", ShareType: "conditional", SchemaSubject: "health.cases"}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(f.grantee).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.beds", Purpose: "planning"}); err != nil {
		t.Fatal(err)
	}

	var fams map[string]*dto.MetricFamily
	testenv.WaitFor(t, 30*time.Second, "the failed webhook delivery and the NATS feed counted", func() bool {
		fams = scrape(t, env)
		return value(fams, "xhub_webhook_deliveries_total", "outcome", "failed") >= 1 &&
			value(fams, "xhub_durables", "kind", "nats_feed") == 1 && value(fams, "xhub_nats_feeds_expected") == 1
	})
	if v := value(fams, "xhub_nats_feeds_missing"); v != 0 {
		t.Errorf("xhub_nats_feeds_missing %v with the feed's consumer there", v)
	}
	if v := value(fams, "xhub_durables", "kind", "subscription"); v != 1 {
		t.Errorf("xhub_durables{kind=subscription} %v, want 1 (ops)", v)
	}
	if v := value(fams, "xhub_build_info", "go_version", runtime.Version()); v != 1 {
		t.Errorf("xhub_build_info{go_version=%s} %v, want 1", runtime.Version(), v)
	}
	if v := value(fams, "xhub_jetstream_store_bytes"); v <= 0 {
		t.Errorf("xhub_jetstream_store_bytes %v", v)
	}

	// Past the response deadline the request is overdue.
	if v := value(fams, "xhub_share_requests_overdue", "dept", "health"); v != 0 {
		t.Errorf("overdue before the deadline: %v", v)
	}
	clock.Advance(40 * 24 * time.Hour)
	fams = scrape(t, env)
	for _, c := range []struct {
		name, dept string
		want       float64
	}{
		{"xhub_share_requests_pending", "health", 1},
		{"xhub_share_requests_overdue", "health", 1},
		{"xhub_share_requests_pending", "tax", 0},
	} {
		if v := value(fams, c.name, "dept", c.dept); v != c.want {
			t.Errorf("%s{dept=%q} = %v, want %v", c.name, c.dept, v, c.want)
		}
	}

	// Every series named exists, with the labels selected on.
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("rule %s: %v", r.Alert, err)
				continue
			}
			n += checkServed(t, "rule "+r.Alert, expr, fams, false)
		}
	}
	for _, p := range board.Panels {
		for _, tg := range p.Targets {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: %s: %v", p.Title, tg.Expr, err)
				continue
			}
			n += checkServed(t, fmt.Sprintf("panel %q", p.Title), expr, fams, true)
		}
	}
	for _, v := range board.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Errorf("board variable %s: %v", v.Name, err)
		}
		m := regexp.MustCompile(`^label_values\((\w+), *(\w+)\)$`).FindStringSubmatch(q.Query)
		if m == nil || fams[m[1]] == nil {
			t.Errorf("board variable %s: query %q names no served series", v.Name, q.Query)
		}
	}
	if n < 40 {
		t.Fatalf("found %d series in the rules and the board; the walk lost some", n)
	}
}

// checkServed checks every series expr selects against the scrape, and
// (onBoard) that each is of the board's chosen instance. It returns how
// many selectors it checked.
func checkServed(t *testing.T, where string, expr parser.Expr, fams map[string]*dto.MetricFamily, onBoard bool) int {
	t.Helper()
	n := 0
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		n++
		if onBoard && !hasMatcher(vs.LabelMatchers, "instance", labels.MatchRegexp, "$instance") {
			t.Errorf("%s: %s is not of the chosen instance (instance=~\"$instance\")", where, vs)
		}
		if notServed[vs.Name] {
			return nil
		}
		fam := family(fams, vs.Name)
		if fam == nil {
			t.Errorf("%s: %s: no node serves %s", where, vs, vs.Name)
			return nil
		}
		for _, m := range fam.Metric {
			if matches(vs.LabelMatchers, m) {
				return nil
			}
		}
		t.Errorf("%s: %s: no served series of %s has these labels", where, vs, vs.Name)
		return nil
	})
	return n
}

// family is the served family of a series name: a histogram's or a
// summary's _bucket, _sum and _count are series of its family.
func family(fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if f := fams[name]; f != nil {
		return f
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f := fams[strings.TrimSuffix(name, suffix)]; f != nil && strings.HasSuffix(name, suffix) &&
			(f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY && suffix != "_bucket") {
			return f
		}
	}
	return nil
}

func hasMatcher(ms []*labels.Matcher, name string, typ labels.MatchType, value string) bool {
	for _, m := range ms {
		if m.Name == name && m.Type == typ && m.Value == value {
			return true
		}
	}
	return false
}

// matches reports whether a served sample satisfies the selector's
// matchers, leaving out the labels Prometheus adds (job, instance).
func matches(ms []*labels.Matcher, m *dto.Metric) bool {
	have := map[string]string{}
	for _, l := range m.Label {
		have[l.GetName()] = l.GetValue()
	}
	for _, mt := range ms {
		if mt.Name == model.MetricNameLabel || mt.Name == "job" || mt.Name == "instance" {
			continue
		}
		if !mt.Matches(have[mt.Name]) {
			return false
		}
	}
	return true
}

func readRules(t *testing.T) alertRules {
	t.Helper()
	b, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	seen := map[string]bool{}
	// Prometheus's template functions the annotations use, for parsing.
	funcs := template.FuncMap{"humanize": fmt.Sprint, "humanizePercentage": fmt.Sprint, "humanizeDuration": fmt.Sprint}
	count := 0
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("alerts.yml: a group without a name or rules: %q", g.Name)
		}
		for _, r := range g.Rules {
			count++
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("alerts.yml: rule %q: no name, or one used twice", r.Alert)
			}
			seen[r.Alert] = true
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("alerts.yml: %s: for: %v", r.Alert, err)
				}
			}
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("alerts.yml: %s: severity %q, want page or ticket", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alerts.yml: %s: a summary and a description are what the person paged reads", r.Alert)
			}
			for k, a := range r.Annotations {
				// Prometheus defines $labels and $value before the text.
				if _, err := template.New(k).Funcs(funcs).Parse("{{$labels := .Labels}}{{$value := .Value}}" + a); err != nil {
					t.Errorf("alerts.yml: %s: annotation %s: %v", r.Alert, k, err)
				}
			}
		}
	}
	if count < 10 {
		t.Fatalf("alerts.yml: %d rules read", count)
	}
	return rules
}

// board is the part of deploy/grafana/xhub.json the test reads.
type board struct {
	Panels []struct {
		Title   string
		Targets []struct{ Expr string }
	}
	Templating struct {
		List []struct {
			Name, Type string
			Query      json.RawMessage // a string for a datasource, an object for a query
		}
	}
}

func readBoard(t *testing.T) board {
	t.Helper()
	b, err := os.ReadFile("../../deploy/grafana/xhub.json")
	if err != nil {
		t.Fatal(err)
	}
	var whole map[string]any
	if err := json.Unmarshal(b, &whole); err != nil {
		t.Fatalf("xhub.json: %v", err)
	}
	var d board
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("xhub.json: %v", err)
	}
	hasInstance := false
	for _, v := range d.Templating.List {
		hasInstance = hasInstance || v.Name == "instance" && v.Type == "query"
	}
	if !hasInstance {
		t.Error("xhub.json: no instance variable")
	}
	return d
}

// scrape reads the node's /metrics as metric families.
func scrape(t *testing.T, env *testenv.Env) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(metricsText(t, env)))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value is the value of the sample of name with the given label pairs
// (-1 when there is none).
func value(fams map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	fam := fams[name]
	if fam == nil {
		return -1
	}
next:
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if have[kv[i]] != kv[i+1] {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return -1
}
