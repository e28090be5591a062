package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

func TestEnqueueForms(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{})
	// One object, an array, JSON Lines: every key of the enqueue step.
	r := ts.must(201, "POST", "/api/v1/queues/orders/messages", `{"body":{"id":1},"priority":5,"group":"eu","dedupe_key":"o-1","max_attempts":3}`)
	if got := r.json(t); got["enqueued"] != 1.0 || len(got["ids"].([]any)) != 1 {
		t.Fatalf("one object: %s", r.body)
	}
	ts.must(201, "POST", "/api/v1/queues/orders/messages", `[{"body":"a"},{"body":[1,2],"delay":"1h"},{"body":3,"not_before":"2999-01-01T00:00:00Z"}]`)
	r = ts.must(201, "POST", "/api/v1/queues/orders/messages", "{\"body\":{\"n\":1}}\n\n{\"body\":{\"n\":2},\"delay\":30}\n{\"body\":{\"id\":1},\"dedupe_key\":\"o-1\"}\n",
		"Content-Type: application/x-ndjson")
	if got := r.json(t); got["enqueued"] != 2.0 || got["duplicates"] != 1.0 {
		t.Fatalf("JSON Lines with a duplicate: %s", r.body)
	}
	st, err := ts.store.Stats(context.Background(), "orders")
	if err != nil || st.Ready != 3 || st.Delayed != 3 {
		t.Fatalf("stats after the enqueues: %+v %v", st, err)
	}

	q := ts.must(200, "GET", "/api/v1/queues/orders", "").json(t)
	if q["ready"] != 3.0 || q["delayed"] != 3.0 || q["paused"] != false {
		t.Errorf("GET queue: %v", q)
	}
	list := ts.must(200, "GET", "/api/v1/queues", "").json(t)["queues"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["queue"] != "orders" {
		t.Errorf("GET queues: %v", list)
	}
	ts.must(404, "GET", "/api/v1/queues/nosuch", "")

	// Lists carry no bodies; the message page asks for one.
	msgs := ts.must(200, "GET", "/api/v1/queues/orders/messages?state=ready", "").json(t)["messages"].([]any)
	if len(msgs) != 3 {
		t.Fatalf("ready list: %v", msgs)
	}
	first := msgs[0].(map[string]any)
	if first["priority"] != 5.0 || first["group"] != "eu" || first["max_attempts"] != 3.0 || first["body"] != nil {
		t.Errorf("first ready message (highest priority, no body): %v", first)
	}
	id := int64(first["id"].(float64))
	m := ts.must(200, "GET", fmt.Sprintf("/api/v1/queues/orders/messages/%d", id), "").json(t)
	if m["body"] != nil || m["state"] != "ready" || m["dedupe_key"] != "o-1" {
		t.Errorf("message without body=true: %v", m)
	}
	m = ts.must(200, "GET", fmt.Sprintf("/api/v1/queues/orders/messages/%d?body=true", id), "").json(t)
	if b, _ := json.Marshal(m["body"]); string(b) != `{"id":1}` {
		t.Errorf("body: %s", b)
	}
	waiting := ts.must(200, "GET", "/api/v1/queues/orders/messages?state=delayed", "").json(t)["messages"].([]any)
	if len(waiting) != 3 || waiting[0].(map[string]any)["state"] != "waiting" {
		t.Errorf("delayed list: %v", waiting)
	}
	// Filters.
	if got := ts.must(200, "GET", "/api/v1/queues/orders/messages?priority=5", "").json(t)["messages"].([]any); len(got) != 1 {
		t.Errorf("priority filter: %v", got)
	}
	if got := ts.must(200, "GET", "/api/v1/queues/orders/messages?group=eu", "").json(t)["messages"].([]any); len(got) != 1 {
		t.Errorf("group filter: %v", got)
	}
	if got := ts.must(200, "GET", "/api/v1/queues/orders/messages?group=", "").json(t)["messages"].([]any); len(got) != 2 {
		t.Errorf("no-group filter: %v", got)
	}
	ts.must(404, "GET", "/api/v1/queues/orders/messages/999999", "")
}

func TestDeadLettersAndSettings(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{})
	a1 := deadLetter(t, ts.store, "mail", `{"to":"a"}`, "smtp: 550 no such user")
	a2 := deadLetter(t, ts.store, "mail", `{"to":"b"}`, "smtp: 550 no such user")
	b1 := deadLetter(t, ts.store, "mail", `{"to":"c"}`, "timeout after 30s")

	dead := ts.must(200, "GET", "/api/v1/queues/mail/messages?state=dead", "").json(t)["messages"].([]any)
	if len(dead) != 3 || dead[0].(map[string]any)["finished_at"] == nil || dead[0].(map[string]any)["last_error"] == "" {
		t.Fatalf("dead list: %v", dead)
	}
	if got := ts.must(200, "GET", "/api/v1/queues/mail/messages?state=dead&error=SMTP", "").json(t)["messages"].([]any); len(got) != 2 {
		t.Errorf("error filter (any case): %v", got)
	}
	groups := ts.must(200, "GET", "/api/v1/queues/mail/dead/groups", "").json(t)["groups"].([]any)
	if len(groups) != 2 {
		t.Fatalf("groups: %v", groups)
	}
	g0 := groups[0].(map[string]any)
	if g0["error"] != "smtp: 550 no such user" || g0["count"] != 2.0 {
		t.Errorf("largest group first: %v", g0)
	}

	// Redrive one group by ids, purge the other.
	r := ts.must(200, "POST", "/api/v1/queues/mail/dead/redrive", fmt.Sprintf(`{"ids":[%d,%d]}`, a1, a2)).json(t)
	if r["redriven"] != 2.0 {
		t.Errorf("redrive: %v", r)
	}
	r = ts.must(200, "POST", "/api/v1/queues/mail/dead/purge", fmt.Sprintf(`{"ids":[%d]}`, b1)).json(t)
	if r["purged"] != 1.0 {
		t.Errorf("purge dead: %v", r)
	}
	st, _ := ts.store.Stats(context.Background(), "mail")
	if st.Ready != 2 || st.Dead != 0 {
		t.Errorf("after redrive and purge: %+v", st)
	}
	// Without a body: all of them.
	deadLetter(t, ts.store, "mail", `{"to":"d"}`, "x")
	if r := ts.must(200, "POST", "/api/v1/queues/mail/dead/redrive", "").json(t); r["redriven"] != 1.0 {
		t.Errorf("redrive all: %v", r)
	}

	// Pause, resume, limit answer the queue as it is now.
	if q := ts.must(200, "POST", "/api/v1/queues/mail/pause", "").json(t); q["paused"] != true {
		t.Errorf("pause: %v", q)
	}
	if q := ts.must(200, "PUT", "/api/v1/queues/mail/limit", `{"limit":4}`).json(t); q["in_flight_limit"] != 4.0 || q["paused"] != true {
		t.Errorf("limit: %v", q)
	}
	if q := ts.must(200, "POST", "/api/v1/queues/mail/resume", "").json(t); q["paused"] != false {
		t.Errorf("resume: %v", q)
	}
	if r := ts.must(200, "DELETE", "/api/v1/queues/mail/messages", "").json(t); r["purged"] != 3.0 {
		t.Errorf("purge: %v", r)
	}
	st, _ = ts.store.Stats(context.Background(), "mail")
	if st.Ready+st.Dead+st.Delayed+st.InFlight != 0 || st.InFlightLimit != 4 {
		t.Errorf("after purge: %+v", st)
	}
}

// Bad input of every kind: a clear 4xx naming the problem, and nothing
// written.
func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{MaxBodyBytes: 4096})
	ts.must(201, "POST", "/api/v1/queues/orders/messages", `[{"body":1},{"body":2}]`)
	deadLetter(t, ts.store, "orders", `{"dead":1}`, "boom")
	before := snapshot(t, ts.store)
	big := `[` + strings.Repeat(`{"body":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},`, 200) + `{"body":1}]`
	tests := []struct {
		name, method, path, body string
		headers                  []string
		code                     int
		field, says              string
	}{
		{"malformed JSON", "POST", "/api/v1/queues/orders/messages", `{"body":`, nil, 400, "", "must be a JSON object"},
		{"malformed array", "POST", "/api/v1/queues/orders/messages", `[{"body":1},`, nil, 400, "", "not a JSON array"},
		{"second message bad", "POST", "/api/v1/queues/orders/messages", `[{"body":1},{"body":2,"priority":"high"}]`, nil, 400, "priority", "message 1"},
		{"unknown key", "POST", "/api/v1/queues/orders/messages", `{"body":1,"prio":3}`, nil, 400, "", `unknown field "prio"`},
		{"no body key", "POST", "/api/v1/queues/orders/messages", `{"priority":3}`, nil, 400, "body", `"body" is required`},
		{"priority out of range", "POST", "/api/v1/queues/orders/messages", `[{"body":1},{"body":1,"priority":2000000}]`, nil, 400, "priority", "priority must be"},
		{"max_attempts", "POST", "/api/v1/queues/orders/messages", `{"body":1,"max_attempts":-1}`, nil, 400, "max_attempts", "max_attempts must be"},
		{"delay and not_before", "POST", "/api/v1/queues/orders/messages", `{"body":1,"delay":"1s","not_before":"@daily"}`, nil, 400, "delay", "exclusive"},
		{"bad delay", "POST", "/api/v1/queues/orders/messages", `{"body":1,"delay":"soon"}`, nil, 400, "delay", "delay must be"},
		{"bad not_before", "POST", "/api/v1/queues/orders/messages", `{"body":1,"not_before":"tomorrow"}`, nil, 400, "not_before", "not_before must be"},
		{"bad JSON line", "POST", "/api/v1/queues/orders/messages", "{\"body\":1}\n{\"body\":\n", []string{"Content-Type: application/x-ndjson"}, 400, "", "line 2"},
		{"empty body", "POST", "/api/v1/queues/orders/messages", " ", nil, 400, "body", "no messages"},
		{"empty array", "POST", "/api/v1/queues/orders/messages", "[]", nil, 400, "body", "no messages"},
		{"form content type", "POST", "/api/v1/queues/orders/messages", `{"body":1}`, []string{"Content-Type: application/x-www-form-urlencoded"}, 415, "", "application/json"},
		{"oversized body", "POST", "/api/v1/queues/orders/messages", big, nil, 413, "", "larger than 4096 bytes"},
		{"bad queue name", "POST", "/api/v1/queues/bad%20name/messages", `{"body":1}`, nil, 400, "queue", "queue name"},
		{"bad queue name on pause", "POST", "/api/v1/queues/a$b/pause", "", nil, 400, "queue", "queue name"},
		{"long queue name", "GET", "/api/v1/queues/" + strings.Repeat("q", 129), "", nil, 400, "queue", "1..128"},
		{"unknown route", "GET", "/api/v1/nothing", "", nil, 404, "", "no such route"},
		{"unknown route write", "POST", "/api/v1/queues/orders/explode", "", nil, 404, "", "no such route"},
		{"wrong method", "PATCH", "/api/v1/queues/orders/messages", `{"body":1}`, nil, 405, "", "GET, POST, DELETE"},
		{"bad state", "GET", "/api/v1/queues/orders/messages?state=gone", "", nil, 400, "state", "state must be"},
		{"bad limit", "GET", "/api/v1/queues/orders/messages?limit=0", "", nil, 400, "limit", "limit must be"},
		{"bad priority filter", "GET", "/api/v1/queues/orders/messages?priority=x", "", nil, 400, "priority", "integer"},
		{"bad id", "GET", "/api/v1/queues/orders/messages/-1", "", nil, 400, "id", "positive"},
		{"bad history span", "GET", "/api/v1/queues/orders/history?since=9999h", "", nil, 400, "since", "since must be"},
		{"limit missing", "PUT", "/api/v1/queues/orders/limit", `{}`, nil, 400, "limit", "limit is required"},
		{"limit no body", "PUT", "/api/v1/queues/orders/limit", ``, nil, 400, "", "JSON body"},
		{"limit negative", "PUT", "/api/v1/queues/orders/limit", `{"limit":-1}`, nil, 400, "limit", "0..1000000"},
		{"limit a string", "PUT", "/api/v1/queues/orders/limit", `{"limit":"4"}`, nil, 400, "limit", "limit must be"},
		{"limit unknown key", "PUT", "/api/v1/queues/orders/limit", `{"limit":4,"x":1}`, nil, 400, "", "unknown field"},
		{"redrive bad ids", "POST", "/api/v1/queues/orders/dead/redrive", `{"ids":[0]}`, nil, 400, "ids", "positive"},
		{"redrive ids not a list", "POST", "/api/v1/queues/orders/dead/redrive", `{"ids":3}`, nil, 400, "ids", "ids must be"},
		{"purge dead malformed", "POST", "/api/v1/queues/orders/dead/purge", `{"ids":[1`, nil, 400, "", "not the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(tt.method, tt.path, tt.body, tt.headers...)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
			}
			var e errorBody
			if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
				t.Fatalf("not an error object: %v %s", err, r.body)
			}
			if !strings.Contains(e.Error, tt.says) || e.Field != tt.field {
				t.Errorf("error %q field %q, want it to say %q with field %q", e.Error, e.Field, tt.says, tt.field)
			}
			if got := r.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if after := snapshot(t, ts.store); after != before {
				t.Errorf("the database changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{ReadOnly: true})
	deadLetter(t, ts.store, "orders", `{}`, "boom")
	before := snapshot(t, ts.store)
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/api/v1/queues/orders/messages", `{"body":1}`},
		{"DELETE", "/api/v1/queues/orders/messages", ""},
		{"POST", "/api/v1/queues/orders/dead/redrive", ""},
		{"POST", "/api/v1/queues/orders/dead/purge", ""},
		{"POST", "/api/v1/queues/orders/pause", ""},
		{"POST", "/api/v1/queues/orders/resume", ""},
		{"PUT", "/api/v1/queues/orders/limit", `{"limit":1}`},
	} {
		r := ts.must(403, w.method, w.path, w.body)
		if !strings.Contains(string(r.body), "read-only") {
			t.Errorf("%s %s: %s", w.method, w.path, r.body)
		}
	}
	if after := snapshot(t, ts.store); after != before {
		t.Errorf("read-only server changed the database")
	}
	ts.must(200, "GET", "/api/v1/queues/orders/messages?state=dead", "")
	if info := ts.must(200, "GET", "/api/v1/info", "").json(t); info["read_only"] != true {
		t.Errorf("info: %v", info)
	}
}

func TestHistoryAndRates(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	dir := t.TempDir()
	st, err := queuestore.Open(dir+"/q.db", queuestore.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.Enqueue(ctx, queuestore.NewMessage{Queue: "orders", Body: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := st.RecordHistory(ctx); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute)
	}
	ts := startServer(t, st, Options{Now: now})
	h := ts.must(200, "GET", "/api/v1/queues/orders/history?since=1h", "").json(t)
	samples := h["samples"].([]any)
	if len(samples) != 3 || samples[0].(map[string]any)["ready"] != 1.0 {
		t.Fatalf("history: %v", h)
	}
	q := ts.must(200, "GET", "/api/v1/queues/orders", "").json(t)
	// Three minutes of samples: the rates are known (zero until the store
	// counts enqueues and acks), and with nothing going out the queue is not
	// draining.
	if q["in_per_second"] == nil || q["out_per_second"] == nil || q["drain_seconds"] != nil {
		t.Errorf("rates: %v", q)
	}
}

// The server records a sample at start and then every HistoryEvery.
func TestServerRecordsHistory(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{HistoryEvery: 20 * time.Millisecond})
	ts.must(201, "POST", "/api/v1/queues/orders/messages", `{"body":1}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := ts.store.History(context.Background(), "orders", time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(h) >= 2 && h[len(h)-1].Ready == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no history samples after 10s: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var inlineHandler = regexp.MustCompile(`\son[a-z]+\s*=`)

func TestPageAndSecurityHeaders(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{})
	for _, p := range []struct{ path, ctype, has string }{
		{"/", "text/html", `<script src="/app.js"`},
		{"/app.js", "text/javascript", "use strict"},
		{"/style.css", "text/css", ":root"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
		{"/api/v1/openapi.yaml", "application/yaml", "openapi: 3"},
		{"/api/v1/queues", "application/json", "queues"},
	} {
		r := ts.must(200, "GET", p.path, "")
		if !strings.HasPrefix(r.header.Get("Content-Type"), p.ctype) || !strings.Contains(string(r.body), p.has) {
			t.Errorf("GET %s: %s %.80q", p.path, r.header.Get("Content-Type"), r.body)
		}
		if got := r.header.Get("Content-Security-Policy"); !strings.HasPrefix(got, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", p.path, got)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", p.path, r.header)
		}
	}
	// No inline script or style that the CSP would block.
	for _, name := range []string{"web/index.html", "web/login.html"} {
		b, _ := webFiles.ReadFile(name)
		s := string(b)
		if strings.Contains(s, "<style") || strings.Contains(s, "style=") || strings.Contains(s, "<script>") || inlineHandler.MatchString(s) {
			t.Errorf("%s has inline script or style", name)
		}
		if strings.Contains(s, "http://") || strings.Contains(s, "https://") {
			t.Errorf("%s refers to another origin", name)
		}
	}
	etag := ts.must(200, "GET", "/app.js", "").header.Get("ETag")
	ts.must(http.StatusNotModified, "GET", "/app.js", "", "If-None-Match: "+etag)
}
