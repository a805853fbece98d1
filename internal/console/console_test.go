package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/console"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// startConsole serves a console for client on a free loopback port; base
// is its address under its own name, <random>.localhost:port.
func startConsole(t *testing.T, cl *adapters.Client) (base, login string) {
	t.Helper()
	srv, err := console.New(console.Config{Client: cl, HeadFile: filepath.Join(t.TempDir(), "head.note")})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := console.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, lis); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + srv.Host(lis.Addr().String()), srv.LoginURL(lis.Addr().String())
}

// browser is headless Chromium from Debian's package (installed by
// .ci/run), driven over CDP with chromedp.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is needed (.ci/run installs Debian's package)")
		}
		t.Skip("needs chromium (Debian: apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Run(ctx); err != nil { // start the browser
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// tab is a new tab of the browser, bounded in time.
func tab(t *testing.T, b context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b)
	t.Cleanup(cancel)
	// Open the tab with this context: a step's shorter one would close it.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("tab: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(step, actions...); err != nil {
		var page, url string
		dump, cancel2 := context.WithTimeout(ctx, 5*time.Second)
		defer cancel2()
		_ = chromedp.Run(dump, chromedp.Location(&url), chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &page))
		t.Fatalf("%s: %v\nat %s:\n%s", what, err, url, snippet(page))
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	run(t, ctx, "read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// screenshot saves the page under docs/ when XHUB_SCREENSHOTS names the
// directory (the README's screenshots are taken so).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("XHUB_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	step, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Run(step, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInABrowser: tax's officer finds a dataset searching in
// Chinese and applies; health's officer sees the request arrive without
// reloading, approves it narrowed; tax sees the grant; health revokes it;
// both see the ledger with its head verified. The token, CSRF and the
// hub's own refusals hold.
func TestConsoleInABrowser(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	if _, err := env.Admin.AddDepartment(ctx, "health", "卫生健康委员会"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Admin.AddDepartment(ctx, "tax", "税务局"); err != nil {
		t.Fatal(err)
	}
	health, tax := env.Officer("health"), env.Officer("tax")
	schema := `{"type":"object","properties":{"person_id":{"type":"string"},"vaccine":{"type":"string"},"district":{"type":"string"}},"required":["person_id"]}`
	if _, err := testenv.RPC(health).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.vaccinations", SchemaJson: []byte(schema)}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(health).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: "health.vaccinations", Title: "疫苗接种记录",
		ShareType: "conditional", SchemaSubject: "health.vaccinations", Keywords: []string{"疫苗", "儿童"}, Frequency: "每日"}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(health).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: "health.secret", SchemaJson: []byte(schema)}); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(health).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: "health.secret", Title: "病历", ShareType: "none", SchemaSubject: "health.secret"}); err != nil {
		t.Fatal(err)
	}
	hBase, hLogin := startConsole(t, health)
	tBase, tLogin := startConsole(t, tax)
	b := browser(t)
	hTab, tTab := tab(t, b), tab(t, b)

	// The token is required: the console without it refuses.
	run(t, tTab, "no token", chromedp.Navigate(tBase+"/"), chromedp.WaitVisible("#message", chromedp.ByQuery))
	if s := text(t, tTab, "#message"); !strings.Contains(s, "xhub console") {
		t.Fatalf("without the token: %q", s)
	}
	// Tax signs in, in Chinese, and searches the catalog in Chinese.
	run(t, tTab, "tax login", chromedp.Navigate(tLogin), chromedp.WaitVisible("#q", chromedp.ByQuery),
		chromedp.Navigate(tBase+"/?lang=zh"), chromedp.WaitVisible("#q", chromedp.ByQuery))
	if s := text(t, tTab, "#nav-catalog"); s != "资源目录" {
		t.Fatalf("Chinese navigation: %q", s)
	}
	// The token worked once only.
	hTab2 := tab(t, b)
	run(t, hTab2, "reused token", chromedp.Navigate(tLogin), chromedp.WaitVisible("#message", chromedp.ByQuery))
	run(t, tTab, "search", chromedp.SetValue("#q", "疫苗", chromedp.ByQuery), chromedp.Click("#search", chromedp.ByQuery),
		chromedp.WaitVisible("#datasets", chromedp.ByQuery))
	if s := text(t, tTab, "#datasets"); !strings.Contains(s, "health.vaccinations") || !strings.Contains(s, "有条件共享") || !strings.Contains(s, "卫生健康委员会") {
		t.Fatalf("search 疫苗: %q", s)
	}
	screenshot(t, tTab, "catalog")

	// Health watches its inbox.
	run(t, hTab, "health login", chromedp.Navigate(hLogin), chromedp.WaitVisible("#q", chromedp.ByQuery),
		chromedp.Navigate(hBase+"/inbox"), chromedp.WaitVisible("#inbox-empty", chromedp.ByQuery),
		chromedp.Evaluate(`window.__notReloaded = true`, nil))
	time.Sleep(300 * time.Millisecond) // the page's event stream is open

	// Tax applies for the data.
	run(t, tTab, "dataset page", chromedp.Click(".dataset-link", chromedp.ByQuery), chromedp.WaitVisible("#apply", chromedp.ByQuery))
	screenshot(t, tTab, "dataset")
	if s := text(t, tTab, "#schema-info"); !strings.Contains(s, "1") || !strings.Contains(s, "FORWARD") {
		t.Fatalf("schema versions and mode: %q", s)
	}
	run(t, tTab, "apply", chromedp.SetValue("#purpose", "school allowance checks", chromedp.ByQuery),
		chromedp.Click("#apply-submit", chromedp.ByQuery), chromedp.WaitVisible("#flash-ok", chromedp.ByQuery))
	if s := text(t, tTab, "#flash-ok"); !strings.Contains(s, "r-") {
		t.Fatalf("apply: %q", s)
	}

	// The request appears in health's inbox without a reload.
	run(t, hTab, "request arrives", chromedp.WaitVisible("#requests", chromedp.ByQuery))
	var same bool
	run(t, hTab, "no reload", chromedp.Evaluate(`window.__notReloaded === true`, &same))
	if !same {
		t.Fatal("the inbox reloaded to show the request")
	}
	screenshot(t, hTab, "inbox")
	// Approve with fewer fields: district unticked.
	run(t, hTab, "approve narrowed",
		chromedp.Click(`form.approve input[value="district"]`, chromedp.ByQuery),
		chromedp.Submit(`form.approve`, chromedp.ByQuery), chromedp.WaitVisible("#flash-ok", chromedp.ByQuery))
	approved := text(t, hTab, "#flash-ok")
	if !strings.Contains(approved, "g-") || strings.Contains(approved, "district") {
		t.Fatalf("approve: %q", approved)
	}

	// Tax's system reads the data three times (for the activity charts).
	provider := env.System("health", "registry")
	pctx, stopProvider := context.WithCancel(ctx)
	defer stopProvider()
	go func() {
		_ = provider.Serve(pctx, []string{"health.vaccinations"}, func(context.Context, adapters.ProviderQuery) ([][]byte, string, error) {
			return [][]byte{[]byte(`{"person_id":"P-1","vaccine":"MMR","district":"north"}`), []byte(`{"person_id":"P-2","vaccine":"DTaP","district":"south"}`)}, "", nil
		})
	}()
	taxSys := env.System("tax", "app")
	testenv.WaitFor(t, 10*time.Second, "three queries", func() bool {
		n := 0
		for range 3 {
			if _, err := taxSys.Query(ctx, "health.vaccinations", adapters.QueryOptions{}); err == nil {
				n++
			}
		}
		return n == 3
	})

	// The owner sees who holds a grant; a dataset shared as none is
	// refused with the hub's reason.
	run(t, hTab, "holders", chromedp.Navigate(hBase+"/dataset/health.vaccinations"), chromedp.WaitVisible("#holders", chromedp.ByQuery))
	if s := text(t, hTab, "#holders"); !strings.Contains(s, "tax") {
		t.Fatalf("holders: %q", s)
	}
	run(t, tTab, "apply for none", chromedp.Navigate(tBase+"/dataset/health.secret"), chromedp.WaitVisible("#purpose", chromedp.ByQuery),
		chromedp.SetValue("#purpose", "x", chromedp.ByQuery), chromedp.Click("#apply-submit", chromedp.ByQuery), chromedp.WaitVisible("#flash-err", chromedp.ByQuery))
	if s := text(t, tTab, "#flash-err"); !strings.Contains(s, "not shared") {
		t.Fatalf("applying for a dataset shared as none: %q", s)
	}
	// Dates in the language's form.
	run(t, tTab, "dates", chromedp.Navigate(tBase+"/grants"), chromedp.WaitVisible("#received", chromedp.ByQuery))
	if s := text(t, tTab, "#received"); !strings.Contains(s, "年") {
		t.Fatalf("Chinese dates: %q", s)
	}

	// Tax sees the grant, without district.
	run(t, tTab, "tax grants", chromedp.Navigate(tBase+"/grants"), chromedp.WaitVisible("#received", chromedp.ByQuery))
	if s := text(t, tTab, "#received"); !strings.Contains(s, "health.vaccinations") || strings.Contains(s, "district") || !strings.Contains(s, "有效") {
		t.Fatalf("tax's grants: %q", s)
	}

	// Tax disputes a record of its grant; naming a field outside the grant
	// is refused by the hub, on the page; health answers; tax sees it.
	run(t, tTab, "dispute outside the grant", chromedp.Navigate(tBase+"/disputes"), chromedp.WaitVisible("#dispute-open", chromedp.ByQuery),
		chromedp.SetValue("#dispute-field", "district", chromedp.ByQuery), chromedp.SetValue("#dispute-reason", "wrong", chromedp.ByQuery),
		chromedp.Click("#dispute-submit", chromedp.ByQuery), chromedp.WaitVisible("#flash-err", chromedp.ByQuery))
	if s := text(t, tTab, "#flash-err"); !strings.Contains(s, "district") {
		t.Fatalf("a dispute on a field outside the grant: %q", s)
	}
	run(t, tTab, "dispute", chromedp.SetValue("#dispute-field", "person_id", chromedp.ByQuery), chromedp.SetValue("#dispute-record", "P-1024", chromedp.ByQuery),
		chromedp.SetValue("#dispute-reason", "recorded twice", chromedp.ByQuery),
		chromedp.Click("#dispute-submit", chromedp.ByQuery), chromedp.WaitVisible("#flash-ok", chromedp.ByQuery))
	run(t, hTab, "dispute in the inbox", chromedp.Navigate(hBase+"/inbox"), chromedp.WaitVisible("#inbox-disputes", chromedp.ByQuery))
	run(t, hTab, "resolve", chromedp.Navigate(hBase+"/disputes"), chromedp.WaitVisible("form.resolve", chromedp.ByQuery))
	screenshot(t, hTab, "disputes")
	run(t, hTab, "resolve submit", chromedp.SetValue(`form.resolve input[name="reason"]`, "duplicate removed", chromedp.ByQuery),
		chromedp.Submit("form.resolve", chromedp.ByQuery), chromedp.WaitVisible("#flash-ok", chromedp.ByQuery))
	run(t, tTab, "dispute answered", chromedp.Navigate(tBase+"/disputes"), chromedp.WaitVisible("#disputes", chromedp.ByQuery))
	if s := text(t, tTab, "#disputes"); !strings.Contains(s, "duplicate removed") || !strings.Contains(s, "已更正") {
		t.Fatalf("tax's disputes: %q", s)
	}

	// Acting for another department through the console: the hub refuses,
	// and the page says why. (A well-formed POST, with the page's CSRF.)
	var refusal string
	run(t, tTab, "revoke as tax", chromedp.Navigate(tBase+"/dataset/health.vaccinations"), chromedp.WaitVisible("#apply", chromedp.ByQuery),
		chromedp.Evaluate(`(async () => {
			const csrf = document.querySelector('input[name=csrf]').value;
			const gid = "`+grantID(approved)+`";
			const r = await fetch("/grants/" + gid + "/revoke", {method: "POST", body: new URLSearchParams({csrf, reason: "mine now"})});
			return await r.text();
		})()`, &refusal, awaitPromise))
	if !strings.Contains(refusal, "only an officer of health") {
		t.Fatalf("tax revoking health's grant: the page says %q", snippet(refusal))
	}
	// A form without the CSRF token is refused.
	var status int
	run(t, tTab, "no csrf", chromedp.Evaluate(`(async () => {
		const r = await fetch("/dataset/health.vaccinations/apply", {method: "POST", body: new URLSearchParams({purpose: "x"})});
		return r.status;
	})()`, &status, awaitPromise))
	if status != 403 {
		t.Fatalf("a form without the CSRF token: HTTP %d", status)
	}

	// Health revokes with a reason.
	run(t, hTab, "revoke", chromedp.Navigate(hBase+"/grants"), chromedp.WaitVisible("#given form", chromedp.ByQuery),
		chromedp.SetValue(`#given input[name="reason"]`, "scheme ended", chromedp.ByQuery),
		chromedp.Submit(`#given form`, chromedp.ByQuery), chromedp.WaitVisible("#flash-ok", chromedp.ByQuery))
	screenshot(t, hTab, "grants")

	// Both see the ledger with bodies and a verified head.
	for _, tb := range []struct {
		ctx  context.Context
		base string
	}{{hTab, hBase}, {tTab, tBase}} {
		run(t, tb.ctx, "ledger", chromedp.Navigate(tb.base+"/ledger"), chromedp.WaitVisible("#head-verified", chromedp.ByQuery))
		s := text(t, tb.ctx, "#entries")
		want := []string{"grant.revoked", "scheme ended", "税务局 was granted person_id, vaccine of health.vaccinations until", "by 卫生健康委员会's officer", "卫生健康委员会 revoked 税务局's grant"}
		if tb.ctx == tTab { // in Chinese
			want = []string{"grant.revoked", "scheme ended", "税务局获授权使用health.vaccinations的person_id, vaccine", "由卫生健康委员会官员批准", "卫生健康委员会撤销了税务局对health.vaccinations的授权"}
		}
		for _, want := range want {
			if !strings.Contains(s, want) {
				t.Errorf("ledger lacks %q", want)
			}
		}
	}
	screenshot(t, tTab, "ledger")
	// Health's activity: tax's accesses of the day and the records delivered.
	run(t, hTab, "activity", chromedp.Navigate(hBase+"/activity"), chromedp.WaitVisible("section.chart svg", chromedp.ByQuery))
	act := text(t, hTab, "main")
	if !strings.Contains(act, "(tax ") || !strings.Contains(act, "health.vaccinations") || !strings.Contains(act, "approved") {
		t.Fatalf("activity: %q", snippet(act))
	}
	screenshot(t, hTab, "activity")
	// A second visit proves the ledger extends the head the first saw;
	// an entry opens with its inclusion proof checked.
	run(t, hTab, "ledger again", chromedp.Navigate(hBase+"/ledger"), chromedp.WaitVisible("#consistent", chromedp.ByQuery),
		chromedp.Click(".entry-link", chromedp.ByQuery), chromedp.WaitVisible("#proof-verified", chromedp.ByQuery))
	if s := text(t, hTab, "#summary"); !strings.Contains(s, "scheme ended") { // the entry page's own summary
		t.Fatalf("the newest entry's summary: %q", s)
	}
}

func grantID(flash string) string {
	for _, w := range strings.FieldsFunc(flash, func(r rune) bool {
		return r == ' ' || r == ':' || r == '(' || r == ')' || r == '，' || r == '。' || r == '.' || r == ','
	}) {
		if strings.HasPrefix(w, "g-") {
			return w
		}
	}
	return "g-0"
}

func snippet(s string) string {
	if r := []rune(s); len(r) > 400 {
		return string(r[:400])
	}
	return s
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }
