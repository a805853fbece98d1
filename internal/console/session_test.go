package console_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// thief is another local user's web server on another port of loopback:
// it records the Cookie header of every request the officer's browser
// sends it, and serves a page whose images point back at it under both
// loopback names.
type thief struct {
	mu      sync.Mutex
	cookies []string // every Cookie header received, "" for none
	port    string
}

func startThief(t *testing.T, network, addr string) *thief {
	t.Helper()
	lis, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	th := &thief{}
	_, th.port, _ = net.SplitHostPort(lis.Addr().String())
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		th.mu.Lock()
		th.cookies = append(th.cookies, r.Header.Get("Cookie"))
		th.mu.Unlock()
		if r.URL.Path == "/pixel.gif" {
			w.Header().Set("Content-Type", "image/gif")
			_, _ = w.Write([]byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>cat pictures</title><p id="cats">cats</p>
<img src="http://127.0.0.1:%[1]s/pixel.gif"><img src="http://localhost:%[1]s/pixel.gif">`, th.port)
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return th
}

func (th *thief) received() []string {
	th.mu.Lock()
	defer th.mu.Unlock()
	return append([]string(nil), th.cookies...)
}

// TestConsoleSessionStaysWithItsConsole: the officer signs in to the
// console and then visits another local user's server on another port of
// loopback, as 127.0.0.1 and as localhost, whose page loads images from
// it under both names. That server receives no Cookie header carrying the
// console's session, and replaying whatever it received against the
// console - under the console's own name, 127.0.0.1 or localhost - does
// not show the inbox nor approve the pending request.
func TestConsoleSessionStaysWithItsConsole(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	for id, name := range map[string]string{"health": "卫生健康委员会", "tax": "税务局"} {
		if _, err := env.Admin.AddDepartment(ctx, id, name); err != nil {
			t.Fatal(err)
		}
	}
	health, tax := env.Officer("health"), env.Officer("tax")
	schema := `{"type":"object","properties":{"person_id":{"type":"string"},"district":{"type":"string"}},"required":["person_id"]}`
	if _, err := testenv.RPC(health).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.vaccinations", SchemaJson: []byte(schema)}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(health).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: "health.vaccinations", Title: "疫苗接种记录",
		ShareType: "conditional", SchemaSubject: "health.vaccinations"}); err != nil {
		t.Fatal(err)
	}
	dec, err := tax.RequestShare(ctx, "health.vaccinations", nil, "school allowance checks", 30)
	if err != nil {
		t.Fatal(err)
	}
	reqID := dec.Request.ID

	_, login := startConsole(t, health)
	u, err := url.Parse(login)
	if err != nil {
		t.Fatal(err)
	}
	consoleHost, consolePort := u.Host, u.Port()
	// Browsers try ::1 first for the console's name: the other user
	// cannot serve the console's port there.
	if lis, err := net.Listen("tcp6", "[::1]:"+consolePort); err == nil {
		_ = lis.Close()
		t.Errorf("another user can serve [::1]:%s, where the browser looks for %s first", consolePort, consoleHost)
	}
	thieves := []*thief{startThief(t, "tcp4", "127.0.0.1:0")}
	if lis, err := net.Listen("tcp6", "[::1]:0"); err == nil { // and on IPv6 loopback where there is one
		_ = lis.Close()
		thieves = append(thieves, startThief(t, "tcp6", "[::1]:0"))
	}

	b := browser(t)
	officer := tab(t, b)
	run(t, officer, "login", chromedp.Navigate(login), chromedp.WaitVisible("#q", chromedp.ByQuery),
		chromedp.Navigate("http://"+consoleHost+"/inbox"), chromedp.WaitVisible("#req-"+reqID, chromedp.ByQuery))
	// The officer's browser then visits the other user's pages (each
	// loads its images under both names before the navigation ends).
	for _, th := range thieves {
		for _, host := range []string{"127.0.0.1", "localhost"} {
			if th != thieves[0] && host == "127.0.0.1" {
				host = "[::1]"
			}
			run(t, officer, "visit "+host+":"+th.port, chromedp.Navigate("http://"+host+":"+th.port+"/"), chromedp.WaitVisible("#cats", chromedp.ByQuery))
		}
	}

	// The session the browser holds.
	var session []string
	run(t, officer, "cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		cs, err := storage.GetCookies().Do(ctx)
		for _, c := range cs {
			if strings.HasPrefix(c.Name, "xhub_console") || strings.HasPrefix(c.Name, "__Host-xhub_console") {
				session = append(session, c.Name+"="+c.Value)
			}
		}
		return err
	}))
	if len(session) == 0 {
		t.Fatal("the browser holds no console session after signing in")
	}

	// What the other user's servers got: requests, none with the session.
	var got []string
	for _, th := range thieves {
		rec := th.received()
		if len(rec) < 4 { // two pages, two images each
			t.Fatalf("the server on port %s saw %d requests, want at least 4 (the browser did not visit it)", th.port, len(rec))
		}
		got = append(got, rec...)
	}
	for _, h := range got {
		for _, s := range session {
			if _, value, _ := strings.Cut(s, "="); strings.Contains(h, value) {
				t.Errorf("another user's server received the console's session: Cookie: %s", h)
			}
		}
	}

	// The replay harness reaches the console: the browser's own session,
	// sent by the officer's own process under the console's name, shows
	// the inbox.
	if status, _ := replay(t, consolePort, consoleHost, http.MethodGet, "/inbox", strings.Join(session, "; "), nil); status != http.StatusOK {
		t.Fatalf("the officer's own session under %s: HTTP %d, want 200", consoleHost, status)
	}
	// Whatever the other servers received, under any name, opens nothing.
	csrfRe := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
	tried := map[string]bool{}
	for _, h := range got {
		if tried[h] {
			continue
		}
		tried[h] = true
		for _, host := range []string{consoleHost, "127.0.0.1:" + consolePort, "localhost:" + consolePort} {
			status, body := replay(t, consolePort, host, http.MethodGet, "/inbox", h, nil)
			if status == http.StatusOK {
				t.Errorf("Cookie %q under Host %s shows the officer's inbox", h, host)
			}
			csrf := ""
			if m := csrfRe.FindStringSubmatch(body); m != nil {
				csrf = m[1]
			}
			form := url.Values{"csrf": {csrf}, "field": {"person_id", "district"}, "days": {"30"}}
			if status, _ := replay(t, consolePort, host, http.MethodPost, "/inbox/"+reqID+"/approve", h, form); status < 400 {
				t.Errorf("Cookie %q under Host %s: approve answered HTTP %d", h, host, status)
			}
		}
	}
	reqs, err := health.Inbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pending := false
	for _, r := range reqs {
		if r.ID == reqID && r.Status == "pending" {
			pending = true
		}
	}
	if !pending {
		t.Fatalf("request %s is no longer pending after the replays: %+v", reqID, reqs)
	}
}

// replay sends one request to the console on 127.0.0.1:port with the
// given Host and Cookie headers, as another user's program would, and
// returns the status and body (redirects not followed).
func replay(t *testing.T, port, host, method, path, cookie string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, "http://127.0.0.1:"+port+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "http://"+host)
	}
	cl := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("replay %s %s (Host %s): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}
