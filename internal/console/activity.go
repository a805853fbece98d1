package console

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/adapters"
)

// Chart is a bar chart drawn as SVG by the template (no script): bars
// scaled to the largest value.
type Chart struct {
	Title string
	Bars  []Bar
	Unit  string
}

// Bar is one bar, with its place computed here.
type Bar struct {
	Label string
	Value float64
	Text  string // the value as shown
	Y     int    // row position
	W     int    // width in px of 400
}

const barHeight = 22

func chart(title, unit string, labels []string, values []float64, text func(float64) string) Chart {
	c := Chart{Title: title, Unit: unit}
	top := 0.0
	for _, v := range values {
		top = max(top, v)
	}
	for i, l := range labels {
		w := 0
		if top > 0 {
			w = int(values[i] / top * 400)
		}
		c.Bars = append(c.Bars, Bar{Label: l, Value: values[i], Text: text(values[i]), Y: i * barHeight, W: w})
	}
	return c
}

func count(v float64) string { return fmt.Sprintf("%.0f", v) }

// Height is the SVG's height.
func (c Chart) Height() int { return len(c.Bars)*barHeight + 4 }

// activityPage: who read the department's datasets and what it read
// itself (the audit), and how its officers answer requests (the share
// workflow), as charts people would rather look at than read.
func (s *Server) activityPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	me := string(s.cfg.Client.Identity().Dept)
	lang := ss.lang
	data := flash(r, map[string]any{})
	since := time.Now().AddDate(0, 0, -30)
	audit, err := s.cfg.Client.Audit(ctx, adapters.AuditQuery{Since: since})
	if err != nil {
		data["Err"] = hubError(err)
	}
	// Accesses per day, by the department that read.
	perDay := map[string]map[string]float64{}
	delivered := map[string]float64{}
	mine := map[string]float64{} // my department's own accesses, per dataset
	for _, a := range audit {
		if a.Dept == me && a.Action != "publish" {
			mine[a.Dataset]++
		}
		if !strings.HasPrefix(a.Dataset, me+".") || a.Action == "publish" {
			continue
		}
		d := a.Time.Local().Format("01-02")
		if perDay[d] == nil {
			perDay[d] = map[string]float64{}
		}
		perDay[d][a.Dept]++
		delivered[a.Dataset] += float64(a.Records)
	}
	days := sortedKeys(perDay)
	var dayLabels []string
	var dayValues []float64
	for _, d := range days {
		var parts []string
		total := 0.0
		for _, dept := range sortedKeys(perDay[d]) {
			parts = append(parts, fmt.Sprintf("%s %.0f", dept, perDay[d][dept]))
			total += perDay[d][dept]
		}
		dayLabels = append(dayLabels, d+" ("+strings.Join(parts, ", ")+")")
		dayValues = append(dayValues, total)
	}
	var charts []Chart
	charts = append(charts, chart(msg(lang, "activity.perday"), "", dayLabels, dayValues, count))
	dsLabels := sortedKeys(delivered)
	var dsValues []float64
	for _, d := range dsLabels {
		dsValues = append(dsValues, delivered[d])
	}
	charts = append(charts, chart(msg(lang, "activity.records"), "", dsLabels, dsValues, count))
	myLabels := sortedKeys(mine)
	var myValues []float64
	for _, d := range myLabels {
		myValues = append(myValues, mine[d])
	}
	charts = append(charts, chart(msg(lang, "activity.mine"), "", myLabels, myValues, count))

	// Requests for the department's datasets: by outcome, and per month
	// the median time to a decision and how many went past their due date.
	reqs, err := s.cfg.Client.Requests(ctx, adapters.ShareQuery{})
	if err != nil {
		data["Err"] = hubError(err)
	}
	outcome := map[string]float64{}
	type month struct {
		waits   []time.Duration
		overdue float64
	}
	months := map[string]*month{}
	for _, q := range reqs {
		if !strings.HasPrefix(q.Dataset, me+".") {
			continue
		}
		outcome[q.Status]++
		m := q.RequestedAt.Local().Format("2006-01")
		if months[m] == nil {
			months[m] = &month{}
		}
		end := q.DecidedAt
		if end.IsZero() {
			end = time.Now()
		} else {
			months[m].waits = append(months[m].waits, end.Sub(q.RequestedAt))
		}
		if end.After(q.Deadline) {
			months[m].overdue++
		}
	}
	oLabels := sortedKeys(outcome)
	var oValues []float64
	for i, o := range oLabels {
		oValues = append(oValues, outcome[o])
		oLabels[i] = msg(lang, "status."+o)
	}
	charts = append(charts, chart(msg(lang, "activity.outcomes"), "", oLabels, oValues, count))
	mLabels := sortedKeys(months)
	var medians, overdue []float64
	for _, m := range mLabels {
		w := months[m].waits
		slices.Sort(w)
		med := 0.0
		if len(w) > 0 {
			med = w[len(w)/2].Hours()
		}
		medians = append(medians, med)
		overdue = append(overdue, months[m].overdue)
	}
	charts = append(charts, chart(msg(lang, "activity.median"), "h", mLabels, medians, func(v float64) string {
		if v < 1 {
			return fmt.Sprintf("%.0f min", v*60)
		}
		return fmt.Sprintf("%.1f h", v)
	}))
	charts = append(charts, chart(msg(lang, "activity.overdue"), "", mLabels, overdue, count))
	data["Charts"] = charts
	data["Accesses"] = len(audit)
	s.render(w, r, ss, "activity", data)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
