package trial

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// finish checks what can only be checked once the load has stopped
// (stopping the steady consumers once they have been waited for), then
// prints the figures and fails the test for each invariant violated.
func (p *province) finish(stopConsumers func()) {
	d, w, t := p.d, p.w, p.d.t
	end := time.Now()
	for _, h := range d.hubs {
		h.ensure(t)
	}
	for _, pr := range d.providers {
		pr.ensure(t)
	}
	bg := context.Background()

	// Records: every one acknowledged reached tax, the grantee of the
	// whole run, on gRPC and on NATS (from a little after its
	// integrator connected: core NATS holds nothing for a subscriber not
	// yet there).
	p.reachWithin("records/grpc", "grpc tax", w.start, end, false, time.Minute)
	p.reachWithin("records/nats", "nats tax", p.runStart.Add(5*time.Second), end, true, time.Minute)
	stopConsumers()

	// Webhooks: every event the load made was posted.
	deadline := time.Now().Add(60 * time.Second)
	var missing []eventKey
	for {
		missing = w.undelivered(end)
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(missing) > 0 {
		var eg []string
		for _, k := range missing[:min(5, len(missing))] {
			eg = append(eg, k.dept+" "+k.kind+" "+k.id)
		}
		w.violate("webhooks", "%d of %d events never posted within 60s of the end (e.g. %s)", len(missing), len(w.events), strings.Join(eg, ", "))
	}
	w.mu.Lock()
	twice := 0
	for _, ds := range w.deliveries {
		twice += max(len(ds)-1, 0)
	}
	w.mu.Unlock()
	if twice > 0 {
		w.violate("webhooks", "%d events posted more than once (as separate deliveries)", twice)
	}

	// The nodes: the same signed head, the same listings, the ledger
	// verified through each.
	head := d.checkNodesAgree()
	var heads []int64
	testenv.WaitFor(t, 60*time.Second, "both nodes at one head", func() bool {
		heads = heads[:0]
		for _, c := range p.adminOn {
			lv, err := c.LedgerVerifier("")
			if err != nil {
				return false
			}
			tr, _, err := lv.Head(bg)
			if err != nil {
				return false
			}
			heads = append(heads, tr.N)
		}
		return heads[0] == heads[1]
	})
	var listings []map[string]string
	for _, c := range p.adminOn {
		l, err := p.checkListings(c)
		if err != nil {
			t.Fatalf("listings of %s: %v", c.Addr(), err)
		}
		listings = append(listings, l)
	}
	for _, k := range []string{"requests", "grants", "catalog", "subscriptions"} {
		if listings[0][k] != listings[1][k] {
			w.violate("listings/differ", "at head %d the nodes list different %s:\n%s\n--- and ---\n%s", heads[0], k, tail(listings[0][k], 600), tail(listings[1][k], 600))
		}
	}
	entries := 0
	for _, c := range p.adminOn {
		lv, err := c.LedgerVerifier("")
		if err != nil {
			t.Fatal(err)
		}
		vr, err := lv.Verify(bg, nil)
		if err != nil || vr.Mismatch != nil {
			w.violate("ledger", "ledger verify through %s: %v %v", c.Addr(), err, vr.Mismatch)
		}
		entries = int(vr.Entries)
	}

	// Writes: every acknowledged one in the ledger at its sequence, those
	// made once there once; every listed row made by an entry.
	ents, err := d.admin.Entries(bg, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[uint64]int{}
	count := map[string]int{}
	made := map[string]bool{}
	for i, e := range ents {
		bySeq[e.Seq] = i
		count[onceKey(e)]++
		if why := bodyFault(e); why != "" {
			w.violate("ledger/bodies", "entry %d (%s): %s", e.Seq, e.Kind, why)
		}
		switch e.Kind {
		case ledger.KindShareRequested:
			made["request "+string(shares.RequestIDAt(e.Seq))] = true
		case ledger.KindShareApproved, ledger.KindGrantCreated:
			made["grant "+string(shares.GrantIDAt(e.Seq))] = true
		case ledger.KindDatasetPublished:
			made["dataset "+e.Subject] = true
		}
	}
	also := map[string]string{ledger.KindShareRequested: ledger.KindGrantCreated}
	w.mu.Lock()
	acked := append([]ackedWrite(nil), w.acked...)
	w.mu.Unlock()
	for _, a := range acked {
		i, ok := bySeq[a.seq]
		if !ok || (ents[i].Kind != a.kind && ents[i].Kind != also[a.kind]) {
			got := "nothing"
			if ok {
				got = ents[i].Kind
			}
			w.violate("writes/lost", "an acknowledged %s at entry %d: the ledger holds %s there", a.kind, a.seq, got)
			continue
		}
		if k := onceKey(ents[i]); a.once && count[k] > 1 {
			w.violate("writes/twice", "%s is in the ledger %d times", k, count[k])
		}
	}
	p.checkMade(listings[0], made)

	p.checkGrowth()
	for _, pr := range append(append([]*proc(nil), d.hubs...), d.providers...) {
		if n := pr.died.Load(); n > 0 {
			w.violate("nodes/exited", "%s exited on its own %d times", pr.name, n)
		}
	}
	p.figures(head, entries)
	w.report()
}

// onceKey is what an entry is about: its kind, its subject and the
// request, grant or dispute its body names. A write made once has one
// entry of its key.
func onceKey(e adapters.Entry) string {
	var ent struct {
		Body struct{ Request, Grant, Dispute string }
	}
	_ = json.Unmarshal(e.Raw, &ent)
	return strings.TrimSpace(strings.Join([]string{e.Kind, e.Subject, ent.Body.Request, ent.Body.Grant, ent.Body.Dispute}, " "))
}

// reachWithin waits until every record acknowledged in [from, to] has
// reached channel, leaving out NATS gaps if gaps, else notes the missing
// ones as a violation of invariant.
func (p *province) reachWithin(invariant, channel string, from, to time.Time, gaps bool, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for {
		miss := p.w.missing(channel, from, to, gaps)
		if len(miss) == 0 {
			return
		}
		if time.Now().After(deadline) {
			p.w.violate(invariant, "%s: %d records acknowledged between %.1fs and %.1fs never arrived within %s (e.g. %v)",
				channel, len(miss), from.Sub(p.w.start).Seconds(), to.Sub(p.w.start).Seconds(), wait, miss[:min(5, len(miss))])
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkMade: every request, grant and dataset a node lists was made by
// an entry of the ledger.
func (p *province) checkMade(l map[string]string, made map[string]bool) {
	for _, k := range []struct{ listing, what, key string }{{"requests", "request", `"id":"`}, {"grants", "grant", `"id":"`}, {"catalog", "dataset", `"id":"`}} {
		for _, row := range strings.Split(l[k.listing], "\n") {
			_, rest, ok := strings.Cut(row, k.key)
			if !ok {
				continue
			}
			id, _, _ := strings.Cut(rest, `"`)
			if !made[k.what+" "+id] {
				p.w.violate("listings/unmade", "the nodes list %s %s, which no entry made", k.what, id)
			}
		}
	}
}

// growthWarmup is how long after a node (re)starts its figures are left
// out of the growth check.
func (p *province) growthWarmup() time.Duration { return max(15*time.Second, p.dur/8) }

// checkGrowth compares, per node, the median goroutines and heap of the
// first third of its samples since it last started (after a warm-up)
// with those of the last third.
func (p *province) checkGrowth() {
	for i, h := range p.d.hubs {
		var ss []sample
		for _, s := range p.scrapes[i] {
			if s.since.Equal(h.since()) && s.at.Sub(s.since) > p.growthWarmup() {
				ss = append(ss, s)
			}
		}
		if len(ss) < 9 {
			p.d.t.Logf("%s: %d samples after its warm-up, too few to judge growth", h.name, len(ss))
			continue
		}
		third := len(ss) / 3
		med := func(part []sample, f func(sample) float64) float64 {
			v := make([]float64, len(part))
			for i, s := range part {
				v[i] = f(s)
			}
			sort.Float64s(v)
			return v[len(v)/2]
		}
		gr := func(s sample) float64 { return s.goroutines }
		hp := func(s sample) float64 { return s.heap }
		g0, g1 := med(ss[:third], gr), med(ss[len(ss)-third:], gr)
		h0, h1 := med(ss[:third], hp), med(ss[len(ss)-third:], hp)
		p.steady = append(p.steady, fmt.Sprintf("%s over %s of steady load: goroutines %.0f → %.0f, heap in use %s → %s (medians of the first and last thirds)",
			h.name, ss[len(ss)-1].at.Sub(ss[0].at).Round(time.Second), g0, g1, mib(h0), mib(h1)))
		if g1 > g0*1.25+40 {
			p.w.violate("nodes/growth", "%s: goroutines grew from %.0f to %.0f over %s of steady load", h.name, g0, g1, ss[len(ss)-1].at.Sub(ss[0].at).Round(time.Second))
		}
		if h1 > h0*1.5+32<<20 {
			p.w.violate("nodes/growth", "%s: heap in use grew from %s to %s over %s of steady load", h.name, mib(h0), mib(h1), ss[len(ss)-1].at.Sub(ss[0].at).Round(time.Second))
		}
	}
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }

// figures logs what the run did; with -v also as a Markdown table for the
// README.
func (p *province) figures(head string, entries int) {
	w, t := p.w, p.d.t
	w.mu.Lock()
	defer w.mu.Unlock()
	var rows [][2]string
	add := func(k, v string) { rows = append(rows, [2]string{k, v}) }
	add("duration, sweeps", fmt.Sprintf("%s, every %s", p.dur, p.sweep))
	add("records published (acknowledged)", fmt.Sprintf("%d in %d batches", len(w.published), w.pubBatches))
	channels := make([]string, 0, len(w.received))
	for c := range w.received {
		channels = append(channels, c)
	}
	sort.Strings(channels)
	for _, c := range channels {
		total, late := 0, time.Duration(0)
		for id, n := range w.received[c] {
			total += n
			if at, ok := w.published[id]; ok {
				late = max(late, w.firstSeen[c][id].Sub(at))
			}
		}
		v := fmt.Sprintf("%d records (%d deliveries), slowest %s after its publish", len(w.received[c]), total, late.Round(time.Millisecond))
		if strings.HasPrefix(c, "nats ") {
			o, r := w.excused(c)
			v += fmt.Sprintf("; %d NATS outages (its connection's, a server's), %d records acknowledged within them not received (core NATS: not counted as lost)", o, r)
		}
		add("received on "+c, v)
	}
	add("webhook events", fmt.Sprintf("%d made, %d posts received", len(w.events), w.posts))
	var kinds []string
	nw := 0
	for k, n := range w.writes {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		nw += n
	}
	sort.Strings(kinds)
	add("writes acknowledged", fmt.Sprintf("%d: %s", nw, strings.Join(kinds, ", ")))
	var refs []string
	for r, n := range w.refusals {
		refs = append(refs, fmt.Sprintf("%d× %s", n, r))
	}
	sort.Strings(refs)
	add("refusals", fmt.Sprintf("%d kinds", len(refs)))
	for _, r := range refs {
		add("", r)
	}
	add("kills", strings.Join(w.kills, "; "))
	var clients []string
	for c := range w.stalls {
		clients = append(clients, c)
	}
	sort.Strings(clients)
	for _, c := range clients {
		add("longest call of "+c, fmt.Sprintf("%s (%d calls)", w.stalls[c].Round(time.Millisecond), w.calls[c]))
	}
	for i, h := range p.d.hubs {
		ss := p.scrapes[i]
		if len(ss) == 0 {
			continue
		}
		a, b := ss[0], ss[len(ss)-1]
		add(h.name+" goroutines, heap, RSS", fmt.Sprintf("start %.0f, %s, %s; end %.0f, %s, %s", a.goroutines, mib(a.heap), mib(a.rssB), b.goroutines, mib(b.heap), mib(b.rssB)))
	}
	for _, s := range p.steady {
		add("growth", s)
	}
	add("ledger", fmt.Sprintf("%d entries, nodes agree at %s, verified", entries, head))
	for _, r := range rows {
		t.Logf("%-40s %s", r[0], r[1])
	}
	if testing.Verbose() {
		var b strings.Builder
		b.WriteString("\n| | |\n|---|---|\n")
		for _, r := range rows {
			fmt.Fprintf(&b, "| %s | %s |\n", r[0], strings.ReplaceAll(r[1], "|", `\|`))
		}
		t.Log(b.String())
	}
}

// bodyFault says what is wrong with an entry as a department reads it for
// years: a body holding what the apply fills in (a zero time, a sequence
// 0), or a summary (`ledger log`) printing Go formatting or zero times.
func bodyFault(e adapters.Entry) string {
	var ent struct {
		Body json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(e.Raw, &ent); err != nil {
		return "not JSON: " + err.Error()
	}
	for _, bad := range []string{`"0001-01-01T00:00:00Z"`, `"seq":0`} {
		if bytes.Contains(ent.Body, []byte(bad)) {
			return "its body holds " + bad
		}
	}
	sum := adapters.Summary(e)
	for _, bad := range []string{"map[", "0001-01-01", "&{", "<nil>", "%!"} {
		if strings.Contains(sum, bad) {
			return fmt.Sprintf("its summary %q holds %s", sum, bad)
		}
	}
	return ""
}
