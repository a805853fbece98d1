package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/secretfile"
)

func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 15*time.Second)
}

// hubError is what the hub said, as an officer reads it.
func hubError(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// back redirects to path with a flash message (ok or error) in the query.
func back(w http.ResponseWriter, r *http.Request, path, key, text string) {
	http.Redirect(w, r, path+"?"+key+"="+url.QueryEscape(text), http.StatusSeeOther)
}

func flash(r *http.Request, data map[string]any) map[string]any {
	data["OK"] = r.URL.Query().Get("ok")
	data["Err"] = r.URL.Query().Get("err")
	return data
}

func (s *Server) catalogPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	q := r.URL.Query()
	all, err := s.cfg.Client.Datasets(ctx, adapters.DatasetQuery{Search: q.Get("q"), Dept: q.Get("dept"), ShareType: q.Get("share")})
	data := flash(r, map[string]any{"Datasets": all, "Q": q.Get("q"), "Dept": q.Get("dept"), "Share": q.Get("share")})
	if err != nil {
		data["Err"] = hubError(err)
	}
	if depts, err := s.cfg.Client.Departments(ctx); err == nil {
		data["Depts"] = depts
		names := map[string]string{}
		for _, d := range depts {
			names[d.ID] = d.Name
		}
		data["Names"] = names
	}
	s.render(w, r, ss, "catalog", data)
}

func (s *Server) datasetPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	d, err := s.cfg.Client.Dataset(ctx, r.PathValue("id"))
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		s.render(w, r, ss, "message", map[string]any{"Title": r.PathValue("id"), "Text": hubError(err)})
		return
	}
	data := flash(r, map[string]any{"D": d, "Mine": d.Owner == string(s.cfg.Client.Identity().Dept)})
	if sc, err := s.cfg.Client.Schema(ctx, d.SchemaSubject, d.SchemaVersion); err == nil {
		data["Compat"] = sc.Compat
	}
	if vs, err := s.cfg.Client.SchemaVersions(ctx, d.SchemaSubject); err == nil {
		var nums []string
		for _, v := range vs {
			nums = append(nums, strconv.Itoa(v.Version))
		}
		data["Versions"] = strings.Join(nums, ", ")
	}
	if data["Mine"] == true {
		if gs, err := s.cfg.Client.Grants(ctx, adapters.ShareQuery{Dataset: d.ID, Status: "active"}); err == nil {
			data["Grants"] = gs
		}
	}
	s.render(w, r, ss, "dataset", data)
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	days, _ := strconv.Atoi(r.PostForm.Get("days"))
	dec, err := s.cfg.Client.RequestShare(ctx, id, r.PostForm["field"], r.PostForm.Get("purpose"), days)
	if err != nil {
		back(w, r, "/dataset/"+url.PathEscape(id), "err", hubError(err))
		return
	}
	text := fmt.Sprintf(msg(ss.lang, "apply.pending"), dec.Request.ID)
	if dec.Grant != nil {
		text = fmt.Sprintf(msg(ss.lang, "apply.granted"), dec.Grant.ID)
	}
	back(w, r, "/dataset/"+url.PathEscape(id), "ok", text)
}

func (s *Server) inboxData(r *http.Request) map[string]any {
	ctx, cancel := s.ctx(r)
	defer cancel()
	reqs, err := s.cfg.Client.Inbox(ctx)
	data := flash(r, map[string]any{"Requests": reqs})
	if err != nil {
		data["Err"] = hubError(err)
	}
	// Each request's dataset fields, for narrowing on approval.
	fields := map[string][]string{}
	for _, q := range reqs {
		if _, ok := fields[q.Dataset]; ok {
			continue
		}
		if d, err := s.cfg.Client.Dataset(ctx, q.Dataset); err == nil {
			for _, f := range d.Fields {
				fields[q.Dataset] = append(fields[q.Dataset], f.Name)
			}
		}
	}
	type row struct {
		adapters.ShareRequest
		Choices []choice
	}
	var rows []row
	for _, q := range reqs {
		want := q.Fields
		if len(want) == 0 {
			want = fields[q.Dataset]
		}
		var cs []choice
		for _, f := range want {
			cs = append(cs, choice{Name: f, Checked: true})
		}
		rows = append(rows, row{q, cs})
	}
	data["Rows"] = rows
	me := string(s.cfg.Client.Identity().Dept)
	if ds, err := s.cfg.Client.Disputes(ctx, "", "open"); err == nil {
		var mine []adapters.Dispute
		for _, d := range ds {
			if strings.HasPrefix(d.Dataset, me+".") {
				mine = append(mine, d)
			}
		}
		data["Disputes"] = mine
	}
	return data
}

type choice struct {
	Name    string
	Checked bool
}

func (s *Server) inboxPage(w http.ResponseWriter, r *http.Request, ss *session) {
	s.render(w, r, ss, "inbox", s.inboxData(r))
}

// inboxTable is the inbox's table alone, fetched by the page when an event
// arrives (no reload).
func (s *Server) inboxTable(w http.ResponseWriter, r *http.Request, ss *session) {
	s.render(w, r, ss, "inbox_table", s.inboxData(r))
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	days, _ := strconv.Atoi(r.PostForm.Get("days"))
	dec, err := s.cfg.Client.Approve(ctx, r.PathValue("id"), r.PostForm["field"], days, r.PostForm.Get("reason"))
	if err != nil {
		back(w, r, "/inbox", "err", hubError(err))
		return
	}
	back(w, r, "/inbox", "ok", fmt.Sprintf(msg(ss.lang, "approve.done"), dec.Request.ID, dec.Grant.ID, strings.Join(dec.Grant.Fields, ", ")))
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	dec, err := s.cfg.Client.Reject(ctx, r.PathValue("id"), r.PostForm.Get("reason"))
	if err != nil {
		back(w, r, "/inbox", "err", hubError(err))
		return
	}
	back(w, r, "/inbox", "ok", fmt.Sprintf(msg(ss.lang, "reject.done"), dec.Request.ID))
}

// events streams the department's events to the page (server-sent
// events): the inbox refreshes its table when one arrives.
func (s *Server) events(w http.ResponseWriter, r *http.Request, ss *session) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	err := s.cfg.Client.WatchInbox(r.Context(), func() {
		fmt.Fprint(w, ": ready\n\n")
		fl.Flush()
	}, func(e adapters.InboxEvent) error {
		_, err := fmt.Fprintf(w, "event: inbox\ndata: %s %s\n\n", e.Kind, e.ID)
		fl.Flush()
		return err
	})
	if err != nil && r.Context().Err() == nil {
		fmt.Fprintf(w, "event: failed\ndata: %s\n\n", strings.ReplaceAll(hubError(err), "\n", " "))
		fl.Flush()
	}
}

func (s *Server) grantsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	me := string(s.cfg.Client.Identity().Dept)
	all, err := s.cfg.Client.Grants(ctx, adapters.ShareQuery{})
	var given, received []adapters.Grant
	for _, g := range all {
		if strings.HasPrefix(g.Dataset, me+".") {
			given = append(given, g)
		}
		if g.Grantee == me {
			received = append(received, g)
		}
	}
	data := flash(r, map[string]any{"Given": given, "Received": received})
	if err != nil {
		data["Err"] = hubError(err)
	}
	s.render(w, r, ss, "grants", data)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	dec, err := s.cfg.Client.RevokeGrant(ctx, r.PathValue("id"), r.PostForm.Get("reason"))
	if err != nil {
		back(w, r, "/grants", "err", hubError(err))
		return
	}
	back(w, r, "/grants", "ok", fmt.Sprintf(msg(ss.lang, "revoke.done"), dec.Grant.ID))
}

// entryPage shows one entry whole, with its inclusion proof checked here.
func (s *Server) entryPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	data := map[string]any{"Seq": r.PathValue("seq")}
	if err != nil || seq == 0 {
		w.WriteHeader(http.StatusBadRequest)
		s.render(w, r, ss, "message", map[string]any{"Title": r.PathValue("seq"), "Text": "?"})
		return
	}
	lv, err := s.cfg.Client.LedgerVerifier(s.cfg.LedgerKey)
	if err == nil {
		var p adapters.Proof
		if p, err = lv.InclusionProof(ctx, seq); err == nil {
			body, _ := p.Entry.Body()
			pretty, _ := json.MarshalIndent(body, "", "  ")
			data["E"], data["Summary"], data["Body"] = p.Entry, adapters.Summary(p.Entry), string(pretty)
			data["HeadSize"], data["LeafHash"], data["PathLen"] = p.Head.N, p.LeafHash.String(), len(p.AuditPath)
		}
	}
	if err != nil {
		data["ProofErr"] = hubError(err)
	}
	s.render(w, r, ss, "entry", data)
}

func (s *Server) ledgerPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	data := flash(r, map[string]any{})
	if lv, err := s.cfg.Client.LedgerVerifier(s.cfg.LedgerKey); err != nil {
		data["HeadErr"] = hubError(err)
	} else if head, note, err := lv.Head(ctx); err != nil {
		data["HeadErr"] = hubError(err)
	} else {
		data["HeadSize"], data["HeadRoot"] = head.N, head.Hash.String()
		// The head saved at an earlier visit: the ledger must extend it.
		if s.cfg.HeadFile != "" {
			if saved, err := os.ReadFile(s.cfg.HeadFile); err == nil {
				if old, _, err := lv.Consistency(ctx, saved); err != nil {
					data["ConsistencyErr"] = hubError(err)
				} else {
					data["ConsistentFrom"] = old.N
				}
			}
			if data["ConsistencyErr"] == nil {
				_ = os.MkdirAll(filepath.Dir(s.cfg.HeadFile), 0o700)
				_ = secretfile.Replace(s.cfg.HeadFile, note)
			}
		}
	}
	es, err := s.cfg.Client.Entries(ctx, 0, r.URL.Query().Get("dataset"))
	if err != nil {
		data["Err"] = hubError(err)
	}
	type row struct {
		adapters.Entry
		Summary string
	}
	names := map[string]string{}
	if depts, err := s.cfg.Client.Departments(ctx); err == nil {
		for _, d := range depts {
			names[d.ID] = d.Name
		}
	}
	wd := newWords(ss.lang, names)
	var rows []row
	for _, e := range es {
		rows = append(rows, row{e, wd.say(e)})
	}
	slices.Reverse(rows) // newest first
	if len(rows) > 200 {
		rows = rows[:200]
	}
	data["Entries"] = rows
	s.render(w, r, ss, "ledger", data)
}

func (s *Server) disputesPage(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	me := string(s.cfg.Client.Identity().Dept)
	ds, err := s.cfg.Client.Disputes(ctx, "", r.URL.Query().Get("status"))
	data := flash(r, map[string]any{"Disputes": ds, "MyDept": me})
	if err != nil {
		data["Err"] = hubError(err)
	}
	// The datasets this department may dispute: those it holds a grant on.
	if gs, err := s.cfg.Client.Grants(ctx, adapters.ShareQuery{Grantee: me, Status: "active"}); err == nil {
		seen := map[string]bool{}
		var held []adapters.Grant
		for _, g := range gs {
			if !seen[g.Dataset] {
				seen[g.Dataset] = true
				held = append(held, g)
			}
		}
		data["Held"] = held
	}
	s.render(w, r, ss, "disputes", data)
}

func (s *Server) openDispute(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	f := r.PostForm
	d, err := s.cfg.Client.OpenDispute(ctx, adapters.DisputeSpec{Dataset: f.Get("dataset"), Reason: f.Get("reason"), RecordKey: f.Get("record_key"), Field: f.Get("field")})
	if err != nil {
		back(w, r, "/disputes", "err", hubError(err))
		return
	}
	back(w, r, "/disputes", "ok", fmt.Sprintf(msg(ss.lang, "dispute.opened"), d.ID, d.Deadline.Local().Format(time.DateOnly)))
}

func (s *Server) resolveDispute(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	d, err := s.cfg.Client.ResolveDispute(ctx, r.PathValue("id"), r.PostForm.Get("outcome"), r.PostForm.Get("reason"))
	if err != nil {
		back(w, r, "/disputes", "err", hubError(err))
		return
	}
	back(w, r, "/disputes", "ok", fmt.Sprintf(msg(ss.lang, "dispute.resolved"), d.ID, msg(ss.lang, "outcome."+d.Status)))
}
