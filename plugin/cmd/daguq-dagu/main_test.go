package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

func testdata(tb testing.TB, name string) string {
	tb.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// dagFile copies the DAG testdata/name into a temporary directory and
// returns the copy's path. Dagu keys a run's control socket by the DAG
// file's path, so runs of one file by two test binaries could stop each
// other.
func dagFile(tb testing.TB, name string) string {
	tb.Helper()
	data, err := os.ReadFile(testdata(tb, name))
	if err != nil {
		if os.IsNotExist(err) {
			return testdata(tb, name)
		}
		tb.Fatal(err)
	}
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func testCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func storeStats(tb testing.TB, db, queue string) queuestore.Stats {
	tb.Helper()
	s, err := queuestore.Open(db, queuestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats(context.Background(), queue)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func TestRunPrintsStatusAndExitCode(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "q.db")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"succeeded", []string{"testdata/pipeline.yaml", "--", "DB=" + db, "HANDLER=" + testdata(t, "handlers/collect.sh"), "OUT=" + filepath.Join(dir, "out")},
			0, ": succeeded\n", ""},
		{"failed", []string{"testdata/fail.yaml", "--", "DB=" + db, "HANDLER=" + testdata(t, "handlers/fail.sh")},
			1, ": partially_succeeded\n", ""},
		{"load error", []string{"testdata/bad-with.yaml"},
			1, "", `unknown key "batchsize"`},
		{"missing file", []string{"testdata/nope.yaml"},
			1, "", "nope.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			file := dagFile(t, strings.TrimPrefix(tt.args[0], "testdata/"))
			args := append([]string{"run", "--dagu-home", filepath.Join(dir, "home")}, append([]string{file}, tt.args[1:]...)...)
			code := execute(testCtx(t), args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tt.wantCode, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantOut)
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantErr)
			}
		})
	}
	if s := storeStats(t, db, "emails"); s.Ready+s.InFlight+s.Dead != 0 {
		t.Errorf("emails after the run: %+v, want all acked", s)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	if raceEnabled {
		t.Skip("Dagu's Run.Stop races with the agent's setup (agent.go signal vs setupPlan); run without -race")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "q.db")
	marks := t.TempDir()
	ctx, cancel := context.WithCancel(testCtx(t))
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, []string{"run", "--dagu-home", filepath.Join(dir, "home"), dagFile(t, "stop.yaml"), "--",
			"DB=" + db, "HANDLER=" + testdata(t, "handlers/block.sh"), "MARKS=" + marks}, &stdout, &stderr)
	}()
	for {
		if m, _ := filepath.Glob(filepath.Join(marks, "*[0-9]")); len(m) == 2 {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("run ended with %d before its handlers started: %s %s", code, stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel() // what SIGINT does
	if code := <-done; code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stdout.String(), ": aborted\n") {
		t.Errorf("stdout %q, want the aborted status", stdout.String())
	}
	if s := storeStats(t, db, "work"); s.Ready != 4 || s.InFlight != 0 {
		t.Errorf("store after the stop: %+v, want all 4 ready", s)
	}
}

func TestWorkerFlagsAreChecked(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"worker"}, "--coordinator is required"},
		{[]string{"worker", "--coordinator", "localhost"}, `--coordinator "localhost": want HOST:PORT`},
		{[]string{"worker", "--coordinator", "h:1", "--label", "novalue"}, "--label"},
	} {
		var stdout, stderr syncBuffer
		if code := execute(testCtx(t), tt.args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d stderr %q, want 1 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

// daguBin finds a Dagu binary for the coordinator, or skips the test.
func daguBin(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("DAGU_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("dagu"); err == nil {
		return p
	}
	tb.Skip("no Dagu binary: set DAGU_BIN to a dagu (v2.6+) binary to run the distributed-mode worker test")
	return ""
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestWorkerRunsDispatchedDAGs(t *testing.T) {
	bin := daguBin(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)

	coord := exec.Command(bin, "coordinator", "--coordinator.host", "127.0.0.1", "--coordinator.port", port,
		"--coordinator.health-port", "0", "--peer.insecure")
	coord.Env = append(os.Environ(), "DAGU_HOME="+filepath.Join(dir, "coordinator"))
	var coordOut syncBuffer
	coord.Stdout, coord.Stderr = &coordOut, &coordOut
	if err := coord.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		coord.Process.Kill()
		coord.Wait()
	})

	ctx := testCtx(t)
	workerCtx, stopWorker := context.WithCancel(ctx)
	var wout, werr syncBuffer
	workerDone := make(chan int, 1)
	go func() {
		workerDone <- execute(workerCtx, []string{"worker", "--coordinator", addr, "--label", "pool=daguq",
			"--id", "daguq-test-worker", "--dagu-home", filepath.Join(dir, "worker")}, &wout, &werr)
	}()
	defer func() {
		stopWorker()
		if code := <-workerDone; code != 0 {
			t.Errorf("worker exit %d: %s", code, werr.String())
		}
	}()
	for !strings.Contains(wout.String(), "worker ready") {
		select {
		case <-ctx.Done():
			t.Fatalf("worker not ready: %s %s; coordinator: %s", wout.String(), werr.String(), coordOut.String())
		case <-time.After(50 * time.Millisecond):
		}
	}

	// A client engine dispatches DAGs; the worker runs their steps.
	eng, err := dagu.New(ctx, dagu.Options{
		HomeDir:     filepath.Join(dir, "client"),
		DefaultMode: dagu.ExecutionModeDistributed,
		Distributed: &dagu.DistributedOptions{
			Coordinators:   []string{addr},
			TLS:            dagu.TLSOptions{Insecure: true},
			WorkerSelector: map[string]string{"pool": "daguq"},
			PollInterval:   100 * time.Millisecond,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())

	t.Run("builtin steps", func(t *testing.T) {
		mark := filepath.Join(dir, "plain.mark")
		run, err := eng.RunFile(ctx, dagFile(t, "plain.yaml"), dagu.WithParamsList([]string{"OUT=" + mark}))
		if err != nil {
			t.Fatal(err)
		}
		st, err := run.Wait(ctx)
		if err != nil || st.Status != "succeeded" || st.WorkerID != "daguq-test-worker" {
			t.Fatalf("status %+v err %v, want succeeded on daguq-test-worker", st, err)
		}
		if _, err := os.Stat(mark); err != nil {
			t.Errorf("the step did not run: %v", err)
		}
	})

	t.Run("queue steps", func(t *testing.T) {
		db := filepath.Join(dir, "q.db")
		out := filepath.Join(dir, "handled.jsonl")
		run, err := eng.RunFile(ctx, dagFile(t, "pipeline.yaml"), dagu.WithParamsList([]string{
			"DB=" + db, "HANDLER=" + testdata(t, "handlers/collect.sh"), "OUT=" + out}))
		if err != nil {
			// A stock coordinator parses every dispatched DAG and knows no
			// registered step type (README.md, distributed mode). Any other
			// error, or a change of Dagu that lets it through, fails here.
			if !strings.Contains(err.Error(), `failed to prepare attempt`) || !strings.Contains(err.Error(), `unknown step type "enqueue"`) {
				t.Fatalf("dispatch: %v", err)
			}
			t.Logf("known limitation of the stock coordinator: %v", err)
			return
		}
		st, err := run.Wait(ctx)
		if err != nil || st.Status != "succeeded" || st.WorkerID != "daguq-test-worker" {
			t.Fatalf("status %+v err %v, want succeeded on daguq-test-worker", st, err)
		}
		data, err := os.ReadFile(out)
		if err != nil || strings.Count(string(data), "\n") != 3 {
			t.Errorf("handler output %q (%v), want 3 messages", data, err)
		}
		if s := storeStats(t, db, "emails"); s.Ready+s.InFlight+s.Dead != 0 {
			t.Errorf("store: %+v, want all acked", s)
		}
	})
}

func TestStartExplainsSubDAGs(t *testing.T) {
	var stdout, stderr syncBuffer
	code := execute(testCtx(t), []string{"start", "--run-id", "x", "child.yaml"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "set DAGU_EXECUTABLE") {
		t.Errorf("exit %d stderr %q, want 1 and how to run sub-DAGs", code, stderr.String())
	}
}
