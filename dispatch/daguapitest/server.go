// Package daguapitest is a stand-in for Dagu's REST API (api/v1), for
// tests: the routes and JSON shapes a dispatcher uses, its answers built
// from the files in testdata, which were read from Dagu's OpenAPI spec (each
// names the commit). It starts runs, answers lookups and list calls, and
// lets a test move runs through their statuses, take the server down, or
// make a start answer 500 "DAG did not start".
package daguapitest

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

//go:embed testdata/*.json
var testdata embed.FS

// Dagu run status codes.
const (
	StatusNotStarted = 0
	StatusRunning    = 1
	StatusFailed     = 2
	StatusAborted    = 3
	StatusSucceeded  = 4
	StatusQueued     = 5
)

// Server is the stand-in. Its fields that are atomics may be set at any time.
type Server struct {
	tb  testing.TB
	srv *httptest.Server
	// URL is the server's address (without /api/v1).
	URL string

	token string // the bearer API key it requires ("": none)

	mu     sync.Mutex
	runs   map[string]*Run // by run id
	posts  map[string]int  // start requests per run id
	onRun  func(run *Run)  // called (without mu) after a run was created
	hidden map[string]bool // created but not yet visible (Dagu's 10 s window)

	// Down closes every connection: Dagu unreachable.
	Down atomic.Bool
	// Refused counts the connections closed while Down.
	Refused atomic.Int64
	// LateStarts: that many next starts answer 500 "DAG did not start" and
	// their runs stay invisible until a second start (which gets 409).
	LateStarts atomic.Int64
	// Lists and Gets count the list and lookup calls.
	Lists, Gets atomic.Int64
	// NoList answers 404 to the list call: per-run lookups only.
	NoList atomic.Bool
	// Enqueues counts the starts that came through /enqueue.
	Enqueues atomic.Int64
}

// Run is a run of the stand-in.
type Run struct {
	ID, DAG, Params string
	Status          int
	AutoRetryCount  int
	AutoRetryLimit  *int
}

// Param reads one KEY=value of the run's params.
func (r *Run) Param(key string) string {
	for _, kv := range strings.Fields(r.Params) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

var fakeRunIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// New starts a stand-in that requires the bearer API key token ("": no
// auth); it is closed at the test's cleanup.
func New(tb testing.TB, token string) *Server {
	tb.Helper()
	f := &Server{tb: tb, token: token, runs: map[string]*Run{}, posts: map[string]int{}, hidden: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/dags/{fileName}/start", f.start)
	mux.HandleFunc("POST /api/v1/dags/{fileName}/enqueue", f.start)
	mux.HandleFunc("GET /api/v1/dag-runs/{name}/{dagRunId}", f.get)
	mux.HandleFunc("GET /api/v1/dag-runs", f.list)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.Down.Load() {
			f.Refused.Add(1)
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
			f.answer(w, http.StatusUnauthorized, "error_unauthorized.json", nil)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	tb.Cleanup(f.srv.Close)
	f.URL = f.srv.URL
	return f
}

// OnRun sets a function called after each run was created (a DAG run
// starting); it may call Set from another goroutine.
func (f *Server) OnRun(fn func(run *Run)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onRun = fn
}

// Update changes a run under the server's lock.
func (f *Server) Update(id string, fn func(run *Run)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.runs[id])
}

// answer writes a testdata file with some fields replaced.
func (f *Server) answer(w http.ResponseWriter, status int, file string, set func(doc map[string]any)) {
	data, err := testdata.ReadFile("testdata/" + file)
	if err != nil {
		f.tb.Error(err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		f.tb.Error(err)
	}
	delete(doc, "_source")
	if set != nil {
		set(doc)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(doc)
}

func (f *Server) start(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Params   string `json:"params"`
		DAGRunID string `json:"dagRunId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !fakeRunIDRE.MatchString(req.DAGRunID) || len(req.DAGRunID) > 64 {
		f.tb.Errorf("start: bad request %+v (%v)", req, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	dag := r.PathValue("fileName")
	if strings.HasSuffix(r.URL.Path, "/enqueue") {
		f.Enqueues.Add(1)
	}
	f.mu.Lock()
	f.posts[req.DAGRunID]++
	if run, ok := f.runs[req.DAGRunID]; ok {
		delete(f.hidden, run.ID)
		f.mu.Unlock()
		f.answer(w, http.StatusConflict, "error_already_exists.json", func(doc map[string]any) {
			doc["message"] = fmt.Sprintf("dag-run ID %s already exists for DAG %s", req.DAGRunID, dag)
		})
		return
	}
	run := &Run{ID: req.DAGRunID, DAG: dag, Params: req.Params, Status: StatusRunning}
	f.runs[run.ID] = run
	late := false
	if f.LateStarts.Load() > 0 {
		f.LateStarts.Add(-1)
		f.hidden[run.ID] = true
		late = true
	}
	onRun := f.onRun
	f.mu.Unlock()
	if onRun != nil {
		onRun(run)
	}
	if late {
		f.answer(w, http.StatusInternalServerError, "error_did_not_start.json", nil)
		return
	}
	f.answer(w, http.StatusOK, "start_ok.json", func(doc map[string]any) { doc["dagRunId"] = run.ID })
}

func (f *Server) runDoc(run *Run, doc map[string]any) {
	doc["dagRunId"], doc["name"], doc["params"] = run.ID, run.DAG, run.Params
	doc["status"], doc["statusLabel"] = run.Status, statusLabels[run.Status]
	doc["autoRetryCount"] = run.AutoRetryCount
	if run.AutoRetryLimit != nil {
		doc["autoRetryLimit"] = *run.AutoRetryLimit
	}
}

var statusLabels = []string{"not_started", "running", "failed", "aborted", "succeeded", "queued", "partially_succeeded", "waiting", "rejected"}

func (f *Server) get(w http.ResponseWriter, r *http.Request) {
	f.Gets.Add(1)
	f.mu.Lock()
	run, ok := f.runs[r.PathValue("dagRunId")]
	if ok && (f.hidden[run.ID] || run.DAG != r.PathValue("name")) {
		ok = false
	}
	var cp Run
	if ok {
		cp = *run
	}
	f.mu.Unlock()
	if !ok {
		f.answer(w, http.StatusNotFound, "error_not_found.json", nil)
		return
	}
	f.answer(w, http.StatusOK, "run_details.json", func(doc map[string]any) {
		d := doc["dagRunDetails"].(map[string]any)
		f.runDoc(&cp, d)
		d["rootDAGRunName"], d["rootDAGRunId"] = cp.DAG, cp.ID
	})
}

func (f *Server) list(w http.ResponseWriter, r *http.Request) {
	f.Lists.Add(1)
	if f.NoList.Load() {
		f.answer(w, http.StatusNotFound, "error_not_found.json", nil)
		return
	}
	q := r.URL.Query()
	if q.Get("fromDate") == "" {
		f.tb.Errorf("list without fromDate: Dagu would list only today's runs")
	}
	if _, err := strconv.ParseInt(q.Get("fromDate"), 10, 64); err != nil {
		f.tb.Errorf("fromDate %q is not a unix time", q.Get("fromDate"))
	}
	var want []int
	for _, s := range q["status"] {
		n, _ := strconv.Atoi(s)
		want = append(want, n)
	}
	f.mu.Lock()
	var runs []map[string]any
	for _, run := range f.runs {
		if f.hidden[run.ID] || run.DAG != q.Get("name") || (len(want) > 0 && !slices.Contains(want, run.Status)) {
			continue
		}
		doc := map[string]any{}
		f.runDoc(run, doc)
		runs = append(runs, doc)
	}
	f.mu.Unlock()
	f.answer(w, http.StatusOK, "runs_list.json", func(doc map[string]any) {
		tmpl := doc["dagRuns"].([]any)[0].(map[string]any)
		out := []any{}
		for _, run := range runs {
			item := map[string]any{}
			for k, v := range tmpl {
				item[k] = v
			}
			for k, v := range run {
				item[k] = v
			}
			out = append(out, item)
		}
		doc["dagRuns"] = out
	})
}

// Set changes a run's status (the DAG run progressing).
func (f *Server) Set(id string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[id].Status = status
}

// SetAll sets the status of every run.
func (f *Server) SetAll(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.runs {
		r.Status = status
	}
}

// Snapshot returns the runs by id and the start requests per run id.
func (f *Server) Snapshot() (runs map[string]Run, posts map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	runs, posts = map[string]Run{}, map[string]int{}
	for id, r := range f.runs {
		runs[id] = *r
	}
	for id, n := range f.posts {
		posts[id] = n
	}
	return runs, posts
}
