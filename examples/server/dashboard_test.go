package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/hourglass-io/hourglass/internal/servertest"
)

// EnvArtifacts names the directory where browser tests save their
// screenshots (a temporary directory when unset).
const EnvArtifacts = "HOURGLASS_ARTIFACTS"

// dashboardState is what the page shows, read from its DOM.
type dashboardState struct {
	State   string             `json:"state"`
	Revenue map[string]float64 `json:"revenue"`
	Orders  float64            `json:"orders"`
	Refunds float64            `json:"refunds"`
	Views   float64            `json:"views"`
	Paths   map[string]float64 `json:"paths"`
	Country map[string]float64 `json:"country"`
	Device  map[string]float64 `json:"device"`
	Charts  map[string]float64 `json:"charts"` // figure id → sum of its values
	From    int64              `json:"from"`
	To      int64              `json:"to"`
	Text    string             `json:"text"`
	Stored  []string           `json:"stored"` // sessionStorage keys
	URL     string             `json:"url"`
	Width   float64            `json:"width"` // the document's scroll width
	Errors  string             `json:"errors"`
}

// readState reads the dashboard's figures as the page shows them.
const readState = `(() => {
  const rows = sel => Object.fromEntries([...document.querySelectorAll(sel)].map(e => [e.dataset.label ?? e.dataset.currency, +e.dataset.value]));
  const one = sel => { const e = document.querySelector(sel); return e ? +e.dataset.value : -1; };
  return {
    state: document.body.dataset.state,
    revenue: rows('#kpi-revenue .kpi-row[data-currency]'),
    orders: one('#kpi-orders .kpi-row'), refunds: one('#kpi-refunds .kpi-row'), views: one('#kpi-views .kpi-row'),
    paths: rows('#bars-path li'), country: rows('#bars-country li'), device: rows('#bars-device li'),
    charts: Object.fromEntries([...document.querySelectorAll('#merchant figure.chart')].map(f => [f.id, f.dataset.sum === undefined ? -1 : +f.dataset.sum])),
    from: +(document.querySelector('.kpis').dataset.from || 0), to: +(document.querySelector('.kpis').dataset.to || 0),
    text: document.body.innerText,
    stored: Object.keys(sessionStorage),
    url: location.href,
    width: document.documentElement.scrollWidth,
    errors: [...document.querySelectorAll('.error:not([hidden])')].map(e => e.textContent).join(' | '),
  };
})()`

// TestDashboard drives the dashboard in a real Chromium against the real
// server: sign-in with a wrong token, a merchant's figures against what was
// written and what /v1/metrics answers, the live refresh, the test events
// form by keyboard, the 375 px layout, another merchant, and the operator
// view. Screenshots go to $HOURGLASS_ARTIFACTS (or a temporary directory).
func TestDashboard(t *testing.T) {
	chromium := servertest.Chromium(t)
	dir := t.TempDir()
	p := startServer(t, dir)
	admin := adminToken(t, dir)
	shopA, shopB := p.merchantToken(admin, "shop-a"), p.merchantToken(admin, "shop-b")
	hist := shopHistory(time.Now())
	p.mustDo(http.StatusOK, "POST", "/v1/events", shopA, "application/json", hist.body())
	p.mustDo(http.StatusOK, "POST", "/v1/events", shopB, "application/json", `[
		{"type":"order","amount":999,"currency":"GBP","status":"paid","country":"JP","device":"tablet"},
		{"type":"page_view","path":"/secret-of-shop-b"}]`)
	wantA := hist.hour

	artifacts := artifactsDir(t)
	b := startBrowser(t, chromium)

	// A wrong token: an error, no data, nothing stored.
	b.do(chromedp.EmulateViewport(1280, 900), chromedp.Navigate(p.url+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), shopA[:len(shopA)-4]+"XXXX\n"), chromedp.WaitVisible(chromedp.ID("signin-error")))
	s := b.state()
	if !strings.Contains(s.Errors, "401") || s.Orders != -1 || len(s.Stored) != 0 || !strings.Contains(s.Text, "Sign in") {
		t.Fatalf("after a wrong token: errors %q, orders %v, sessionStorage %v", s.Errors, s.Orders, s.Stored)
	}

	// shop-a signs in: the figures are what was written and what the API says.
	b.signIn(shopA)
	s = b.state()
	checkFigures(t, "shop-a, last hour", s, wantA)
	api := p.figures(shopA, s.From, s.To)
	if !equalFigures(api.Revenue, s.Revenue) || api.Orders != s.Orders || api.Refunds != s.Refunds || api.Views != s.Views {
		t.Errorf("page shows revenue %v, orders %v, refunds %v, views %v; /v1/metrics over [%d, %d) answers %v, %v, %v, %v",
			s.Revenue, s.Orders, s.Refunds, s.Views, s.From, s.To, api.Revenue, api.Orders, api.Refunds, api.Views)
	}
	revenue := 0.0
	for _, v := range wantA.Revenue {
		revenue += v
	}
	if want := map[string]float64{"chart-revenue": revenue, "chart-orders": wantA.Orders, "chart-refunds": wantA.Refunds, "chart-views": wantA.Views}; !equalFigures(s.Charts, want) {
		t.Errorf("chart sums %v, want %v", s.Charts, want)
	}
	for _, leak := range []string{"GBP", "999", "secret-of-shop-b", "JP"} {
		if strings.Contains(s.Text, leak) {
			t.Errorf("shop-a's page shows %q of shop-b", leak)
		}
	}
	if strings.Contains(s.URL, shopA) || len(s.Stored) != 1 {
		t.Errorf("URL %s, sessionStorage keys %v", s.URL, s.Stored)
	}
	if !strings.Contains(s.Text, "merge the write-back cache") {
		t.Error("the page does not say that reads merge the cache")
	}
	var unlabelled []string
	b.evalInto(`[...document.querySelectorAll('input, select, button, [tabindex]')].filter(e =>
		!(e.labels && e.labels.length) && !e.textContent.trim() && !e.getAttribute('aria-label')).map(e => e.outerHTML.slice(0, 80))`, &unlabelled)
	if len(unlabelled) != 0 {
		t.Errorf("controls without a label: %q", unlabelled)
	}
	b.do(chromedp.Focus(chromedp.CSS("#chart-revenue svg"))) // a tooltip, by keyboard
	b.do(chromedp.KeyEvent(kb.ArrowLeft))                    // the newest bucket
	b.screenshot(filepath.Join(artifacts, "dashboard-desktop.png"))

	// Live: an event posted elsewhere shows up without a click.
	p.mustDo(http.StatusOK, "POST", "/v1/events", shopA, "application/json", `[{"type":"order","amount":7,"currency":"EUR","status":"paid","country":"DE","device":"desktop"}]`)
	b.poll(fmt.Sprintf(`Math.abs(document.querySelector('#chart-revenue').dataset.sum - %v) < 1e-6 && document.querySelector('#kpi-orders .kpi-row').dataset.value == %v`,
		revenue+7, wantA.Orders+1))

	// The test events form, by keyboard: the default is a paid EUR order of 12.50.
	b.do(chromedp.Focus(chromedp.ID("send-button")), chromedp.KeyEvent(kb.Enter))
	b.poll(fmt.Sprintf(`document.querySelector('#send-result').textContent.startsWith('Accepted 1 event') && document.querySelector('#kpi-orders .kpi-row').dataset.value == %v`, wantA.Orders+2))
	if s = b.state(); s.Revenue["EUR"] != wantA.Revenue["EUR"]+7+12.5 {
		t.Errorf("after the form's order: EUR revenue %v, want %v", s.Revenue["EUR"], wantA.Revenue["EUR"]+7+12.5)
	}
	for _, w := range []*dashboardState{&hist.hour, &hist.all} { // the two orders since
		w.Revenue["EUR"] += 7 + 12.5
		w.Orders += 2
		w.Country["DE"] += 2
		w.Device["desktop"] += 2
	}

	// 375 px: nothing wider than the screen; then 30 days, with day steps.
	b.do(chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateTouch))
	b.poll(`document.documentElement.clientWidth === 375 && document.querySelector('#chart-revenue svg').getAttribute('width') < 375`)
	b.screenshot(filepath.Join(artifacts, "dashboard-375px.png"))
	b.do(chromedp.Focus(chromedp.ID("range"))) // by keyboard: four options down is 30 days
	for range 4 {
		b.do(chromedp.KeyEvent(kb.ArrowDown))
	}
	b.poll(`document.body.dataset.state === 'ready' && document.querySelector('.kpis').dataset.to - document.querySelector('.kpis').dataset.from === 30 * 86400e3`)
	s = b.state()
	checkFigures(t, "shop-a, 30 days", s, hist.all)
	if s.Width > 375 {
		t.Errorf("at 375 px the page is %v px wide", s.Width)
	}

	// Sign out: the token and the figures are gone; shop-b sees only its own.
	b.do(chromedp.EmulateViewport(1280, 900), chromedp.EmulateReset(), chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("token")))
	if s = b.state(); len(s.Stored) != 0 || s.Orders != -1 || strings.Contains(s.Text, "EUR") {
		t.Errorf("after sign-out: sessionStorage %v, orders %v", s.Stored, s.Orders)
	}
	b.signIn(shopB)
	s = b.state()
	checkFigures(t, "shop-b", s, dashboardState{Revenue: map[string]float64{"GBP": 999}, Orders: 1, Views: 1,
		Paths: map[string]float64{"/secret-of-shop-b": 1}, Country: map[string]float64{"JP": 1}, Device: map[string]float64{"tablet": 1}})
	for _, leak := range []string{"EUR", "USD", "/pricing", "/checkout"} {
		if strings.Contains(s.Text, leak) {
			t.Errorf("shop-b's page shows %q of shop-a", leak)
		}
	}

	// The operator view: a finished reprocess job (which flushed), then the
	// flush lag of a newer write against its bound.
	startJob(p, admin, `{"id":"paths-dry","processor":"events/2","from":"now-3h","merchant":"shop-a","dry_run":true}`)
	waitJob(p, admin, "paths-dry")
	p.mustDo(http.StatusOK, "POST", "/v1/events", shopB, "application/json", `[{"type":"page_view","path":"/"}]`)
	b.do(chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("token")))
	b.signIn(admin)
	var op struct {
		Lag, Text, Flushes, Jobs string
	}
	b.evalInto(`({lag: document.querySelector('#op-flushlag .op-body').dataset.seconds, text: document.querySelector('#op-flushlag').innerText,
		flushes: document.querySelector('#op-flushes').innerText, jobs: document.querySelector('#op-jobs').innerText})`, &op)
	if op.Lag == "" || op.Lag == "0" || !strings.Contains(op.Text, "budget") {
		t.Errorf("operator view: flush lag %q, text %q", op.Lag, op.Text)
	}
	if !strings.Contains(op.Jobs, "paths-dry") || !strings.Contains(op.Jobs, "completed") || !strings.Contains(op.Jobs, "100 %") || !strings.Contains(op.Flushes, "budget") {
		t.Errorf("operator view: jobs %q, flushes %q", op.Jobs, op.Flushes)
	}
	if s = b.state(); s.Errors != "" {
		t.Errorf("operator view shows errors: %s", s.Errors)
	}
	b.screenshot(filepath.Join(artifacts, "operator-desktop.png"))
	t.Logf("screenshots in %s", artifacts)
}

// history is a merchant's events of the last two hours and the figures the
// dashboard must show for them.
type history struct {
	events []map[string]any
	// hour counts the last hour's events, all every event.
	hour, all dashboardState
}

// shopHistory makes a busy shop's last two hours before now: orders, refunds
// and page views every minute, the previous hour quieter than the last, so
// that the charts have a shape and the changes are real. The last hour's
// events are in [now-56m, now-1m] and the previous hour's in
// [now-115m, now-65m], so that they stay in their period for minutes.
func shopHistory(now time.Time) *history {
	hs := &history{}
	for _, w := range []*dashboardState{&hs.hour, &hs.all} {
		*w = dashboardState{Revenue: map[string]float64{}, Paths: map[string]float64{}, Country: map[string]float64{}, Device: map[string]float64{}}
	}
	countries := []string{"DE", "FR", "US", "GB", "NL", "DE", "US"}
	devices := []string{"desktop", "mobile", "desktop", "tablet", "mobile"}
	paths := []string{"/", "/pricing", "/products/42", "/checkout", "/blog/launch", "/pricing", "/"}
	for ago := 115; ago >= 1; ago-- {
		if ago > 56 && ago < 65 {
			continue
		}
		at := now.Add(-time.Duration(ago) * time.Minute).UnixMilli()
		last := ago <= 56
		busy := 1 + (ago*7)%3
		if !last {
			busy = 1 + (ago*5)%2
		}
		for i := range busy {
			k := ago*3 + i
			cur := "EUR"
			if k%3 == 0 {
				cur = "USD"
			}
			status := "paid"
			switch {
			case k%7 == 0:
				status = "pending"
			case k%11 == 0:
				status = "failed"
			}
			hs.add(last, map[string]any{"type": "order", "time": at, "amount": float64(10+(k*13)%40) + 0.5, "currency": cur,
				"status": status, "country": countries[k%len(countries)], "device": devices[k%len(devices)]})
		}
		for i := range 2 + (ago*5)%4 + busy {
			hs.add(last, map[string]any{"type": "page_view", "time": at, "path": paths[(ago+i*3)%len(paths)]})
		}
		if ago%9 == 0 {
			hs.add(last, map[string]any{"type": "refund", "time": at, "amount": 12.5, "currency": "EUR"})
		}
	}
	return hs
}

// add adds an event of the last hour (or the previous one).
func (hs *history) add(last bool, e map[string]any) {
	hs.events = append(hs.events, e)
	ws := []*dashboardState{&hs.all}
	if last {
		ws = append(ws, &hs.hour)
	}
	for _, w := range ws {
		switch e["type"] {
		case "order":
			w.Orders++
			w.Country[e["country"].(string)]++
			w.Device[e["device"].(string)]++
			if e["status"] == "paid" {
				w.Revenue[e["currency"].(string)] += e["amount"].(float64)
			}
		case "refund":
			w.Refunds++
			w.Revenue[e["currency"].(string)] -= e["amount"].(float64)
		case "page_view":
			w.Views++
			w.Paths[e["path"].(string)]++
		}
	}
}

// body is the events as a JSON array.
func (hs *history) body() string {
	b, _ := json.Marshal(hs.events)
	return string(b)
}

// TestDashboardRateLimitedReplicated: when the server refuses with 429, the
// page says so in words, with the wait, and shows no figures; the operator
// view shows the replicas of a replicated store.
func TestDashboardRateLimitedReplicated(t *testing.T) {
	chromium := servertest.Chromium(t)
	dir := t.TempDir()
	p := startServer(t, dir, "-rate", "0.05", "-burst", "3", "-replicas", "2")
	b := startBrowser(t, chromium)
	b.do(chromedp.Navigate(p.url + "/"))
	b.do(chromedp.WaitVisible(chromedp.ID("token")), chromedp.SendKeys(chromedp.ID("token"), p.exports["HG_TOKEN"]), chromedp.Click(chromedp.ID("signin-button")))
	b.poll(`document.body.dataset.state === 'error'`)
	s := b.state()
	if !strings.Contains(s.Errors, "Too many requests (429)") || !strings.Contains(s.Errors, "tries again in") || len(s.Revenue) != 0 || s.Orders != -1 {
		t.Errorf("rate limited: errors %q, revenue %v, orders %v", s.Errors, s.Revenue, s.Orders)
	}
	b.screenshot(filepath.Join(artifactsDir(t), "dashboard-429.png"))

	b.do(chromedp.Click(chromedp.ID("sign-out")))
	b.signIn(adminToken(t, dir))
	var rows []string
	b.evalInto(`[...document.querySelectorAll('#op-replicas tbody tr')].map(r => r.innerText.replace(/\s+/g, ' '))`, &rows)
	if len(rows) != 3 || !strings.Contains(rows[0], "primary primary healthy") || !strings.Contains(rows[1], "standby-1 standby healthy") {
		t.Errorf("replicas shown: %q", rows)
	}
	b.screenshot(filepath.Join(artifactsDir(t), "operator-replicas.png"))
}

// artifactsDir returns $HOURGLASS_ARTIFACTS (created) or a temporary
// directory.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(EnvArtifacts)
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkFigures compares the page's figures with want.
func checkFigures(t *testing.T, when string, s, want dashboardState) {
	t.Helper()
	if s.State != "ready" {
		t.Errorf("%s: page state %q (errors %q)", when, s.State, s.Errors)
	}
	for _, c := range []struct {
		name      string
		got, want map[string]float64
	}{{"revenue", s.Revenue, want.Revenue}, {"views by path", s.Paths, want.Paths},
		{"orders by country", s.Country, want.Country}, {"orders by device", s.Device, want.Device}} {
		if !equalFigures(c.got, c.want) {
			t.Errorf("%s: %s %v, want %v", when, c.name, c.got, c.want)
		}
	}
	if s.Orders != want.Orders || s.Refunds != want.Refunds || s.Views != want.Views {
		t.Errorf("%s: orders %v, refunds %v, views %v; want %v, %v, %v", when, s.Orders, s.Refunds, s.Views, want.Orders, want.Refunds, want.Views)
	}
}

// figures reads the totals the dashboard shows from /v1/metrics over
// [from, to).
func (p *serverProc) figures(token string, from, to int64) dashboardState {
	p.t.Helper()
	rng := fmt.Sprintf("from=%d&to=%d&step=%dm", from, to, (to-from)/60000)
	total := func(metric string) float64 {
		var sum float64
		for _, v := range p.query(token, metric, rng+"&group_by=", "") {
			sum += v
		}
		return sum
	}
	return dashboardState{Revenue: p.query(token, "revenue", rng+"&group_by=currency", "currency"),
		Orders: total("orders"), Refunds: total("refunds"), Views: total("views")}
}

// browser is a headless Chromium tab.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex // guards problems
	problems []string   // uncaught exceptions, console errors, CSP violations
}

// listen records what the page must never do: throw, log an error, or break
// its Content-Security-Policy. (The network's log entries of 4xx answers
// are expected: the tests provoke them.)
func (b *browser) listen(ev any) {
	var p string
	switch e := ev.(type) {
	case *cdpruntime.EventExceptionThrown:
		p = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			p += " " + e.ExceptionDetails.Exception.Description
		}
	case *cdpruntime.EventConsoleAPICalled:
		if e.Type == cdpruntime.ConsoleAPICalledTypeError || e.Type == cdpruntime.ConsoleAPICalledTypeWarning {
			p = "console." + string(e.Type) + " called"
		}
	case *cdplog.EventEntryAdded:
		if e.Entry.Source != cdplog.EntrySourceNetwork && (e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning) {
			p = fmt.Sprintf("%s %s: %s", e.Entry.Source, e.Entry.Level, e.Entry.Text)
		}
	}
	if p != "" {
		b.mu.Lock()
		b.problems = append(b.problems, p)
		b.mu.Unlock()
	}
}

// checkConsole fails the test if the page threw, logged an error or broke
// its Content-Security-Policy.
func (b *browser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("page: %s", p)
	}
}

// startBrowser starts Chromium with the sandbox's headless flags; it stops
// when the test ends.
func startBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	profile, err := os.MkdirTemp("", "hourglass-chromium")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Chromium's helpers may still write there for a moment after it exits.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("lang", "en-US"), chromedp.Env("TZ=UTC"))
	b := &browser{t: t}
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithListener(b.listen))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	b.ctx = ctx
	t.Cleanup(b.checkConsole)
	return b
}

// do runs steps, each within 30 s.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v\npage errors: %s", err, b.errorsShown())
	}
}

// poll waits up to 30 s for a JavaScript expression to be true.
func (b *browser) poll(expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		s := b.state()
		b.t.Fatalf("waiting for %s: %v\npage: state %s, errors %q, revenue %v, orders %v, charts %v", expr, err, s.State, s.Errors, s.Revenue, s.Orders, s.Charts)
	}
}

// eval runs a JavaScript expression.
func (b *browser) eval(expr string) {
	b.t.Helper()
	var v any
	b.evalInto(expr, &v)
}

// evalInto runs a JavaScript expression and decodes its JSON value into v.
func (b *browser) evalInto(expr string, v any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, v); err != nil {
			b.t.Fatalf("evaluating %s: %v", expr, err)
		}
	}
}

// state reads what the page shows.
func (b *browser) state() dashboardState {
	b.t.Helper()
	var s dashboardState
	b.evalInto(readState, &s)
	return s
}

// errorsShown returns the page's visible error messages, or why it cannot.
func (b *browser) errorsShown() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('.error:not([hidden])')].map(e => e.textContent).join(' | ')`))
	if err != nil {
		return err.Error()
	}
	return s
}

// signIn signs in with token and waits until the view has loaded.
func (b *browser) signIn(token string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.ID("token")))
	b.eval(`document.getElementById('token').value = ''`)
	b.do(chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("signin-button")))
	b.poll(`document.body.dataset.state === 'ready'`)
}

// screenshot saves a PNG of the whole page.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
