package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// testEnv is one test's database and working directory.
type testEnv struct {
	tb  testing.TB
	dir string
	db  string
}

func setup(tb testing.TB) *testEnv {
	tb.Helper()
	dir := tb.TempDir()
	return &testEnv{tb: tb, dir: dir, db: filepath.Join(dir, "daguq.db")}
}

// store opens the test database for assertions; it is closed at cleanup.
func (te *testEnv) store() *queuestore.Store {
	te.tb.Helper()
	s, err := queuestore.Open(te.db, queuestore.Options{})
	if err != nil {
		te.tb.Fatal(err)
	}
	te.tb.Cleanup(func() { s.Close() })
	return s
}

// result is what one executor run produced.
type result struct {
	stdout, stderr string
	err            error
}

// spec builds a step spec on the test database.
func (te *testEnv) spec(config map[string]any) Spec {
	cfg := map[string]any{"db": te.db}
	for k, v := range config {
		cfg[k] = v
	}
	return Spec{Name: "test-step", Config: cfg, Dir: te.dir}
}

// run drives an executor as Dagu does: factory, SetStdout, SetStderr, Run.
func (te *testEnv) run(kind string, config map[string]any) result {
	te.tb.Helper()
	exec, err := New(kind, te.spec(config))
	if err != nil {
		te.tb.Fatalf("New(%s): %v", kind, err)
	}
	return runExecutor(te.tb, exec, context.Background())
}

func runExecutor(tb testing.TB, exec Executor, ctx context.Context) result {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	exec.SetStdout(&stdout)
	exec.SetStderr(&stderr)
	err := exec.Run(ctx)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// script writes an executable sh script into the test directory.
func (te *testEnv) script(name, body string) string {
	te.tb.Helper()
	path := filepath.Join(te.dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		te.tb.Fatal(err)
	}
	return path
}

// enqueueN stores n messages {"n": i} straight through the store.
func (te *testEnv) enqueueN(queue string, n int) []int64 {
	te.tb.Helper()
	s := te.store()
	msgs := make([]queuestore.NewMessage, n)
	for i := range msgs {
		msgs[i] = queuestore.NewMessage{Queue: queue, Body: []byte(`{"n":` + itoa(i) + `}`)}
	}
	res, err := s.Enqueue(context.Background(), msgs...)
	if err != nil {
		te.tb.Fatal(err)
	}
	return res.IDs
}

func (te *testEnv) stats(queue string) queuestore.Stats {
	te.tb.Helper()
	st, err := te.store().Stats(context.Background(), queue)
	if err != nil {
		te.tb.Fatal(err)
	}
	return st
}

// waitFile waits until path exists (a handler's marker).
func waitFile(tb testing.TB, path string, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.Fatalf("%s did not appear within %s", path, within)
}

// countLines counts the non-empty lines of a file (0 when missing).
func countLines(tb testing.TB, path string) int {
	tb.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	return len(strings.Fields(string(b)))
}

func itoa(i int) string { return strconv.Itoa(i) }

// exec builds an executor through the factory, with spec tweaks.
func (te *testEnv) exec(kind string, config map[string]any, tweak func(*Spec)) Executor {
	te.tb.Helper()
	spec := te.spec(config)
	if tweak != nil {
		tweak(&spec)
	}
	e, err := New(kind, spec)
	if err != nil {
		te.tb.Fatalf("New(%s): %v", kind, err)
	}
	return e
}

// consumeSummary decodes a consume step's stdout.
func consumeSummary(tb testing.TB, r result) ConsumeSummary {
	tb.Helper()
	var s ConsumeSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		tb.Fatalf("stdout is not one JSON summary: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return s
}

// wantExit checks an error's exit status and its "exit status N" text.
func wantExit(tb testing.TB, err error, code int) {
	tb.Helper()
	if got := ExitCode(err); got != code {
		tb.Fatalf("exit status %d, want %d (err: %v)", got, code, err)
	}
	if code != 0 && !strings.HasPrefix(err.Error(), "exit status "+strconv.Itoa(code)+": ") {
		tb.Fatalf("error text %q does not start with \"exit status %d: \"", err, code)
	}
}

// peek lists up to 1000 messages of queue in state.
func (te *testEnv) peek(queue string, state queuestore.State) []queuestore.Message {
	te.tb.Helper()
	msgs, err := te.store().Peek(context.Background(), queue, queuestore.PeekOptions{State: state, Limit: 1000})
	if err != nil {
		te.tb.Fatal(err)
	}
	return msgs
}

func execCommand(name string, args ...string) (string, error) {
	out, err := osexec.Command(name, args...).Output()
	return string(out), err
}
