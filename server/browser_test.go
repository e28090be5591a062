package server

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/daguq/daguq/queuestore"
)

// The dashboard runs in a real browser: Debian's chromium, driven over the
// DevTools protocol. Without chromium these tests skip, saying how to get
// it, except under CI (CI set), where they fail.

// chromiumPath finds the browser: $DAGUQ_CHROMIUM, else chromium on PATH.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("DAGUQ_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("chromium not found and CI is set: apt-get install -y chromium (.ci/run does)")
	}
	tb.Skip("no chromium: apt-get install -y chromium (or set DAGUQ_CHROMIUM) to test the dashboard in a real browser")
	return ""
}

// browser is one headless chromium tab that records every JavaScript
// error, console error and request to an origin other than the servers'.
type browser struct {
	tb  testing.TB
	ctx context.Context

	mu       sync.Mutex
	origins  []string
	problems []string
	dialogs  []string
	requests int // requests seen, to know the watch works
}

func newBrowser(tb testing.TB) *browser {
	tb.Helper()
	exe := chromiumPath(tb)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	tb.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	b := &browser{tb: tb, ctx: ctx}

	// Subscribe before the first navigation, so nothing is missed.
	console := chromedp.Console(ctx)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.problem("console %s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
			}
		}
	}()
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.requests++
			b.mu.Unlock()
			if !b.sameOrigin(ev.Request.URL) {
				b.problem("a request to another origin: %s", ev.Request.URL)
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				b.problem("accept the dialog: %v", err)
			}
		}
	}()
	return b
}

func (b *browser) allow(origin string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.origins = append(b.origins, origin)
}

func (b *browser) sameOrigin(url string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, o := range b.origins {
		if url == o || strings.HasPrefix(url, o+"/") {
			return true
		}
	}
	return false
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// check fails the test on any problem seen so far.
func (b *browser) check() {
	b.tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.requests == 0 {
		b.tb.Error("no request seen: the watch on requests does not work")
	}
	for _, p := range b.problems {
		b.tb.Error(p)
	}
	b.problems = nil
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.check()
		b.tb.Fatal(err)
	}
}

// wait polls a JavaScript expression until it is true. (chromedp.Poll
// compiles the predicate with new Function, which the page's CSP rightly
// forbids; an Evaluate from DevTools is not the page's own code.)
func (b *browser) wait(what, expr string) {
	b.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.check()
			text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
			b.tb.Fatalf("waited 30s for %s: %s is not true (%v); the page says:\n%s", what, expr, err, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *browser) lastDialog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) == 0 {
		return ""
	}
	return b.dialogs[len(b.dialogs)-1]
}

// textIs is a JavaScript test of an element's text.
func textIs(selector, want string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "").trim() === %q`, selector, want)
}

func cell(queue, column string) string { return fmt.Sprintf(`tr[data-queue=%q] td.%s`, queue, column) }

// The overview shows an enqueue and a dead letter; the redrive button,
// once confirmed, moves the dead letter back to ready; the message page
// shows the body only when asked.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	ts := newTestServer(t, Options{RefreshEvery: 200 * time.Millisecond, DBFlag: "--db /srv/q.db"})
	b.allow(ts.url)
	ts.must(201, "POST", "/api/v1/queues/orders/messages", `[{"body":{"n":1}},{"body":{"n":2}},{"body":{"n":3}}]`)

	b.do(chromedp.Navigate(ts.url + "/"))
	b.wait("3 ready in the overview", textIs(cell("orders", "ready"), "3"))
	ts.must(201, "POST", "/api/v1/queues/orders/messages", `{"body":{"n":4},"priority":2}`)
	b.wait("4 ready after an enqueue", textIs(cell("orders", "ready"), "4"))
	id := deadLetter(t, ts.store, "orders", `{"to":"x@example.com"}`, "smtp: 550 mailbox unavailable")
	b.wait("a dead letter in the overview", textIs(cell("orders", "dead"), "1"))

	// The queue page, its dead letters grouped by error, the redrive button.
	b.do(chromedp.Click(chromedp.CSS(`tr[data-queue="orders"] a`)))
	b.wait("the queue page", textIs("#stat-ready .value", "4")+" && "+textIs("#stat-dead .value", "1"))
	b.do(chromedp.Click(chromedp.CSS(`a[data-state="dead"]`)))
	b.wait("the dead letter listed", fmt.Sprintf(`document.querySelector('#messages tr[data-id="%d"]') !== null`, id))
	b.wait("dead letters grouped by error", `(document.querySelector("#dead-groups")?.textContent ?? "").includes("smtp: 550 mailbox unavailable")`)
	b.do(chromedp.Click(chromedp.CSS(`button[data-action="redrive-all"]`)))
	b.wait("the dead letter back to ready", textIs("#stat-dead .value", "0")+" && "+textIs("#stat-ready .value", "5"))
	if d := b.lastDialog(); !strings.Contains(d, "daguq dlq redrive orders --db /srv/q.db") {
		t.Errorf("the confirmation does not show the command: %q", d)
	}
	if st, err := ts.store.Stats(context.Background(), "orders"); err != nil || st.Ready != 5 || st.Dead != 0 {
		t.Errorf("after the redrive button: %+v %v", st, err)
	}

	// Pause, confirmed.
	b.do(chromedp.Click(chromedp.CSS(`button[data-action="pause"]`)))
	b.wait("the paused badge", `document.querySelector("h1 .badge.paused") !== null && document.querySelector('button[data-action="resume"]') !== null`)
	if st, _ := ts.store.Stats(context.Background(), "orders"); !st.Paused {
		t.Errorf("the pause button did not pause")
	}
	// The result stays while the page refreshes: hiding it would move the
	// page under the pointer (a click on the next tab landed elsewhere).
	time.Sleep(3 * 200 * time.Millisecond)
	if shown, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector("#banner.info:not(.hidden)")?.textContent === "orders paused"`)); !shown {
		t.Errorf("the result of the pause left the page before the user did")
	}

	// The message page: the body only when asked.
	b.do(chromedp.Click(chromedp.CSS(`a[data-state="ready"]`)))
	b.wait("the message in the ready list", fmt.Sprintf(`document.querySelector('#messages tr[data-id="%d"] a') !== null`, id))
	b.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#messages tr[data-id="%d"] a`, id))))
	b.wait("the message page", `document.querySelector("#show-body") !== null && document.querySelector("dl.fields")?.textContent.includes("smtp: 550")`)
	if shown, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.body.textContent.includes("x@example.com")`)); shown {
		t.Errorf("the body is shown before it was asked for")
	}
	b.do(chromedp.Click(chromedp.ID("show-body")))
	b.wait("the body", `(document.querySelector("#body")?.textContent ?? "").includes('"to": "x@example.com"')`)

	// Read-only: the same pages without a button that changes anything.
	ro := startServer(t, ts.store, Options{ReadOnly: true, RefreshEvery: 200 * time.Millisecond})
	b.allow(ro.url)
	b.do(chromedp.Navigate(ro.url + "/#/q/orders/dead"))
	b.wait("the read-only queue page", textIs("#stat-ready .value", "5")+` && document.querySelector("#readonly:not(.hidden)") !== null`)
	if n, _ := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("button[data-action]").length`)); n != 0 {
		t.Errorf("read-only page has %d action buttons", n)
	}
	b.check()
}

// With a token, the page asks for it once and keeps a cookie that no
// script can read.
func TestDashboardLoginInBrowser(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	ts := newTestServer(t, Options{Token: testToken, RefreshEvery: 200 * time.Millisecond})
	b.allow(ts.url)
	ts.must(201, "POST", "/api/v1/queues/emails/messages", `{"body":1}`, "Authorization: Bearer "+testToken)

	b.do(chromedp.Navigate(ts.url + "/"))
	b.wait("the login page", `location.pathname === "/login" && document.querySelector("#token") !== null`)
	b.do(chromedp.SendKeys(chromedp.ID("token"), testToken), chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.wait("the overview after login", textIs(cell("emails", "ready"), "1"))
	if cookies, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.cookie`)); cookies != "" {
		t.Errorf("a script can read the cookies: %q", cookies)
	}
	b.do(chromedp.Click(chromedp.CSS(`#logout button`)))
	b.wait("the login page after logout", `location.pathname === "/login"`)
	b.check()
}

// TestDashboardScreenshot saves docs/dashboard.png (a queue's page, 1280 x
// 1000) from a database with six hours of history, when DAGUQ_SCREENSHOT=1.
func TestDashboardScreenshot(t *testing.T) {
	if os.Getenv("DAGUQ_SCREENSHOT") == "" {
		t.Skip("set DAGUQ_SCREENSHOT=1 to rewrite docs/dashboard.png")
	}
	b := newBrowser(t)
	path := filepath.Join(t.TempDir(), "q.db")
	populate(t, path)
	st, err := queuestore.Open(path, queuestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, st, Options{DB: "/var/lib/dagu/daguq/daguq.db"})
	b.allow(ts.url)
	b.do(chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(ts.url+"/#/q/orders"))
	b.wait("the charts", `document.querySelectorAll(".chart svg").length === 3 && document.querySelectorAll("#messages tr").length > 5`)
	time.Sleep(300 * time.Millisecond)
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("../docs/dashboard.png", png, 0o644); err != nil {
		t.Fatal(err)
	}
	b.check()
}

// populate fills a database with queues and six hours of history, one
// sample every five minutes, on a clock that ends now.
func populate(tb testing.TB, path string) {
	tb.Helper()
	end := time.Now()
	clock := end.Add(-6 * time.Hour)
	st, err := queuestore.Open(path, queuestore.Options{Now: func() time.Time { return clock }})
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			tb.Helper()
			tb.Fatal(err)
		}
	}
	enqueue := func(queue string, n int, prio int64, group string) {
		msgs := make([]queuestore.NewMessage, n)
		for i := range msgs {
			body := fmt.Sprintf(`{"order":%d,"customer":"c-%d","total":%d.%02d}`, clock.Unix()%100000+int64(i), i%37, 10+i%90, i%100)
			msgs[i] = queuestore.NewMessage{Queue: queue, Body: []byte(body), Priority: prio, Group: group}
		}
		_, err := st.Enqueue(ctx, msgs...)
		must(err)
	}
	work := func(queue string, n int, fail string, failEvery int) {
		lease, err := st.Claim(ctx, queuestore.ClaimOptions{Queue: queue, Max: n, Lease: time.Minute})
		must(err)
		if lease == nil {
			return
		}
		var good, bad []int64
		for i, m := range lease.Messages {
			if failEvery > 0 && i%failEvery == failEvery-1 {
				bad = append(bad, m.ID)
			} else {
				good = append(good, m.ID)
			}
		}
		if len(bad) > 0 {
			_, err = st.Nack(ctx, lease, queuestore.NackOptions{IDs: bad, Error: fail, MaxAttempts: 1})
			must(err)
		}
		if len(good) > 0 {
			must(st.Ack(ctx, lease, good...))
		}
	}
	must(st.SetLimit(ctx, "webhooks", 4))
	must(st.SetLimit(ctx, "orders", 4))
	must(st.Pause(ctx, "reports"))
	for step := 0; clock.Before(end); step++ {
		wave := math.Sin(float64(step) / 12)
		enqueue("orders", 30+int(25*wave), int64(step%3), "eu")
		enqueue("orders", 5, 5, "us")
		work("orders", 28+int(10*wave), "payments API: 503 Service Unavailable", 12)
		enqueue("emails", 12, 0, "")
		work("emails", 12, []string{"smtp: 550 mailbox unavailable", "smtp: 421 try again later"}[step%2], 9)
		enqueue("webhooks", 8, 0, "")
		work("webhooks", 8, "POST https://hooks.example.com: 502 Bad Gateway", 13)
		if step%4 == 0 {
			enqueue("reports", 2, 0, "daily")
		}
		must(st.RecordHistory(ctx))
		clock = clock.Add(5 * time.Minute)
	}
	clock = end
	for _, q := range []string{"webhooks", "webhooks", "orders", "orders", "orders"} { // batches being handled now
		_, err := st.Claim(ctx, queuestore.ClaimOptions{Queue: q, Max: 25, Lease: time.Hour, Consumer: "dagu-step-" + strconv.Itoa(os.Getpid())})
		must(err)
	}
}

// With a Dagu URL, a message's DAG runs and the dispatcher's runs link to
// their pages in Dagu, opened without an opener or a referrer.
func TestDashboardDaguLinksInBrowser(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	started := time.Now().Add(-time.Minute)
	ts := newTestServer(t, Options{RefreshEvery: 200 * time.Millisecond, DaguURL: "http://dagu.example:8080", Dispatch: func() DispatchStatus {
		return DispatchStatus{
			Rules: []DispatchRule{{Queue: "orders", DAG: "process", DAGName: "process", BatchSize: 10, Concurrency: 2}},
			Runs:  []DispatchRun{{Queue: "orders", DAG: "process", DAGName: "process", RunID: "daguq-1", Messages: 3, Phase: "running", Started: &started}},
		}
	}})
	b.allow(ts.url)
	res, err := ts.store.Enqueue(context.Background(), queuestore.NewMessage{Queue: "orders", Body: []byte(`{}`), EnqueuedBy: "producer/r 1"})
	if err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.Navigate(ts.url + "/"))
	b.wait("the dispatcher's rules and runs", textIs("#dispatch-rules tbody td:nth-child(2)", "process")+
		` && document.querySelector('#dispatch-runs tr[data-run="daguq-1"] a')?.getAttribute("href") === "http://dagu.example:8080/dag-runs/process/daguq-1"`)
	b.do(chromedp.Navigate(fmt.Sprintf("%s/#/q/orders/m/%d", ts.url, res.IDs[0])))
	b.wait("the enqueuing run, linked", `(() => { const a = document.querySelector("a#enqueued-by");
		return a !== null && a.textContent === "producer/r 1" && a.getAttribute("href") === "http://dagu.example:8080/dag-runs/producer/r%201" &&
			a.getAttribute("rel") === "noopener noreferrer" && a.getAttribute("target") === "_blank"; })()`)
	b.wait("no claiming run", textIs("dl.fields", "")+` || document.querySelector("#claimed-by") === null`)
	b.check()
}
