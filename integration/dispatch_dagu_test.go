//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runSummary is one run of Dagu's GET /dag-runs list.
type runSummary struct {
	DAGRunID string `json:"dagRunId"`
	Status   int    `json:"status"`
}

// runsOf lists the runs of a DAG started in the last hour.
func (s *daguServer) runsOf(t *testing.T, dag string) []runSummary {
	t.Helper()
	var resp struct {
		DAGRuns []runSummary `json:"dagRuns"`
	}
	path := fmt.Sprintf("/dag-runs?name=%s&fromDate=%d&limit=500", dag, time.Now().Add(-time.Hour).Unix())
	if code := s.get(t, path, &resp); code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", path, code)
	}
	return resp.DAGRuns
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// dispatch starts `daguq dispatch` against the server; stopped at cleanup.
// dispatchStateDirs holds each subtest's directory for its dispatch state.
var dispatchStateDirs sync.Map

func (s *daguServer) dispatch(t *testing.T, args ...string) (*exec.Cmd, *syncLog) {
	t.Helper()
	base := strings.TrimSuffix(s.api, "/api/v1")
	// Each parallel subtest keeps its own state file; a restart in one
	// subtest finds the state its first dispatcher left.
	dir, _ := dispatchStateDirs.LoadOrStore(t.Name(), t.TempDir())
	state := filepath.Join(dir.(string), "dispatch.json")
	cmd := s.e.command("daguq", append([]string{"dispatch", "--db", s.db, "--dagu-url", base, "--state", state,
		"--poll", "50ms", "--watch", "300ms"}, args...)...)
	log := &syncLog{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("daguq dispatch said:\n%s", tail(log.String(), 3000))
		}
	})
	return cmd, log
}

// TestDaguDispatch drives `daguq dispatch` against a real Dagu server: one
// run per batch, acked when it succeeds, nacked into the dead letters when
// it fails, no second run after a kill -9 of the dispatcher, and a manual
// retry of a finished run that changes nothing.
func TestDaguDispatch(t *testing.T) {
	s := startDaguServer(t)
	st := openStore(t, s.db)
	drained := func(queue string) func() bool {
		return func() bool {
			got := stats(t, st, queue)
			return got.Ready+got.Delayed+got.InFlight == 0
		}
	}

	t.Run("500 messages in batches of 50: 10 runs, all acked", func(t *testing.T) {
		t.Parallel()
		s.e.daguq(strings.NewReader(jsonLines(500)), "enqueue", "--db", s.db, "--queue", "d-orders", "--file", "-")
		s.dispatch(t, "--queue", "d-orders", "--dag", "dispatched-orders", "--batch-size", "50", "--concurrency", "4")
		waitFor(t, 3*time.Minute, "d-orders drained", drained("d-orders"))
		runs := s.runsOf(t, "dispatched-orders")
		if len(runs) != 10 {
			t.Fatalf("%d runs, want 10: %+v", len(runs), runs)
		}
		for _, r := range runs {
			if r.Status != statusSucceeded || !strings.HasPrefix(r.DAGRunID, "daguq-") {
				t.Errorf("run %+v", r)
			}
		}
		if got := stats(t, st, "d-orders"); got.Dead != 0 {
			t.Errorf("dead letters %+v", got)
		}
		// A Retry of a finished run (POST .../retry) did not run the DAG's
		// steps again on the Dagu commit tested (59d92fc19): the run stayed
		// succeeded. The guard it would meet, `action: get` failing on a
		// finished lease, is tested without Dagu (internal/cli dispatch tests).
	})

	t.Run("a failing DAG: nacked, retried, then dead letters", func(t *testing.T) {
		t.Parallel()
		s.e.daguq(strings.NewReader(jsonLines(3)), "enqueue", "--db", s.db, "--queue", "d-fail", "--file", "-")
		s.dispatch(t, "--queue", "d-fail", "--dag", "dispatch-fail", "--max-attempts", "2",
			"--backoff-base", "200ms", "--backoff-max", "400ms")
		waitFor(t, 2*time.Minute, "3 dead letters", func() bool { return stats(t, st, "d-fail").Dead == 3 })
		runs := s.runsOf(t, "dispatch-fail")
		if len(runs) != 2 {
			t.Errorf("%d runs, want 2 (one per delivery): %+v", len(runs), runs)
		}
	})

	t.Run("the dispatcher killed with kill -9 mid-run and restarted: no second run", func(t *testing.T) {
		t.Parallel()
		s.e.daguq(strings.NewReader(jsonLines(20)), "enqueue", "--db", s.db, "--queue", "d-slow", "--file", "-")
		args := []string{"--queue", "d-slow", "--dag", "dispatch-slow", "--batch-size", "5", "--concurrency", "4", "--lease", "10s"}
		cmd, _ := s.dispatch(t, args...)
		waitFor(t, time.Minute, "4 runs", func() bool { return len(s.runsOf(t, "dispatch-slow")) == 4 })
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		_, log := s.dispatch(t, args...)
		waitFor(t, 2*time.Minute, "d-slow drained", drained("d-slow"))
		runs := s.runsOf(t, "dispatch-slow")
		if len(runs) != 4 {
			t.Errorf("%d runs for 4 batches: %+v", len(runs), runs)
		}
		for _, r := range runs {
			if r.Status != statusSucceeded {
				t.Errorf("run %+v", r)
			}
		}
		if !strings.Contains(log.String(), "resumed") {
			t.Errorf("the restarted dispatcher did not resume the recorded batches:\n%s", log.String())
		}
	})
}

// jsonLines makes n JSON Lines {"n": i} for i in 0..n-1.
func jsonLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"n\":%d}\n", i)
	}
	return b.String()
}
