package trial

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// world is what the province simulation saw: every call and its
// outcome, every record published and received on each channel, every
// event posted, every violation of an invariant as it was seen. Its
// methods are safe for the actors' goroutines.
type world struct {
	t     testing.TB
	start time.Time

	mu         sync.Mutex
	violations map[string][]string // by invariant: what was seen, first few
	vcount     map[string]int
	published  map[int]time.Time // record id → its batch's acknowledgement
	pubBatches int
	// received, by channel ("grpc tax", "nats tax", ...): record id →
	// times received, and the first receipt.
	received  map[string]map[int]int
	firstSeen map[string]map[int]time.Time
	writes    map[string]int // acknowledged, by kind
	acked     []ackedWrite
	refusals  map[string]int // by operation and reason
	kills     []string
	stalls    map[string]time.Duration // longest call or wait, by client
	calls     map[string]int           // calls, by client
	// events the load made, by department/kind/id, and the deliveries
	// the webhook receiver had of each (delivery ids).
	events     map[eventKey]time.Time
	deliveries map[eventKey]map[string]bool
	posts      int
	// natsGaps are when a NATS connection of an integrator, or a NATS
	// server, was down: a record on core NATS in flight then is lost by
	// design (NATS delivery is at most once to the integrator).
	natsGaps []natsGap
}

// natsGap is an outage of channel's NATS connection ("": of a NATS
// server, every channel's); end zero: still out.
type natsGap struct {
	channel    string
	start, end time.Time
}

// ackedWrite is a write a node accepted: its kind, the entry it
// returned, and whether it is the only entry of its kind and subject a
// correct hub ever writes.
type ackedWrite struct {
	kind string
	seq  uint64
	once bool
}

type eventKey struct{ dept, kind, id string }

func newWorld(t testing.TB) *world {
	return &world{t: t, start: time.Now(),
		violations: map[string][]string{}, vcount: map[string]int{},
		published: map[int]time.Time{}, received: map[string]map[int]int{}, firstSeen: map[string]map[int]time.Time{},
		writes: map[string]int{}, refusals: map[string]int{}, stalls: map[string]time.Duration{}, calls: map[string]int{},
		events: map[eventKey]time.Time{}, deliveries: map[eventKey]map[string]bool{}}
}

// violate records a violation of invariant, logged as it is seen (the
// first few of each).
func (w *world) violate(invariant, format string, args ...any) {
	msg := fmt.Sprintf("%6.1fs ", time.Since(w.start).Seconds()) + fmt.Sprintf(format, args...)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.vcount[invariant]++
	if len(w.violations[invariant]) < 5 {
		w.violations[invariant] = append(w.violations[invariant], msg)
		w.t.Logf("VIOLATION %s: %s", invariant, msg)
	}
}

// took notes a client's call or wait.
func (w *world) took(client string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[client]++
	w.stalls[client] = max(w.stalls[client], d)
}

// wrote notes an acknowledged write.
func (w *world) wrote(kind string, seq uint64, once bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes[kind]++
	w.acked = append(w.acked, ackedWrite{kind: kind, seq: seq, once: once})
}

// transient says whether err is a node or process being away (a kill):
// the call may be made again.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return errors.Is(err, errUnavailable)
}

var errUnavailable = errors.New("unavailable")

var (
	numbers = regexp.MustCompile(`[0-9a-f]{6,}|[0-9]+`)
	quoted  = regexp.MustCompile(`"[^"]*"`)
)

// reason is err in a form that counts alike: its code and message with
// numbers and quoted names taken out.
func reason(err error) string {
	st, _ := status.FromError(err)
	msg := st.Message()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	msg = quoted.ReplaceAllString(numbers.ReplaceAllString(msg, "N"), `"…"`)
	if len(msg) > 110 {
		msg = msg[:110] + "…"
	}
	return st.Code().String() + ": " + msg
}

// refused notes a refusal of op. A transient one (a node away) is only
// counted; any other is a violation of invariant, since every call of the
// simulation depends only on writes acknowledged before it.
func (w *world) refused(invariant, op string, err error) {
	r := reason(err)
	if transient(err) {
		r = "unavailable (" + r + ")"
	}
	w.mu.Lock()
	w.refusals[op+" — "+r]++
	w.mu.Unlock()
	if !transient(err) && invariant != "" {
		w.violate(invariant, "%s refused: %v", op, err)
	}
}

// dep is an acknowledged write a call depends on.
type dep struct {
	what string // "department p3"
	seq  uint64
	at   time.Time // acknowledged
}

func depOn(what string, seq uint64) dep { return dep{what, seq, time.Now()} }

// refusedAfter is refused for a call that depends on d, made on another
// node than d: a violation says how long before d was acknowledged.
func (w *world) refusedAfter(invariant, op string, err error, d dep) {
	if transient(err) {
		w.refused(invariant, op, err)
		return
	}
	w.refused("", op, err)
	w.violate(invariant, "%s refused: %v — it depends on %s (entry %d), acknowledged by the other node %s before",
		op, err, d.what, d.seq, time.Since(d.at).Round(time.Millisecond))
}

// publishedBatch notes records acknowledged by a publish.
func (w *world) publishedBatch(ids []int, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pubBatches++
	for _, id := range ids {
		w.published[id] = at
	}
}

// receivedRecord notes a record received on channel.
func (w *world) receivedRecord(channel string, id int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.received[channel] == nil {
		w.received[channel], w.firstSeen[channel] = map[int]int{}, map[int]time.Time{}
	}
	if w.received[channel][id] == 0 {
		w.firstSeen[channel][id] = time.Now()
	}
	w.received[channel][id]++
}

// missing are the records acknowledged in [from, to] that channel has not
// received, leaving out those within a NATS gap when gaps is set.
func (w *world) missing(channel string, from, to time.Time, gaps bool) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for id, at := range w.published {
		if at.Before(from) || at.After(to) || w.received[channel][id] > 0 {
			continue
		}
		if gaps && w.inGap(channel, at) {
			continue
		}
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}

// excused counts, per channel, the NATS outages and the records
// acknowledged within them that the channel did not receive.
func (w *world) excused(channel string) (outages, records int) {
	for _, g := range w.natsGaps {
		if g.channel == "" || g.channel == channel {
			outages++
		}
	}
	for id, at := range w.published {
		if w.received[channel][id] == 0 && w.inGap(channel, at) {
			records++
		}
	}
	return outages, records
}

// natsGapSlack is how long before a NATS outage a record may have been
// acknowledged and still be in flight to the integrator through it.
const natsGapSlack = 3 * time.Second

func (w *world) inGap(channel string, at time.Time) bool {
	for _, g := range w.natsGaps {
		if g.channel != "" && g.channel != channel {
			continue
		}
		end := g.end
		if end.IsZero() {
			end = time.Now()
		}
		if !at.Before(g.start.Add(-natsGapSlack)) && !at.After(end.Add(natsGapSlack)) {
			return true
		}
	}
	return false
}

// gap opens a NATS gap of channel ("": a server's) and returns its index.
func (w *world) gap(channel string, at time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.natsGaps = append(w.natsGaps, natsGap{channel: channel, start: at})
	return len(w.natsGaps) - 1
}

// gapEnd closes gap i.
func (w *world) gapEnd(i int, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.natsGaps[i].end = at
}

// event notes an event the load made happen (an acknowledged write that
// posts one).
func (w *world) event(dept, kind, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events[eventKey{dept, kind, id}] = time.Now()
}

// posted notes a webhook delivery.
func (w *world) posted(k eventKey, delivery string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.posts++
	if w.deliveries[k] == nil {
		w.deliveries[k] = map[string]bool{}
	}
	w.deliveries[k][delivery] = true
}

// undelivered are the events made before `before` with no delivery.
func (w *world) undelivered(before time.Time) []eventKey {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []eventKey
	for k, at := range w.events {
		if at.Before(before) && len(w.deliveries[k]) == 0 {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b eventKey) int { return strings.Compare(a.dept+a.kind+a.id, b.dept+b.kind+b.id) })
	return out
}

func (w *world) kill(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kills = append(w.kills, fmt.Sprintf("%5.1fs %s", time.Since(w.start).Seconds(), what))
}

// report fails the test for each invariant violated, naming what was seen.
func (w *world) report() {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.vcount))
	for n := range w.vcount {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w.t.Errorf("invariant %s violated %d times, e.g.:\n\t%s", n, w.vcount[n], strings.Join(w.violations[n], "\n\t"))
	}
}
