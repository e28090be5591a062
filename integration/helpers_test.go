package integration

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/proctest"
	"github.com/daguq/daguq/queuestore"
)

// env is one test's world: its own database file, trace file and home,
// none of the caller's daguq or Dagu variables, and daguq on PATH.
type env struct {
	tb    testing.TB
	dir   string
	db    string
	trace string // DAGUQ_EXAMPLE_TRACE of the example handlers
	vars  []string
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	dir := tb.TempDir()
	e := &env{tb: tb, dir: dir, db: filepath.Join(dir, "queues.db"), trace: filepath.Join(dir, "trace.txt")}
	e.vars = proctest.Environ(func(name string) bool {
		return strings.HasPrefix(name, "DAGUQ_") || strings.HasPrefix(name, "DAGU_") || name == "PATH" ||
			name == "XDG_DATA_HOME" || name == "XDG_CONFIG_HOME" || name == "HOME"
	})
	e.vars = append(e.vars, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+filepath.Join(dir, "home"), "DAGUQ_DB="+e.db, "DAGUQ_EXAMPLE_TRACE="+e.trace)
	return e
}

// setenv replaces or adds a variable ("" removes it).
func (e *env) setenv(name, value string) { e.vars = proctest.Setenv(e.vars, name, value) }

type result = proctest.Result

// command is name with args in this env (name "daguq": the built binary).
func (e *env) command(name string, args ...string) *exec.Cmd {
	if name == "daguq" {
		name = daguqBin
	}
	cmd := exec.Command(name, args...)
	cmd.Env = e.vars
	cmd.Dir = e.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// run runs a command to its end (two minutes at most) and returns its output.
func (e *env) run(stdin io.Reader, name string, args ...string) result {
	e.tb.Helper()
	cmd := e.command(name, args...)
	cmd.Stdin = stdin
	return proctest.Run(e.tb, cmd, 2*time.Minute)
}

// daguq runs daguq and fails the test unless it exits 0.
func (e *env) daguq(stdin io.Reader, args ...string) result {
	e.tb.Helper()
	r := e.run(stdin, "daguq", args...)
	if r.Code != 0 {
		e.tb.Fatalf("daguq %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// openStore opens a database file for assertions; closed at cleanup.
func openStore(tb testing.TB, path string) *queuestore.Store {
	tb.Helper()
	st, err := queuestore.Open(path, queuestore.Options{})
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// enqueue adds messages to the store directly.
func enqueue(tb testing.TB, st *queuestore.Store, msgs ...queuestore.NewMessage) []int64 {
	tb.Helper()
	res, err := st.Enqueue(context.Background(), msgs...)
	if err != nil {
		tb.Fatalf("enqueue: %v", err)
	}
	return res.IDs
}

func stats(tb testing.TB, st *queuestore.Store, queue string) queuestore.Stats {
	tb.Helper()
	s, err := st.Stats(context.Background(), queue)
	if err != nil {
		tb.Fatalf("stats %s: %v", queue, err)
	}
	return s
}

// traceLines reads the trace file of the example handlers (none: nil).
func traceLines(tb testing.TB, path string) [][]string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	var lines [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			lines = append(lines, strings.Fields(l))
		}
	}
	return lines
}

// sent is one line of send-batch.sh's trace: queue batch id priority attempt.
type sent struct {
	queue, batch      string
	id, priority, try int64
}

// sentMessages are the trace lines of send-batch.sh for queue, in order.
func sentMessages(tb testing.TB, path, queue string) []sent {
	tb.Helper()
	var out []sent
	for _, f := range traceLines(tb, path) {
		if len(f) != 5 || f[0] != queue {
			continue
		}
		id, _ := strconv.ParseInt(f[2], 10, 64)
		prio, _ := strconv.ParseInt(f[3], 10, 64)
		try, _ := strconv.ParseInt(f[4], 10, 64)
		out = append(out, sent{queue: f[0], batch: f[1], id: id, priority: prio, try: try})
	}
	return out
}

// serviceCalls reads call-service.sh's start/end lines: the most calls that
// overlapped, and the messages they carried.
func serviceCalls(tb testing.TB, path string) (maxOverlap, calls, messages int) {
	tb.Helper()
	type event struct {
		at    int64
		delta int
	}
	var events []event
	for _, f := range traceLines(tb, path) {
		if len(f) != 4 || (f[0] != "start" && f[0] != "end") {
			continue
		}
		at, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			tb.Fatalf("trace line %v: %v", f, err)
		}
		if f[0] == "start" {
			n, _ := strconv.Atoi(f[3])
			events = append(events, event{at, 1})
			calls++
			messages += n
		} else {
			events = append(events, event{at, -1})
		}
	}
	// Ends before starts at the same instant: touching calls do not overlap.
	sort.Slice(events, func(i, j int) bool {
		if events[i].at != events[j].at {
			return events[i].at < events[j].at
		}
		return events[i].delta < events[j].delta
	})
	n := 0
	for _, ev := range events {
		n += ev.delta
		maxOverlap = max(maxOverlap, n)
	}
	return maxOverlap, calls, messages
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func handler(name string) string { return filepath.Join(repoRoot, "dags", "handlers", name) }
