package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/internal/proctest"
	"github.com/daguq/daguq/internal/storeopen"
	"github.com/daguq/daguq/queuestore"
)

// daguqBin is the daguq binary built once for every test of this package;
// the tests run it as a real process, as a user or Dagu would.
var daguqBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "daguq-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daguqBin = filepath.Join(dir, "daguq")
	if err := proctest.BuildDaguq(daguqBin, raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is a clean environment for one test: its own database and home, none
// of the caller's daguq or Dagu variables.
type env struct {
	tb   testing.TB
	dir  string
	db   string
	vars []string
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	dir := tb.TempDir()
	e := &env{tb: tb, dir: dir, db: filepath.Join(dir, "queues.db")}
	e.vars = proctest.Environ(func(name string) bool {
		switch name {
		case "DAGUQ_DB", "DAGU_HOME", "XDG_DATA_HOME", "HOME", "GORACE":
			return true
		}
		return false
	})
	// A race-enabled binary sleeps 1 s at exit unless told not to; a race it
	// finds makes it exit 66, which fails the test.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	e.vars = append(e.vars, "HOME="+filepath.Join(dir, "home"), "DAGUQ_DB="+e.db, "GORACE="+gorace)
	return e
}

// holdWriteLock takes the write lock of e's SQLite database, as
// another process writing would, until restore.
func (e *env) holdWriteLock() (restore func()) {
	e.tb.Helper()
	st, err := storeopen.Open(e.db, storeopen.Options{})
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(func() { st.Close() })
	return proctest.HoldWriteLock(e.tb, st.(*queuestore.Store).DB())
}

// setenv replaces or adds a variable ("" value removes it).
func (e *env) setenv(name, value string) { e.vars = proctest.Setenv(e.vars, name, value) }

type result = proctest.Result

// run runs daguq with args and stdin (nil: /dev/null) and waits up to a minute.
func (e *env) run(stdin io.Reader, args ...string) result {
	e.tb.Helper()
	return proctest.Run(e.tb, e.command(stdin, args...), time.Minute)
}

func (e *env) command(stdin io.Reader, args ...string) *exec.Cmd {
	cmd := exec.Command(daguqBin, args...)
	cmd.Env = e.vars
	cmd.Dir = e.dir
	cmd.Stdin = stdin
	return cmd
}

// ok runs daguq and fails the test unless it exits 0.
func (e *env) ok(stdin io.Reader, args ...string) result {
	e.tb.Helper()
	r := e.run(stdin, args...)
	if r.Code != 0 {
		e.tb.Fatalf("daguq %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// stats returns the stats of one queue from stats --json of every queue:
// zeros for a queue the database does not know (stats QUEUE refuses it).
func (e *env) stats(queue string) queueStats {
	e.tb.Helper()
	var report struct {
		Queues []queueStats `json:"queues"`
	}
	r := e.ok(nil, "stats", "--json")
	if err := json.Unmarshal([]byte(r.Stdout), &report); err != nil {
		e.tb.Fatalf("stats --json: %v\n%s", err, r)
	}
	for _, q := range report.Queues {
		if q.Queue == queue {
			return q
		}
	}
	return queueStats{Queue: queue}
}

type queueStats struct {
	Queue         string `json:"queue"`
	Ready         int64  `json:"ready"`
	Delayed       int64  `json:"delayed"`
	InFlight      int64  `json:"in_flight"`
	Dead          int64  `json:"dead"`
	Acked         int64  `json:"acked"`
	Leases        int64  `json:"leases"`
	InFlightLimit int64  `json:"in_flight_limit"`
	Paused        bool   `json:"paused"`
}

// jsonLines makes n JSON Lines {"n": i} for i in 0..n-1.
func jsonLines(n int) string { return jsonLinesFrom(0, n) }

// jsonLinesFrom makes the JSON Lines {"n": i} for i in from..to-1.
func jsonLinesFrom(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "{\"n\":%d}\n", i)
	}
	return b.String()
}

// decode unmarshals the JSON a command printed on stdout.
func decode[T any](tb testing.TB, r result) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		tb.Fatalf("stdout is not the JSON expected: %v\n%s", err, r)
	}
	return v
}

// syncBuffer is a process's output read while it runs.
type syncBuffer = proctest.SyncBuffer
