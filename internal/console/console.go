// Package console owns the officers' web console: server-rendered pages
// (catalog, dataset, inbox, grants, ledger) served on loopback by
// `xhub console`, acting with the officer's own identity through the
// SDK's client — no new way into the hub, the hub decides everything. It
// owns the console's session (a one-time token in the printed URL,
// exchanged for an HttpOnly cookie on a host name of its own), CSRF
// tokens on every form, a strict Content-Security-Policy, and the zh-CN
// and English message catalogs.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/xhub-gov/xhub/adapters"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Config configures a console.
type Config struct {
	Client    *adapters.Client // the officer's connection (required)
	LedgerKey string           // "": the one pinned in the creds file
	// HeadFile keeps the last signed head this console verified, so the
	// next visit proves the ledger only grew since ("": not kept).
	HeadFile string
	Log      *slog.Logger
}

// Server is one officer's console.
type Server struct {
	cfg   Config
	tmpl  map[string]*template.Template
	mux   *http.ServeMux
	token string // the one-time login token; "" once used
	name  string // this console's own host name, <random>.localhost
	uid   int    // the only user served: the one running the console

	mu       sync.Mutex
	sessions map[string]*session
	addr     string // host:port served, for the Host check
}

type session struct {
	csrf string
	lang string
}

// cookieName names the session cookie. Browsers keep cookies per host
// name, not per port: a cookie set by a console on 127.0.0.1 (or
// localhost) goes to every server on any port of that name, another
// user's among them. So each console has a host name of its own,
// <random>.localhost (browsers resolve *.localhost to loopback), answers
// on no other, and its host-only cookie goes to no other server.
const cookieName = "xhub_console"

// New builds the console.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("console: a client is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, sessions: map[string]*session{}, token: randomHex(32), tmpl: map[string]*template.Template{},
		name: randomHex(16) + ".localhost", uid: os.Getuid()}
	for _, lang := range []string{"en", "zh"} {
		layout := map[string]string{"en": "2 Jan 2006", "zh": "2006年1月2日"}[lang]
		funcs := template.FuncMap{"t": func(lang, key string) string { return msg(lang, key) }, "join": strings.Join,
			"day":  func(t time.Time) string { return t.Local().Format(layout) },
			"list": func(xs ...string) []string { return xs },
			"add":  func(a, b int) int { return a + b }}
		for _, page := range []string{"catalog", "dataset", "inbox", "inbox_table", "grants", "disputes", "activity", "ledger", "entry", "message"} {
			files := []string{"templates/layout.html", "templates/" + page + ".html"}
			if page == "inbox" {
				files = append(files, "templates/inbox_table.html")
			}
			t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, files...)
			if err != nil {
				return nil, fmt.Errorf("console: template %s: %w", page, err)
			}
			s.tmpl[lang+"/"+page] = t
		}
	}
	static, _ := fs.Sub(assets, "static")
	s.mux = http.NewServeMux()
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.login)
	s.mux.HandleFunc("GET /{$}", s.authed(s.catalogPage))
	s.mux.HandleFunc("GET /dataset/{id}", s.authed(s.datasetPage))
	s.mux.HandleFunc("POST /dataset/{id}/apply", s.authed(s.apply))
	s.mux.HandleFunc("GET /inbox", s.authed(s.inboxPage))
	s.mux.HandleFunc("GET /inbox/table", s.authed(s.inboxTable))
	s.mux.HandleFunc("POST /inbox/{id}/approve", s.authed(s.approve))
	s.mux.HandleFunc("POST /inbox/{id}/reject", s.authed(s.reject))
	s.mux.HandleFunc("GET /events", s.authed(s.events))
	s.mux.HandleFunc("GET /grants", s.authed(s.grantsPage))
	s.mux.HandleFunc("POST /grants/{id}/revoke", s.authed(s.revoke))
	s.mux.HandleFunc("GET /disputes", s.authed(s.disputesPage))
	s.mux.HandleFunc("POST /disputes/open", s.authed(s.openDispute))
	s.mux.HandleFunc("POST /disputes/{id}/resolve", s.authed(s.resolveDispute))
	s.mux.HandleFunc("GET /activity", s.authed(s.activityPage))
	s.mux.HandleFunc("GET /ledger", s.authed(s.ledgerPage))
	s.mux.HandleFunc("GET /ledger/{seq}", s.authed(s.entryPage))
	return s, nil
}

// Serve serves on lis (loopback, from Listen) until ctx ends.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	s.mu.Lock()
	s.addr = lis.Addr().String()
	s.mu.Unlock()
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		// Who made the connection, looked up once for all its requests.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			uid, err := peerUID(c)
			return context.WithValue(ctx, peerKey{}, peer{uid, err})
		}}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Host is the name and port the console answers on, for the address
// addr it serves: <random>.localhost:port.
func (s *Server) Host(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(s.name, port)
}

// LoginURL is the URL to open once: it carries the one-time token.
func (s *Server) LoginURL(addr string) string {
	return "http://" + s.Host(addr) + "/login?token=" + s.token
}

type peerKey struct{}

// peer is the user that made a connection (err: not known).
type peer struct {
	uid int
	err error
}

// ServeHTTP adds the security headers, refuses a connection made by
// another user of the machine (whatever cookie or token it brings), and
// refuses a Host that is not the console's own name (a page on another
// site pointing a name at loopback gets nothing, and 127.0.0.1 or
// localhost are refused too: a session there would be sent to every
// server on that name).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // (no-referrer would make browsers send Origin: null on forms)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	p, ok := r.Context().Value(peerKey{}).(peer)
	switch {
	case !ok:
		http.Error(w, "this console answers only on the connections it accepts itself (Serve)", http.StatusForbidden)
		return
	case p.err != nil && !errors.Is(p.err, errPeerUnknown):
		s.cfg.Log.Warn("console: a connection refused", "from", r.RemoteAddr, "err", p.err)
		http.Error(w, "this console serves only the user who started it, and could not tell who connected: "+p.err.Error(), http.StatusForbidden)
		return
	case p.err == nil && p.uid != s.uid:
		s.cfg.Log.Warn("console: a connection from another user refused", "from", r.RemoteAddr, "uid", p.uid)
		http.Error(w, fmt.Sprintf("this console serves only the user who started it (uid %d), not uid %d", s.uid, p.uid), http.StatusForbidden)
		return
	}
	s.mu.Lock()
	addr := s.addr
	s.mu.Unlock()
	if want := s.Host(addr); addr != "" && !strings.EqualFold(r.Host, want) {
		http.Error(w, "this console answers only on "+want+": open the address xhub console printed", http.StatusMisdirectedRequest)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	given := r.URL.Query().Get("token")
	s.mu.Lock()
	ok := s.token != "" && subtle.ConstantTimeCompare([]byte(given), []byte(s.token)) == 1
	if ok {
		s.token = "" // once
	}
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusForbidden)
		s.render(w, r, nil, "message", map[string]any{"Title": "login", "Text": msg(langOf(r, nil), "login.refused")})
		return
	}
	id := randomHex(32)
	s.mu.Lock()
	s.sessions[id] = &session{csrf: randomHex(32), lang: langOf(r, nil)}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	// The token leaves the address bar (and history) at once.
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type handler func(w http.ResponseWriter, r *http.Request, ss *session)

// authed requires the session cookie; a POST also its form's CSRF token
// and a same-origin Origin.
func (s *Server) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		var ss *session
		if err == nil {
			s.mu.Lock()
			ss = s.sessions[c.Value]
			s.mu.Unlock()
		}
		if ss == nil {
			w.WriteHeader(http.StatusUnauthorized)
			s.render(w, r, nil, "message", map[string]any{"Title": "401", "Text": msg(langOf(r, nil), "login.needed")})
			return
		}
		if l := r.URL.Query().Get("lang"); l == "en" || l == "zh" {
			s.mu.Lock()
			ss.lang = l
			s.mu.Unlock()
		}
		if r.Method == http.MethodPost {
			if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
				http.Error(w, msg(ss.lang, "csrf.refused"), http.StatusForbidden)
				return
			}
			if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(ss.csrf)) != 1 {
				http.Error(w, msg(ss.lang, "csrf.refused"), http.StatusForbidden)
				return
			}
		}
		h(w, r, ss)
	}
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, ss *session, page string, data map[string]any) {
	lang := langOf(r, ss)
	data["Lang"] = lang
	data["Page"] = page
	if ss != nil {
		data["CSRF"] = ss.csrf
	}
	data["Me"] = s.cfg.Client.Identity().URI()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	name := "layout.html"
	if page == "inbox_table" {
		name = "inbox_table"
	}
	if err := s.tmpl[lang+"/"+page].ExecuteTemplate(w, name, data); err != nil {
		s.cfg.Log.Warn("console: render", "page", page, "err", err)
	}
}

// langOf is the session's language, else the browser's first choice.
func langOf(r *http.Request, ss *session) string {
	if ss != nil && ss.lang != "" {
		return ss.lang
	}
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Accept-Language")), "zh") {
		return "zh"
	}
	return "en"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
