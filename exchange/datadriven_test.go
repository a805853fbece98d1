package exchange

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// memLog is a control-plane log in memory, with the same contract as the
// JetStream one: append only on the expected last entry, ordered follow.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	grew    chan struct{} // closed and replaced on every append
}

var _ Log = (*memLog)(nil)

func newMemLog() *memLog { return &memLog{grew: make(chan struct{})} }

func (l *memLog) Append(_ context.Context, raws [][]byte, after uint64) (uint64, error) {
	if len(raws) == 0 {
		return after, nil // as bus.LedgerLog: nothing sent, nothing checked
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if uint64(len(l.entries)) != after {
		return after, ledger.ErrConflict
	}
	l.entries = append(l.entries, raws...)
	close(l.grew)
	l.grew = make(chan struct{})
	return uint64(len(l.entries)), nil
}

func (l *memLog) LastSeq(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.entries)), nil
}

func (l *memLog) Follow(ctx context.Context, from uint64, out chan<- ledger.Message) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		next := max(from, 1)
		for {
			l.mu.Lock()
			var raw []byte
			if next <= uint64(len(l.entries)) {
				raw = l.entries[next-1]
			}
			grew := l.grew
			l.mu.Unlock()
			if raw == nil {
				select {
				case <-grew:
					continue
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- ledger.Message{Seq: next, Raw: raw}:
				next++
			case <-ctx.Done():
				return
			}
		}
	}()
	return cancel, nil
}

// script runs the control plane's rules from a text script, with no hub:
// a store in memory, a log in memory, a clock the script moves.
type script struct {
	t   *testing.T
	cp  *ControlPlane
	log *memLog
	st  *store.Store
	now time.Time
	mu  sync.Mutex
	ctx context.Context
}

func (s *script) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// node opens a control plane on the script's log: a second one is a
// second hub node sharing the log.
func (s *script) node(st *store.Store) *ControlPlane {
	cp, err := Open(s.ctx, Config{Store: st, Log: s.log, Now: s.clock, SweepInterval: -1, ResponseDays: 10, MaxGrantDays: 365})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(cp.Close)
	return cp
}

func newScript(t *testing.T) *script {
	s := &script{t: t, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), ctx: context.Background()}
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s.log = newMemLog()
	s.cp = s.node(st)
	if err := s.cp.Init(s.ctx, HubInit{CASHA256: "ca", VerifierKey: "key"}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestShareRules runs every script under testdata/shares: share requests,
// decisions, grants, expiry, revocation and retirement, as entries and
// state, with no hub started. Rewrite the expectations after a deliberate
// change with: go test ./exchange/ -run TestShareRules -rewrite
func TestShareRules(t *testing.T) {
	datadriven.Walk(t, "testdata/shares", func(t *testing.T, path string) {
		s := newScript(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return s.run(d)
		})
	})
}

func (s *script) arg(d *datadriven.TestData, key string) string {
	for _, a := range d.CmdArgs {
		if a.Key == key {
			return strings.Join(a.Vals, ",")
		}
	}
	return ""
}

func (s *script) list(d *datadriven.TestData, key string) []string {
	v := s.arg(d, key)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func (s *script) num(d *datadriven.TestData, key string) int {
	var n int
	if v := s.arg(d, key); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			d.Fatalf(s.t, "%s=%q: %v", key, v, err)
		}
	}
	return n
}

// actor is by=<dept> (an officer), by=<dept>/system, or by=admin.
func (s *script) actor(d *datadriven.TestData) vocab.Identity {
	by := s.arg(d, "by")
	if by == "admin" || by == "" {
		return vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "admin"}
	}
	dept, role, _ := strings.Cut(by, "/")
	if role == "" {
		role = "officer"
	}
	return vocab.Identity{Dept: catalog.DeptID(dept), Role: vocab.Role(role), Name: "n"}
}

// run executes one command and describes the outcome: what was appended
// and the state it left, or the refusal with its kind.
func (s *script) run(d *datadriven.TestData) string {
	before := s.cp.Applied()
	out, err := s.exec(d)
	if err != nil {
		return fmt.Sprintf("refused (%s): %v\n", vocab.KindOf(err), err)
	}
	var b strings.Builder
	b.WriteString(out)
	if d.Cmd != "log" && d.Cmd != "state" && d.Cmd != "access" && d.Cmd != "race" { // race: which decision lands varies
		b.WriteString(s.entriesSince(before))
	}
	return b.String()
}

func (s *script) entriesSince(seq uint64) string {
	es, _, err := s.cp.Entries(seq, 1000)
	if err != nil {
		s.t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		if e.Seq <= seq {
			continue
		}
		actor := strings.TrimPrefix(e.Actor, "spiffe://xhub/dept/")
		fmt.Fprintf(&b, "entry %d: %s %s by %s\n", e.Seq, e.Kind, e.Subject, actor)
	}
	return b.String()
}

const scriptSchema = `{"type":"object","properties":{"id":{"type":"integer"},"ward":{"type":"string"},"age":{"type":"integer"},"name":{"type":"string"}},"required":["id"]}`

func (s *script) exec(d *datadriven.TestData) (string, error) {
	ctx := s.ctx
	switch d.Cmd {
	case "dept":
		for _, id := range s.list(d, "add") {
			if _, _, err := s.cp.AddDepartment(ctx, s.actor(d), catalog.DeptID(id), "Department "+id); err != nil {
				return "", err
			}
		}
		return "", nil
	case "dataset":
		id := catalog.DatasetID(s.arg(d, "id"))
		if _, _, _, err := s.cp.RegisterSchema(ctx, s.actor(d), id, []byte(scriptSchema), ""); err != nil {
			return "", err
		}
		share := catalog.ShareType(s.arg(d, "share"))
		_, _, err := s.cp.PublishDataset(ctx, s.actor(d), catalog.Published{ID: id, Title: string(id), ShareType: share, SchemaSubject: string(id)})
		return "", err
	case "retire":
		_, _, err := s.cp.RetireDataset(ctx, s.actor(d), catalog.DatasetID(s.arg(d, "dataset")), s.arg(d, "reason"))
		return "", err
	case "request":
		purpose := s.arg(d, "purpose")
		if purpose == "" && !d.HasArg("nopurpose") {
			purpose = "statistics"
		}
		r, g, _, err := s.cp.RequestShare(ctx, s.actor(d), shares.Input{
			Dataset: catalog.DatasetID(s.arg(d, "dataset")), Fields: s.list(d, "fields"), Purpose: purpose, Days: s.num(d, "days"),
		})
		if err != nil {
			return "", err
		}
		out := describeRequest(r, s.clock())
		if g != nil {
			out += describeGrant(*g, s.clock())
		}
		return out, nil
	case "approve":
		r, g, _, err := s.cp.Approve(ctx, s.actor(d), shares.Decision{Request: shares.RequestID(s.arg(d, "req")), Fields: s.list(d, "fields"), Days: s.num(d, "days"), Reason: s.arg(d, "reason")})
		if err != nil {
			return "", err
		}
		return describeRequest(r, s.clock()) + describeGrant(g, s.clock()), nil
	case "reject":
		r, _, err := s.cp.Reject(ctx, s.actor(d), shares.Decision{Request: shares.RequestID(s.arg(d, "req")), Reason: s.arg(d, "reason")})
		if err != nil {
			return "", err
		}
		return describeRequest(r, s.clock()), nil
	case "withdraw":
		r, _, err := s.cp.Withdraw(ctx, s.actor(d), shares.RequestID(s.arg(d, "req")))
		if err != nil {
			return "", err
		}
		return describeRequest(r, s.clock()), nil
	case "revoke":
		g, _, err := s.cp.RevokeGrant(ctx, s.actor(d), shares.GrantID(s.arg(d, "grant")), s.arg(d, "reason"))
		if err != nil {
			return "", err
		}
		return describeGrant(g, s.clock()), nil
	case "clock":
		dur, err := time.ParseDuration(s.arg(d, "advance"))
		if err != nil {
			d.Fatalf(s.t, "advance: %v", err)
		}
		s.mu.Lock()
		s.now = s.now.Add(dur)
		s.mu.Unlock()
		return fmt.Sprintf("now %s\n", s.clock().Format(time.RFC3339)), nil
	case "sweep":
		s.cp.sweep(ctx)
		return "", nil
	case "access":
		a, err := s.cp.CheckAccess(catalog.DeptID(s.arg(d, "dept")), catalog.DatasetID(s.arg(d, "dataset")), s.clock())
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("may read %s until %s (grants %s)\n", strings.Join(a.Fields, ","), a.ExpiresAt.Format(time.RFC3339), joinIDs(a.Grants)), nil
	case "race":
		return s.race(d)
	case "state":
		return s.state(), nil
	case "log":
		return s.entriesSince(0), nil
	}
	d.Fatalf(s.t, "unknown command %q", d.Cmd)
	return "", nil
}

func joinIDs[T ~string](ids []T) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

func describeRequest(r shares.Request, now time.Time) string {
	out := fmt.Sprintf("request %s: %s %s for %s", r.ID, r.Status, r.Dataset, r.Requester)
	if len(r.Fields) > 0 {
		out += " fields " + strings.Join(r.Fields, ",")
	}
	if r.Reason != "" {
		out += fmt.Sprintf(" (%s)", r.Reason)
	}
	if r.Grant != "" {
		out += " → " + string(r.Grant)
	}
	if r.Overdue(now) {
		out += " OVERDUE"
	}
	return out + "\n"
}

func describeGrant(g shares.Grant, now time.Time) string {
	out := fmt.Sprintf("grant %s: %s %s to %s fields %s until %s", g.ID, g.Status, g.Dataset, g.Grantee, strings.Join(g.Fields, ","), g.ExpiresAt.Format("2006-01-02"))
	if g.Status == shares.GrantActive && !g.ActiveAt(now) {
		out += " (past its expiry)"
	}
	if g.Reason != "" {
		out += fmt.Sprintf(" (%s)", g.Reason)
	}
	return out + "\n"
}

// state lists every request and grant as the admin sees them.
func (s *script) state() string {
	admin := vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "admin"}
	now := s.clock()
	rs, _, err := s.cp.ListRequests(ShareFilter{Viewer: admin}, "", 1000, now)
	if err != nil {
		s.t.Fatal(err)
	}
	gs, _, err := s.cp.ListGrants(ShareFilter{Viewer: admin}, "", 1000, now)
	if err != nil {
		s.t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(describeRequest(r, now))
	}
	for _, g := range gs {
		b.WriteString(describeGrant(g, now))
	}
	if b.Len() == 0 {
		return "no requests, no grants\n"
	}
	return b.String()
}

// race decides one request on two nodes at once (approve on this one,
// reject on a second node sharing the log): exactly one decision lands,
// the other is refused after re-validating on the new state.
func (s *script) race(d *datadriven.TestData) (string, error) {
	st, err := store.OpenMemory()
	if err != nil {
		return "", err
	}
	s.t.Cleanup(func() { st.Close() })
	other := s.node(st)
	if err := other.CatchUp(s.ctx); err != nil {
		return "", err
	}
	req := shares.RequestID(s.arg(d, "req"))
	owner := s.actor(d)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _, _, errs[0] = s.cp.Approve(s.ctx, owner, shares.Decision{Request: req}) }()
	go func() {
		defer wg.Done()
		_, _, errs[1] = other.Reject(s.ctx, owner, shares.Decision{Request: req, Reason: "race"})
	}()
	wg.Wait()
	if err := s.cp.CatchUp(s.ctx); err != nil {
		return "", err
	}
	landed, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			landed++
		case vocab.KindOf(err) == vocab.KindPrecondition && strings.Contains(err.Error(), "already"):
			refused++
		default:
			return "", err
		}
	}
	r, err := s.cp.Request(req)
	if err != nil {
		return "", err
	}
	decided := "decided once"
	if r.Status == shares.RequestPending {
		decided = "NOT DECIDED"
	}
	return fmt.Sprintf("%d decision landed, %d refused as already decided; request %s %s\n", landed, refused, req, decided), nil
}
