package dispatch

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeDagu is a stand-in for Dagu's REST API (api/v1): the routes and JSON
// shapes a dispatcher uses, its answers built from the files in testdata
// (read from Dagu's OpenAPI spec; each names the commit).
type fakeDagu struct {
	tb  testing.TB
	srv *httptest.Server

	token string // the bearer API key it requires ("": none)

	mu     sync.Mutex
	runs   map[string]*fakeRun // by run id
	posts  map[string]int      // start requests per run id
	onRun  func(run *fakeRun)  // called (without mu) after a run was created
	hidden map[string]bool     // created but not yet visible (Dagu's 10 s window)

	down       atomic.Bool // close every connection: Dagu unreachable
	refused    atomic.Int64
	lateStarts atomic.Int64 // next starts answer 500 "DAG did not start" and stay hidden until a second start
	lists      atomic.Int64
	gets       atomic.Int64
	noList     atomic.Bool // answer 404 to the list call: per-run polling only
}

type fakeRun struct {
	ID, DAG, Params string
	Status          int
	AutoRetryCount  int
	AutoRetryLimit  *int
}

// param reads one KEY=value of the run's params.
func (r *fakeRun) param(key string) string {
	for _, kv := range strings.Fields(r.Params) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

var fakeRunIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func newFakeDagu(tb testing.TB) *fakeDagu {
	tb.Helper()
	f := &fakeDagu{tb: tb, token: "dagu_test_secret", runs: map[string]*fakeRun{}, posts: map[string]int{}, hidden: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/dags/{fileName}/start", f.start)
	mux.HandleFunc("POST /api/v1/dags/{fileName}/enqueue", f.start)
	mux.HandleFunc("GET /api/v1/dag-runs/{name}/{dagRunId}", f.get)
	mux.HandleFunc("GET /api/v1/dag-runs", f.list)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			f.refused.Add(1)
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
	return f
}

func (f *fakeDagu) client(tb testing.TB) *Client {
	tb.Helper()
	c, err := NewClient(f.srv.URL, Auth{Token: f.token}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// answer writes a testdata file with some fields replaced.
func (f *fakeDagu) answer(w http.ResponseWriter, status int, file string, set func(doc map[string]any)) {
	data, err := os.ReadFile(filepath.Join("testdata", file))
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

func (f *fakeDagu) start(w http.ResponseWriter, r *http.Request) {
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
	run := &fakeRun{ID: req.DAGRunID, DAG: dag, Params: req.Params, Status: StatusRunning}
	f.runs[run.ID] = run
	late := false
	if f.lateStarts.Load() > 0 {
		f.lateStarts.Add(-1)
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

func (f *fakeDagu) runDoc(run *fakeRun, doc map[string]any) {
	doc["dagRunId"], doc["name"], doc["params"] = run.ID, run.DAG, run.Params
	doc["status"], doc["statusLabel"] = run.Status, statusLabels[run.Status]
	doc["autoRetryCount"] = run.AutoRetryCount
	if run.AutoRetryLimit != nil {
		doc["autoRetryLimit"] = *run.AutoRetryLimit
	}
}

var statusLabels = []string{"not_started", "running", "failed", "aborted", "succeeded", "queued", "partially_succeeded", "waiting", "rejected"}

func (f *fakeDagu) get(w http.ResponseWriter, r *http.Request) {
	f.gets.Add(1)
	f.mu.Lock()
	run, ok := f.runs[r.PathValue("dagRunId")]
	if ok && (f.hidden[run.ID] || run.DAG != r.PathValue("name")) {
		ok = false
	}
	var cp fakeRun
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

func (f *fakeDagu) list(w http.ResponseWriter, r *http.Request) {
	f.lists.Add(1)
	if f.noList.Load() {
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

// set changes a run's status (the DAG run progressing).
func (f *fakeDagu) set(id string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[id].Status = status
}

// setAll sets the status of every run.
func (f *fakeDagu) setAll(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.runs {
		r.Status = status
	}
}

func (f *fakeDagu) snapshot() (runs map[string]fakeRun, posts map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	runs, posts = map[string]fakeRun{}, map[string]int{}
	for id, r := range f.runs {
		runs[id] = *r
	}
	for id, n := range f.posts {
		posts[id] = n
	}
	return runs, posts
}
