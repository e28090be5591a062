//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/proctest"
	"github.com/daguq/daguq/queuestore"
)

// daguServer is a real Dagu server (dagu start-all) on a temporary DAGU_HOME
// holding the example DAGs, the suite's own DAGs and daguq's step types.
type daguServer struct {
	e    *env
	home string
	api  string // http://127.0.0.1:PORT/api/v1
	db   string // the database every step uses: $DAGU_HOME/daguq/daguq.db
	dagu string
}

// Dagu run status codes (REST API v1).
const (
	statusRunning            = 1
	statusFailed             = 2
	statusAborted            = 3
	statusSucceeded          = 4
	statusQueued             = 5
	statusPartiallySucceeded = 6
	nodeSkipped              = 5
)

func startDaguServer(t *testing.T) *daguServer { return startDaguServerWith(t, 0) }

// startDaguServerWith is startDaguServer with Dagu's coordinator listening
// on coordinatorPort (0: no coordinator), for `dagu worker` processes.
func startDaguServerWith(t *testing.T, coordinatorPort int) *daguServer {
	t.Helper()
	dagu := daguBin()
	if dagu == "" {
		t.Skip(skipNoDagu)
	}
	e := newEnv(t)
	home := filepath.Join(e.dir, "dagu")
	s := &daguServer{e: e, home: home, db: filepath.Join(home, "daguq", "daguq.db"), dagu: dagu}
	e.setenv("DAGU_HOME", home)
	e.setenv("DAGUQ_DB", "") // steps find the database under DAGU_HOME, as on a real server
	e.db = s.db
	if err := os.MkdirAll(filepath.Join(home, "dags"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	coordinator := "coordinator:\n  enabled: false\n"
	if coordinatorPort > 0 {
		coordinator = fmt.Sprintf("coordinator:\n  enabled: true\n  host: 127.0.0.1\n  port: %d\n  health_port: 0\n", coordinatorPort)
	}
	write(t, filepath.Join(home, "config.yaml"), fmt.Sprintf(`host: 127.0.0.1
port: %d
auth:
  mode: none
%s# DAGUQ_EXAMPLE_TRACE reaches the handlers (Dagu passes DAGU_* and a few more).
env_passthrough_prefixes: [DAGUQ_]
`, port, coordinator))
	installStepTypes(t, e, home)
	copyDir(t, filepath.Join(repoRoot, "dags"), filepath.Join(home, "dags"))
	copyDir(t, filepath.Join(repoRoot, "integration", "testdata", "dags"), filepath.Join(home, "dags"))

	startLogged(t, e.command(dagu, "start-all", "--host", "127.0.0.1", "--port", fmt.Sprint(port)), filepath.Join(e.dir, "dagu-server.log"))
	s.api = fmt.Sprintf("http://127.0.0.1:%d/api/v1", port)
	waitFor(t, 30*time.Second, "Dagu's /health", func() bool {
		resp, err := http.Get(s.api + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// installStepTypes writes a base config of our own to home, so Dagu does
// not write its default one (which retries failed DAG runs), then merges
// daguq's step types into it.
func installStepTypes(t *testing.T, e *env, home string) {
	t.Helper()
	write(t, filepath.Join(home, "base.yaml"), "# daguq integration suite\nhist_retention_days: 1\nmax_clean_up_time_sec: 5\n")
	cmd := e.command("daguq", "dagu-config", "--install", "--bin", daguqBin)
	cmd.Env = proctest.Setenv(cmd.Env, "DAGU_HOME", home)
	if r := proctest.Run(t, cmd, time.Minute); r.Code != 0 {
		t.Fatalf("daguq dagu-config --install: %s", r)
	}
}

// startLogged starts a long-running Dagu process (in a process group of
// its own) with its output in log; at cleanup it is stopped, and its log's
// tail shown when the test failed.
func startLogged(t *testing.T, cmd *exec.Cmd, logPath string) {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (tail):\n%s", filepath.Base(logPath), tail(string(b), 3000))
		}
	})
}

var runSeq atomic.Int64

// start starts a DAG through the REST API with params and returns the run id.
func (s *daguServer) start(t *testing.T, dag string, params map[string]string) string {
	t.Helper()
	id := fmt.Sprintf("%s-%d-%d", dag, time.Now().UnixNano()%1e6, runSeq.Add(1))
	body := map[string]any{"dagRunId": id}
	if params != nil {
		p, _ := json.Marshal(params)
		body["params"] = string(p)
	}
	code, resp := s.post(t, "/dags/"+dag+"/start", body)
	if code != http.StatusOK || !strings.Contains(resp, id) {
		t.Fatalf("start %s: HTTP %d %s", dag, code, resp)
	}
	return id
}

func (s *daguServer) post(t *testing.T, path string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(s.api+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (s *daguServer) get(t *testing.T, path string, into any) int {
	t.Helper()
	resp, err := http.Get(s.api + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, b)
		}
	}
	return resp.StatusCode
}

type runNode struct {
	Step struct {
		ID string `json:"id"`
	} `json:"step"`
	Status      int    `json:"status"`
	StatusLabel string `json:"statusLabel"`
	Error       string `json:"error"`
	Stdout      string `json:"stdout"`
	Stderr      string `json:"stderr"`
}

type runDetails struct {
	WorkerID    string    `json:"workerId"` // the `dagu worker` that ran it (distributed mode)
	Status      int       `json:"status"`
	StatusLabel string    `json:"statusLabel"`
	Params      string    `json:"params"`
	StartedAt   string    `json:"startedAt"`
	FinishedAt  string    `json:"finishedAt"`
	Nodes       []runNode `json:"nodes"`
}

func (r runDetails) node(id string) runNode {
	for _, n := range r.Nodes {
		if n.Step.ID == id {
			return n
		}
	}
	return runNode{}
}

func (r runDetails) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s (params %s)", r.StatusLabel, r.Params)
	for _, n := range r.Nodes {
		fmt.Fprintf(&b, "\n  %s: %s %s", n.Step.ID, n.StatusLabel, strings.TrimSpace(n.Error))
	}
	return b.String()
}

// details is the run's current state (ok false: not known yet).
func (s *daguServer) details(t *testing.T, dag, id string) (runDetails, bool) {
	t.Helper()
	var resp struct {
		DagRunDetails runDetails `json:"dagRunDetails"`
	}
	if s.get(t, "/dag-runs/"+dag+"/"+id, &resp) != http.StatusOK {
		return runDetails{}, false
	}
	return resp.DagRunDetails, true
}

// wait waits for the run to finish and returns it.
func (s *daguServer) wait(t *testing.T, dag, id string) runDetails {
	t.Helper()
	var r runDetails
	waitFor(t, 2*time.Minute, "run "+dag+"/"+id, func() bool {
		var ok bool
		r, ok = s.details(t, dag, id)
		return ok && r.Status != 0 && r.Status != statusRunning && r.Status != statusQueued
	})
	return r
}

// run starts a DAG and waits for it; it must end with want.
func (s *daguServer) run(t *testing.T, dag string, params map[string]string, want int) (string, runDetails) {
	t.Helper()
	id := s.start(t, dag, params)
	r := s.wait(t, dag, id)
	if r.Status != want {
		t.Fatalf("%s: %v\nwant status %d", dag, r, want)
	}
	return id, r
}

// output is one captured output of a run (key in lower case, as Dagu gives
// it). Dagu writes the outputs a moment after the run's status: wait for it.
func (s *daguServer) output(t *testing.T, dag, id, key string) string {
	t.Helper()
	var resp struct {
		Outputs map[string]string `json:"outputs"`
	}
	waitFor(t, 10*time.Second, "output "+key+" of "+dag+"/"+id, func() bool {
		return s.get(t, "/dag-runs/"+dag+"/"+id+"/outputs", &resp) == http.StatusOK && resp.Outputs[key] != ""
	})
	return resp.Outputs[key]
}

func decodeOutput[T any](t *testing.T, text string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("output %q: %v", text, err)
	}
	return v
}

// TestDaguServer runs the example DAGs in a real Dagu server, driven through
// its REST API, and checks Dagu's run statuses and the store.
func TestDaguServer(t *testing.T) {
	s := startDaguServer(t)
	st := openStore(t, s.db)

	t.Run("producer via REST, then the cron consumer", func(t *testing.T) {
		t.Parallel()
		// A literal $ survives too: Dagu keeps param values as given, and
		// daguq expands ${PAYLOAD} once.
		payload := `{"order": 42, "note": "it's a \"quoted\"\nline  with  spaces", "city": "Zürich", "price": "$5 $HOME ${HOME} \\$x"}`
		params := map[string]string{"QUEUE": "rest-orders", "PAYLOAD": payload, "PRIORITY": "7", "DEDUPE_KEY": "order-42"}
		id, _ := s.run(t, "producer", params, statusSucceeded)
		out := decodeOutput[struct{ Enqueued, Duplicates int }](t, s.output(t, "producer", id, "enqueued"))
		if out.Enqueued != 1 {
			t.Errorf("first request: %+v, want 1 enqueued", out)
		}
		// The same request again (a client retrying): deduplicated.
		id, _ = s.run(t, "producer", params, statusSucceeded)
		if out := decodeOutput[struct{ Enqueued, Duplicates int }](t, s.output(t, "producer", id, "enqueued")); out.Duplicates != 1 {
			t.Errorf("repeated request: %+v, want 1 duplicate", out)
		}
		msgs, err := st.Peek(t.Context(), "rest-orders", queuestore.PeekOptions{})
		var want bytes.Buffer
		json.Compact(&want, []byte(payload))
		if err != nil || len(msgs) != 1 || string(msgs[0].Body) != want.String() || msgs[0].Priority != 7 {
			t.Fatalf("rest-orders holds %+v (%v), want one message %s with priority 7", msgs, err, want.String())
		}

		// The cron consumer of "orders" (run now, not waiting for the minute).
		s.run(t, "producer", map[string]string{"QUEUE": "orders", "PAYLOAD": `{"order": 43}`}, statusSucceeded)
		s.run(t, "consumer-cron", nil, statusSucceeded)
		if got := stats(t, st, "orders"); got.Ready+got.InFlight+got.Delayed != 0 {
			t.Errorf("orders after the consumer: %+v", got)
		}
		if len(sentMessages(t, s.e.trace, "orders")) == 0 {
			t.Errorf("send-batch.sh never saw the order")
		}
		// Nothing ready: the run ends at once and says why.
		id, r := s.run(t, "consumer-cron", nil, statusSucceeded)
		drained := decodeOutput[summary](t, s.output(t, "consumer-cron", id, "drained"))
		started, _ := time.Parse(time.RFC3339, r.StartedAt)
		finished, _ := time.Parse(time.RFC3339, r.FinishedAt)
		if drained.Skipped != "empty" || drained.Batches != 0 || finished.Sub(started) > 3*time.Second {
			t.Errorf("empty run: %+v in %v, want skipped_reason empty at once", drained, finished.Sub(started))
		}
		var dag map[string]any
		s.get(t, "/dags/consumer-cron", &dag)
		if b, _ := json.Marshal(dag); !bytes.Contains(b, []byte(`* * * * *`)) {
			t.Errorf("consumer-cron's schedule is not registered: %s", tail(string(b), 500))
		}
	})

	t.Run("batch processing", func(t *testing.T) {
		t.Parallel()
		var msgs []queuestore.NewMessage
		for i := range 200 {
			msgs = append(msgs, queuestore.NewMessage{Queue: "emails", Body: []byte(fmt.Sprintf(`{"to":"u%d@example.com"}`, i))})
		}
		msgs = append(msgs, queuestore.NewMessage{Queue: "emails", Body: []byte(`{"to":"x","fail":true}`)},
			queuestore.NewMessage{Queue: "emails", Body: []byte(`{"to":"y","fail":true}`)})
		enqueue(t, st, msgs...)
		id, _ := s.run(t, "batch-processing", nil, statusSucceeded)
		sum := decodeOutput[summary](t, s.output(t, "batch-processing", id, "summary"))
		if sum.Acked != 200 || sum.Retried != 2 || sum.Lost != 0 {
			t.Errorf("summary %+v, want 200 acked, 2 retried", sum)
		}
		if got := stats(t, st, "emails"); got.Ready+got.InFlight != 0 || got.Delayed != 2 {
			t.Errorf("emails: %+v, want 2 waiting for their retry", got)
		}
		sizes := map[string]int{}
		for _, m := range sentMessages(t, s.e.trace, "emails") {
			sizes[m.batch]++
		}
		for batch, n := range sizes {
			if n > 50 {
				t.Errorf("batch %s had %d messages, batch_size is 50", batch, n)
			}
		}
	})

	t.Run("priority lanes", func(t *testing.T) {
		t.Parallel()
		var msgs []queuestore.NewMessage
		for i := range 40 {
			prio := int64(i % 3 * 5) // 0, 5, 10
			msgs = append(msgs, queuestore.NewMessage{Queue: "tickets", Priority: prio, Body: []byte(fmt.Sprintf(`{"t":%d}`, i))})
		}
		enqueue(t, st, msgs...)
		s.run(t, "priority-lanes", nil, statusSucceeded)
		lines := sentMessages(t, s.e.trace, "tickets")
		if len(lines) != 40 {
			t.Fatalf("%d tickets handled, want 40", len(lines))
		}
		bulk := false
		for i, m := range lines {
			if m.priority < 10 {
				bulk = true
			} else if bulk {
				t.Fatalf("urgent ticket %d (priority %d) handled after bulk ones, at position %d", m.id, m.priority, i)
			}
		}
	})

	t.Run("global pool across two DAGs", func(t *testing.T) {
		t.Parallel()
		for _, group := range []string{"orders", "customers"} {
			var msgs []queuestore.NewMessage
			for i := range 20 {
				msgs = append(msgs, queuestore.NewMessage{Queue: "geocoder", Group: group, Body: []byte(fmt.Sprintf(`{"addr":%d}`, i))})
			}
			enqueue(t, st, msgs...)
		}
		var wg sync.WaitGroup
		for _, dag := range []string{"pool-orders", "pool-customers"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.run(t, dag, nil, statusSucceeded)
			}()
		}
		wg.Wait()
		overlap, calls, messages := serviceCalls(t, s.e.trace)
		if overlap > 2 || calls != 4 || messages != 40 {
			t.Errorf("%d calls carrying %d messages, at most %d at once; want 4 calls, 40 messages, at most 2 at once", calls, messages, overlap)
		}
		t.Logf("service calls at once: at most %d", overlap)
		if got := stats(t, st, "geocoder"); got.InFlightLimit != 2 || got.Ready+got.InFlight+got.Delayed != 0 {
			t.Errorf("geocoder: %+v", got)
		}
	})

	t.Run("claim, fan out, ack or nack", func(t *testing.T) {
		t.Parallel()
		var msgs []queuestore.NewMessage
		for i := range 5 {
			body := `{"img":"same.png"}` // identical bodies: the message id keeps the items apart
			if i == 3 {
				body = `{"img":"broken.png","fail":true}`
			}
			msgs = append(msgs, queuestore.NewMessage{Queue: "images", Body: []byte(body)})
		}
		ids := enqueue(t, st, msgs...)
		_, r := s.run(t, "fanout", nil, statusPartiallySucceeded)
		if n := r.node("nack_rest"); n.Status != statusSucceeded {
			t.Errorf("nack_rest: %s %s", n.StatusLabel, n.Error)
		}
		done := map[string]bool{}
		for _, f := range traceLines(t, s.e.trace) {
			if len(f) == 2 && f[0] == "item" {
				done[f[1]] = true
			}
		}
		for i, id := range ids {
			if want := i != 3; done[fmt.Sprint(id)] != want {
				t.Errorf("message %d processed: %v, want %v", id, done[fmt.Sprint(id)], want)
			}
		}
		got := stats(t, st, "images")
		left, _ := st.Peek(t.Context(), "images", queuestore.PeekOptions{State: queuestore.StateDelayed})
		if got.Ready+got.InFlight != 0 || got.Delayed != 1 || len(left) != 1 || left[0].ID != ids[3] || left[0].LastError == "" {
			t.Errorf("images: %+v %+v, want only message %d waiting for a retry, with an error", got, left, ids[3])
		}
	})

	t.Run("dead letters: inspect and redrive", func(t *testing.T) {
		t.Parallel()
		enqueue(t, st, queuestore.NewMessage{Queue: "dlq", Body: []byte(`{"fail":true,"n":1}`)},
			queuestore.NewMessage{Queue: "dlq", Body: []byte(`{"fail":true,"n":2}`)})
		e := *s.e
		e.vars = append(append([]string{}, s.e.vars...), "DAGUQ_DB="+s.db)
		e.daguq(nil, "consume", "--queue", "dlq", "--max-attempts", "1", "--", handler("send-batch.sh"))
		if got := stats(t, st, "dlq"); got.Dead != 2 {
			t.Fatalf("dlq: %+v, want 2 dead", got)
		}
		id, r := s.run(t, "dead-letter", map[string]string{"QUEUE": "dlq"}, statusSucceeded)
		if n := r.node("redrive"); n.Status != nodeSkipped {
			t.Errorf("redrive without REDRIVE=yes: %s", n.StatusLabel)
		}
		if dead := s.output(t, "dead-letter", id, "dead"); strings.Count(dead, `"fail":true`) != 2 {
			t.Errorf("inspect output %q, want both dead letters", dead)
		}
		s.run(t, "dead-letter", map[string]string{"QUEUE": "dlq", "REDRIVE": "yes"}, statusSucceeded)
		if got := stats(t, st, "dlq"); got.Dead != 0 || got.Ready != 2 {
			t.Errorf("dlq after redrive: %+v, want 2 ready", got)
		}
	})

	t.Run("stop while batches run", func(t *testing.T) {
		t.Parallel()
		var msgs []queuestore.NewMessage
		for i := range 6 {
			msgs = append(msgs, queuestore.NewMessage{Queue: "slow", Body: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		}
		enqueue(t, st, msgs...)
		id := s.start(t, "slow-consumer", nil)
		// Two batches in their handlers, and the next one claimed ahead.
		waitFor(t, time.Minute, "two batches in their handlers", func() bool {
			return len(sentMessages(t, s.e.trace, "slow")) == 4 && stats(t, st, "slow").InFlight == 6
		})
		stopped := time.Now()
		if code, resp := s.post(t, "/dag-runs/slow-consumer/"+id+"/stop", map[string]any{}); code != http.StatusOK {
			t.Fatalf("stop: HTTP %d %s", code, resp)
		}
		// Dagu marks the run aborted as soon as it sent SIGTERM; the step
		// has ended when daguq printed its summary and exited.
		r := s.wait(t, "slow-consumer", id)
		if r.Status != statusAborted {
			t.Errorf("after stop: %v, want aborted", r)
		}
		var sum summary
		waitFor(t, 20*time.Second, "daguq to end and print its summary", func() bool {
			b, err := os.ReadFile(r.node("consume").Stdout)
			return err == nil && json.Unmarshal(b, &sum) == nil
		})
		took := time.Since(stopped)
		if !sum.Stopped || sum.Released != 6 || sum.Acked+sum.Retried+sum.Dead != 0 {
			t.Errorf("consume summary %+v, want stopped with 6 released (2 running batches, 1 claimed ahead)", sum)
		}
		got := stats(t, st, "slow")
		if got.Ready != 6 || got.InFlight+got.Dead+got.Delayed != 0 || got.Leases != 0 {
			t.Errorf("slow after stop: %+v, want all 6 ready again", got)
		}
		// Its handlers are gone: no batch is handled after the stop.
		if n := len(sentMessages(t, s.e.trace, "slow")); n != 4 {
			t.Errorf("%d messages handled, want the 4 of the stopped batches", n)
		}
		t.Logf("step ended %v after the stop request", took.Round(time.Millisecond))
	})

	t.Run("bad with: is refused at load, naming the field", func(t *testing.T) {
		t.Parallel()
		for dag, field := range map[string]string{"bad-batch-size": "batch_size", "bad-unknown-key": "batchsize"} {
			code, resp := s.post(t, "/dags/"+dag+"/start", map[string]any{})
			if code != http.StatusBadRequest || !strings.Contains(resp, field) {
				t.Errorf("start %s: HTTP %d %s, want 400 naming %s", dag, code, resp, field)
			}
			var info struct {
				Errors []string `json:"errors"`
			}
			s.get(t, "/dags/"+dag, &info)
			if len(info.Errors) == 0 || !strings.Contains(info.Errors[0], field) {
				t.Errorf("GET /dags/%s: errors %q, want one naming %s", dag, info.Errors, field)
			}
			r := s.e.run(nil, s.dagu, "validate", filepath.Join(s.home, "dags", dag+".yaml"))
			if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, field) {
				t.Errorf("dagu validate %s: %s, want a failure naming %s", dag, r, field)
			}
		}
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the .yaml files and handlers/*.sh of src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	for _, pattern := range []string{"*.yaml", "handlers/*.sh"} {
		files, _ := filepath.Glob(filepath.Join(src, pattern))
		for _, f := range files {
			rel, _ := filepath.Rel(src, f)
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := os.Stat(f)
			os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755)
			if err := os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
