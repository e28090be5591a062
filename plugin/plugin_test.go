package plugin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dagucloud/dagu"

	"github.com/daguq/daguq/plugin"
	"github.com/daguq/daguq/queuestore"
)

func TestMain(m *testing.M) {
	plugin.Register()
	os.Exit(m.Run())
}

// bundle is one embedded engine with its own Dagu home and SQLite file.
type bundle struct {
	home string
	db   string
	eng  *dagu.Engine
}

func setup(tb testing.TB) *bundle {
	tb.Helper()
	dir := tb.TempDir()
	b := &bundle{home: filepath.Join(dir, "dagu"), db: filepath.Join(dir, "queue.db")}
	eng, err := dagu.New(context.Background(), dagu.Options{HomeDir: b.home})
	if err != nil {
		tb.Fatalf("dagu.New: %v", err)
	}
	tb.Cleanup(func() { eng.Close(context.Background()) })
	b.eng = eng
	return b
}

func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// handler is the absolute path of a handler script in testdata/handlers.
func handler(tb testing.TB, name string) string {
	tb.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "handlers", name))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// dagFile copies testdata/name into a temporary directory and returns the
// copy's path. Dagu keys a run's control socket by the DAG file's path, so
// runs of one file in parallel tests (or test binaries) could stop each
// other.
func dagFile(tb testing.TB, name string) string {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// stopSkipUnderRace skips a test that stops a run when the race detector is
// on: Dagu's Run.Stop reads the agent's plan and runner without a lock.
func stopSkipUnderRace(tb testing.TB) {
	tb.Helper()
	if raceEnabled {
		tb.Skip("Dagu's Run.Stop races with the agent's setup (agent.go signal vs setupPlan); run without -race")
	}
}

// run runs a DAG file to its end and returns its final status.
func (b *bundle) run(tb testing.TB, file string, params ...string) *dagu.Status {
	tb.Helper()
	ctx := testCtx(tb)
	r, err := b.eng.RunFile(ctx, dagFile(tb, file), dagu.WithParamsList(params))
	if err != nil {
		tb.Fatalf("RunFile %s: %v", file, err)
	}
	st, err := r.Wait(ctx)
	if st == nil {
		tb.Fatalf("Wait %s: no status: %v", file, err)
	}
	return st
}

func (b *bundle) stats(tb testing.TB, queue string) queuestore.Stats {
	tb.Helper()
	s, err := queuestore.Open(b.db, queuestore.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	defer s.Close()
	st, err := s.Stats(context.Background(), queue)
	if err != nil {
		tb.Fatalf("stats: %v", err)
	}
	return st
}

func (b *bundle) peek(tb testing.TB, queue string, state queuestore.State) []queuestore.Message {
	tb.Helper()
	s, err := queuestore.Open(b.db, queuestore.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	defer s.Close()
	msgs, err := s.Peek(context.Background(), queue, queuestore.PeekOptions{State: state, Limit: 100})
	if err != nil {
		tb.Fatalf("peek: %v", err)
	}
	return msgs
}

// stepStdout reads what a step of a finished run printed on stdout.
func stepStdout(tb testing.TB, st *dagu.Status, step string) string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(st.LogFile), "run_*", step+".*.out"))
	if len(files) != 1 {
		tb.Fatalf("stdout file of step %s next to %s: found %v", step, st.LogFile, files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// nodeErrors reads the error of every step from the run's status file
// (Dagu's data layout: the public Status has no per-step detail).
func (b *bundle) nodeErrors(tb testing.TB, st *dagu.Status) map[string]string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(b.home, "data", "dag-runs", st.Name, "dag-runs", "*", "*", "*", "dag-run_*"+st.RunID, "attempt_*", "status.jsonl"))
	if len(files) != 1 {
		tb.Fatalf("status file of run %s: found %v", st.RunID, files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		tb.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	var rec struct {
		Nodes []struct {
			Step  struct{ Name string }
			Error string
		}
	}
	if err := json.Unmarshal(lines[len(lines)-1], &rec); err != nil {
		tb.Fatalf("status file %s: %v", files[0], err)
	}
	out := map[string]string{}
	for _, n := range rec.Nodes {
		out[n.Step.Name] = n.Error
	}
	return out
}

func readLines(tb testing.TB, path string) []string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func TestProducerThenConsumer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := filepath.Join(t.TempDir(), "handled.jsonl")

	st := b.run(t, "pipeline.yaml", "DB="+b.db, "HANDLER="+handler(t, "collect.sh"), "OUT="+out)

	if st.Status != "succeeded" {
		t.Fatalf("status %s (%s), want succeeded; steps: %v", st.Status, st.Error, b.nodeErrors(t, st))
	}
	var enq struct{ Enqueued int }
	if err := json.Unmarshal([]byte(stepStdout(t, st, "produce")), &enq); err != nil || enq.Enqueued != 3 {
		t.Errorf("produce printed %q, want 3 enqueued", stepStdout(t, st, "produce"))
	}
	var sum struct{ Batches, Messages, Acked int }
	if err := json.Unmarshal([]byte(stepStdout(t, st, "consume")), &sum); err != nil {
		t.Fatalf("consume summary: %v", err)
	}
	if sum.Batches != 2 || sum.Messages != 3 || sum.Acked != 3 {
		t.Errorf("consume summary %+v, want 2 batches of 3 messages, 3 acked", sum)
	}
	var got []string
	for _, line := range readLines(t, out) {
		var m struct{ Body struct{ To string } }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("handler got %q: %v", line, err)
		}
		got = append(got, m.Body.To)
	}
	if strings.Join(got, ",") != "a@example.com,b@example.com,c@example.com" {
		t.Errorf("handler got %v, want the three messages in order", got)
	}
	if s := b.stats(t, "emails"); s.Ready+s.Delayed+s.InFlight+s.Dead != 0 || s.Leases != 0 {
		t.Errorf("store after the run: %+v, want every message acked and no lease", s)
	}
}

// A pool step runs its command holding slots of a pool, with the command's
// stdout as the step's, and gives them back.
func TestPoolStep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s, err := queuestore.Open(b.db, queuestore.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer s.Close()
	if err := s.SetPool(context.Background(), "db", 2); err != nil {
		t.Fatal(err)
	}

	st := b.run(t, "pool.yaml", "DB="+b.db)

	if st.Status != "succeeded" {
		t.Fatalf("status %s (%s), want succeeded; steps: %v", st.Status, st.Error, b.nodeErrors(t, st))
	}
	if out := stepStdout(t, st, "hold"); out != "db\n2\n" {
		t.Errorf("hold printed %q, want the pool and its slots", out)
	}
	p, err := s.Pool(context.Background(), "db")
	if err != nil || p.Used != 0 || len(p.Waiters) != 0 {
		t.Errorf("pool after the run: %+v (%v), want nothing held", p, err)
	}
}

func TestHandlerFailureReachesDaguAsExitCode(t *testing.T) {
	t.Parallel()
	b := setup(t)

	st := b.run(t, "fail.yaml", "DB="+b.db, "HANDLER="+handler(t, "fail.sh"))

	// partially_succeeded: consume failed with exit code 1, which its
	// continue_on accepts, and the check step found ${consume.exit_code} = 1.
	// Any other code leaves the run failed.
	if st.Status != "partially_succeeded" {
		t.Fatalf("status %s, want partially_succeeded; steps: %v", st.Status, b.nodeErrors(t, st))
	}
	if e := b.nodeErrors(t, st)["consume"]; !strings.Contains(e, "2 messages went to the dead letters") {
		t.Errorf("consume error %q, want the dead letter count", e)
	}
	dead := b.peek(t, "jobs", queuestore.StateDead)
	if len(dead) != 2 {
		t.Fatalf("dead letters %d, want 2", len(dead))
	}
	for _, m := range dead {
		if !strings.Contains(m.LastError, "exit status 3") || !strings.Contains(m.LastError, "refusing the batch") {
			t.Errorf("message %d last error %q, want the handler's exit status and stderr", m.ID, m.LastError)
		}
	}
}

func TestBadWithIsRejectedWhenTheDAGLoads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.eng.RunFile(testCtx(t), dagFile(t, "bad-with.yaml"))
	if err == nil {
		t.Fatal("bad-with.yaml loaded, want a load error")
	}
	for _, want := range []string{`queue step "consume"`, `unknown key "batchsize"`, "batch_size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("load error %q does not contain %q", err, want)
		}
	}
}

func TestStepValidatorNamesTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		step string // one step of a DAG
		want []string
	}{
		{"out of range", `{id: c, type: queue, with: {queue: q, run: h, batch_size: 0}}`,
			[]string{`queue step "c"`, "batch_size must be 1..10000, got 0"}},
		{"no queue", `{id: e, type: enqueue, with: {message: 1}}`,
			[]string{`enqueue step "e"`, "queue is required"}},
		{"no handler", `{id: c, type: queue, with: {queue: q}}`,
			[]string{"run or script is required"}},
		{"bad enum", `{id: c, type: queue, with: {queue: q, run: h, mode: forever}}`,
			[]string{"mode must be one of drain, once, watch"}},
		{"two sources", `{id: e, type: enqueue, with: {queue: q, message: 1, messages: [2]}}`,
			[]string{"give exactly one of message, messages or file"}},
		{"bad literal next to a deferred one", `{id: c, type: queue, with: {queue: "${Q}", run: h, concurrency: 999}}`,
			[]string{"concurrency must be 1..256, got 999"}},
		{"command is not a handler here", `{id: c, type: queue, command: ./handle.sh, with: {queue: q, run: h}}`,
			[]string{`step type "queue" does not support command field`}},
		{"script is not a handler here", `{id: c, type: queue, script: "echo hi", with: {queue: q, run: h}}`,
			[]string{`step type "queue" does not support script field`}},
	}
	b := setup(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.eng.RunYAML(testCtx(t), []byte("name: bad\nsteps:\n  - "+tt.step+"\n"))
			if err == nil {
				t.Fatal("the DAG loaded, want a load error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("load error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestRuntimeValuesAreCheckedWhenTheStepRuns(t *testing.T) {
	t.Parallel()
	params := func(b *bundle, out, size, payload string) []string {
		return []string{"DB=" + b.db, "QUEUE=q-1", "SIZE=" + size, "WHEN=2020-01-01T00:00:00Z",
			"PAYLOAD=" + payload, "HANDLER=" + handler(t, "collect.sh"), "OUT=" + out}
	}
	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		out := filepath.Join(t.TempDir(), "out.jsonl")
		// Dagu's param parser wants a JSON object double-quoted and escaped.
		st := b.run(t, "params.yaml", params(b, out, "5", `"{\"to\":\"a b\"}"`)...)
		if st.Status != "succeeded" {
			t.Fatalf("status %s, want succeeded; steps: %v", st.Status, b.nodeErrors(t, st))
		}
		lines := readLines(t, out)
		if len(lines) != 1 || !strings.Contains(lines[0], `"body":{"to":"a b"}`) {
			t.Errorf("handler got %q, want the one payload", lines)
		}
	})
	t.Run("bad batch size", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		st := b.run(t, "params.yaml", params(b, filepath.Join(t.TempDir(), "out"), "abc", "7")...)
		if st.Status != "failed" {
			t.Fatalf("status %s, want failed", st.Status)
		}
		if e := b.nodeErrors(t, st)["consume"]; !strings.Contains(e, "batch_size must be an integer") {
			t.Errorf("consume error %q, want it to name batch_size", e)
		}
		if s := b.stats(t, "q-1"); s.Ready != 1 {
			t.Errorf("store %+v, want the enqueued message still ready", s)
		}
	})
}

func TestStopReleasesRunningBatches(t *testing.T) {
	t.Parallel()
	stopSkipUnderRace(t)
	b := setup(t)
	marks := t.TempDir()
	ctx := testCtx(t)
	r, err := b.eng.RunFile(ctx, dagFile(t, "stop.yaml"),
		dagu.WithParamsList([]string{"DB=" + b.db, "HANDLER=" + handler(t, "block.sh"), "MARKS=" + marks}))
	if err != nil {
		t.Fatal(err)
	}
	// Both handlers hold a batch of two when each has left its mark.
	for {
		entries, _ := filepath.Glob(filepath.Join(marks, "*[0-9]"))
		if len(entries) == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("handlers did not start: marks %v", entries)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if s := b.stats(t, "work"); s.InFlight != 4 {
		t.Fatalf("store while handling: %+v, want 4 in flight", s)
	}

	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	st, _ := r.Wait(ctx)
	if st == nil || st.Status != "aborted" {
		t.Fatalf("status %+v, want aborted", st)
	}
	s := b.stats(t, "work")
	if s.Ready != 4 || s.InFlight != 0 || s.Dead != 0 || s.Leases != 0 {
		t.Errorf("store after stop: %+v, want all 4 ready again and no lease", s)
	}
	for _, m := range b.peek(t, "work", queuestore.StateReady) {
		if m.Attempt != 0 {
			t.Errorf("message %d attempt %d after release, want 0 (not spent)", m.ID, m.Attempt)
		}
	}
	var sum struct {
		Released int
		Stopped  bool
	}
	if err := json.Unmarshal([]byte(stepStdout(t, st, "consume")), &sum); err != nil || sum.Released != 4 || !sum.Stopped {
		t.Errorf("consume summary %q, want 4 released and stopped", stepStdout(t, st, "consume"))
	}
}

// TestExampleDAGs runs examples of dags/ (written for the step_types way)
// through the embedded engine: the same YAML works with the registered
// executors. They use `working_dir: .` and ./handlers/...: a registered
// executor does not see the DAG's working directory, so the test runs from
// dags/ (README.md, caveats); the database comes from DAGUQ_DB.
func TestExampleDAGs(t *testing.T) {
	dags, err := filepath.Abs(filepath.Join("..", "dags"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"producer.yaml", "priority-lanes.yaml", "batch-processing.yaml"} {
		if _, err := os.Stat(filepath.Join(dags, f)); err != nil {
			t.Skipf("dags/%s not there: %v", f, err)
		}
	}
	b := setup(t)
	trace := filepath.Join(t.TempDir(), "trace")
	t.Setenv("DAGUQ_DB", b.db)
	t.Setenv("DAGUQ_EXAMPLE_TRACE", trace)
	t.Chdir(dags)
	run := func(file string, params ...string) *dagu.Status {
		t.Helper()
		ctx := testCtx(t)
		r, err := b.eng.RunFile(ctx, filepath.Join(dags, file), dagu.WithParamsList(params))
		if err != nil {
			t.Fatalf("RunFile %s: %v", file, err)
		}
		st, _ := r.Wait(ctx)
		if st == nil || st.Status != "succeeded" {
			t.Fatalf("%s: status %+v, want succeeded; steps: %v", file, st, b.nodeErrors(t, st))
		}
		return st
	}

	t.Run("producer then priority lanes", func(t *testing.T) {
		// Bulk first, then urgent: the lanes must still take urgent first.
		for i, prio := range []string{"0", "0", "10"} {
			st := run("producer.yaml", "QUEUE=tickets", `PAYLOAD="{\"n\":`+strconv.Itoa(i+1)+`}"`, "PRIORITY="+prio)
			if out := stepStdout(t, st, "enqueue"); !strings.Contains(out, `"enqueued":1`) {
				t.Fatalf("producer printed %q", out)
			}
		}
		run("priority-lanes.yaml", "QUEUE=tickets")
		lines := readLines(t, trace)
		if len(lines) != 3 {
			t.Fatalf("trace %q, want 3 messages", lines)
		}
		if f := strings.Fields(lines[0]); len(f) != 5 || f[0] != "tickets" || f[3] != "10" {
			t.Errorf("first message handled: %q, want the priority 10 one of tickets", lines[0])
		}
		if s := b.stats(t, "tickets"); s.Ready+s.InFlight+s.Dead != 0 {
			t.Errorf("tickets after the lanes: %+v, want all acked", s)
		}
	})

	t.Run("batch processing", func(t *testing.T) {
		s, err := queuestore.Open(b.db, queuestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]queuestore.NewMessage, 120)
		for i := range msgs {
			msgs[i] = queuestore.NewMessage{Queue: "emails", Body: []byte(`{"to":"x@example.com"}`)}
		}
		_, err = s.Enqueue(context.Background(), msgs...)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		st := run("batch-processing.yaml")
		var sum struct{ Batches, Acked int }
		if err := json.Unmarshal([]byte(stepStdout(t, st, "send")), &sum); err != nil || sum.Acked != 120 || sum.Batches < 3 {
			t.Errorf("send printed %q, want 120 acked in 3 or more batches of at most 50", stepStdout(t, st, "send"))
		}
		if s := b.stats(t, "emails"); s.Ready+s.InFlight+s.Dead != 0 {
			t.Errorf("emails after the run: %+v, want all acked", s)
		}
	})
}

func TestStepEnvAndWorkingDirReachTheHandler(t *testing.T) {
	handlers, err := filepath.Abs(filepath.Join("testdata", "handlers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DAGUQ_TEST_HANDLERS", handlers)
	t.Setenv("DAGUQ_TEST_NAME", "world")
	b := setup(t)
	out := filepath.Join(t.TempDir(), "env.out")

	st := b.run(t, "env.yaml", "DB="+b.db, "OUT="+out)

	if st.Status != "succeeded" {
		t.Fatalf("status %s, want succeeded; steps: %v", st.Status, b.nodeErrors(t, st))
	}
	if got := readLines(t, out); len(got) != 1 || got[0] != handlers+"|hello world" {
		t.Errorf("handler saw %q, want %q", got, handlers+"|hello world")
	}
}
