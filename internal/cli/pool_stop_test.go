package cli_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/internal/stopdeadline"
	"github.com/daguq/daguq/queuestore"
)

// The stop deadline of a pool step with --grace 500ms.
const poolStopGrace, poolStopBound = 500 * time.Millisecond, poolStopGrace + stopdeadline.Margin

// A `daguq pool run` stopped while its command runs and the database does
// not answer (another process holds SQLite's write lock: 30 s) ends by the
// stop deadline: the command gets SIGTERM and ends, the slot cannot be
// given back in time, stderr says so once, naming the pool and when the
// lease frees the slot. The slot is not leaked: once the database answers,
// it counts until its lease runs out at the latest, and the next `pool
// run` gets it then.
func TestPoolRunStoppedHolderWhileWriteLockHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stoppedHolderDuringOutage(t, e, e.holdWriteLock)
}

// The same with the PostgreSQL server stopped (its store tries again for a
// minute per call).
func TestPoolRunStoppedHolderWhileServerDown(t *testing.T) {
	t.Parallel()
	srv := pgtest.NewServer(t)
	e := newEnv(t)
	e.db = srv.NewDatabase(t)
	e.setenv("DAGUQ_DB", e.db)
	stoppedHolderDuringOutage(t, e, func() func() {
		srv.Stop(t)
		return func() { srv.Start(t) }
	})
}

// terminate sends the process SIGTERM and waits for it to exit by the
// stop deadline bound (and the time to exit): its exit status and stderr.
func (s *started) terminate(t *testing.T, bound time.Duration) (code int, stderr string) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	term := time.Now()
	code = s.wait(t, bound+10*time.Second)
	took := time.Since(term)
	stderr = s.stderr.String()
	t.Logf("exited %s after SIGTERM (stop deadline %s); stderr:\n%s", took.Round(time.Millisecond), bound, stderr)
	if took > bound+2*time.Second {
		t.Errorf("exited %s after SIGTERM, want about %s", took.Round(time.Millisecond), bound)
	}
	return code, stderr
}

func stoppedHolderDuringOutage(t *testing.T, e *env, outage func() (restore func())) {
	const lease = 3 * time.Second
	e.ok(nil, "pool", "set", "db", "1")
	holder := e.start("pool", "run", "db", "--lease", lease.String(), "--grace", poolStopGrace.String(), "--", "sleep", "30")
	e.waitPool("db", 30*time.Second, "the holder holds the pool", func(p queuestore.PoolStatus) bool { return p.Used == 1 })
	restore := outage()
	down := time.Now() // no heartbeat gets through after this
	code, stderr := holder.terminate(t, poolStopBound)
	if code != 143 {
		t.Errorf("exit %d, want the command's 143 (SIGTERM)", code)
	}
	notice := `pool "db": 1 slot(s) could not be given back within 2s of the stop`
	if n := strings.Count(stderr, "could not be given back"); n != 1 || !strings.Contains(stderr, notice) || !strings.Contains(stderr, "until their lease runs out, at ") {
		t.Errorf("stderr says %d times that the slot could not be given back, want once: %q and the time the lease frees it", n, notice)
	}
	if strings.Contains(stderr, pgtest.Password) {
		t.Error("stderr shows the password")
	}

	restore()
	// Left to its lease, which nobody extends any more.
	for _, h := range e.poolState("db").Holders {
		if h.ExpiresAt.After(down.Add(lease)) {
			t.Errorf("the stopped holder's slot counts until %s, after its lease (%s) from the outage", h.ExpiresAt.Format(time.StampMilli), lease)
		}
	}
	r := e.run(nil, "pool", "run", "db", "--wait-timeout", "20s", "--", "echo", "next ran")
	if r.Code != 0 || r.Stdout != "next ran\n" {
		t.Errorf("the next run did not get the slot after the lease: %s", r)
	}
}

// A `daguq pool run` stopped while it waits in line and another process
// holds SQLite's write lock ends by the stop deadline (exit 4), saying it
// could not leave the line: its place lapses with its registration.
func TestPoolRunStoppedWaiterWhileWriteLockHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	waiter := e.waitingRun("--grace", poolStopGrace.String(), "--", "echo", "ran")
	unlock := e.holdWriteLock()
	code, stderr := waiter.terminate(t, poolStopBound)
	if code != 4 || waiter.stdout.String() != "" {
		t.Errorf("exit %d, stdout %q: want 4 (stopped) and no command run", code, waiter.stdout.String())
	}
	if n := strings.Count(stderr, "could not leave the line within 2s of the stop"); n < 1 || !strings.Contains(stderr, "registration runs out") {
		t.Errorf("stderr does not say the waiter could not leave the line and when its place lapses")
	}
	unlock()
	if p := e.poolState("db"); len(p.Waiters) != 1 {
		t.Errorf("waiters after the stop: %+v, want the stopped one until its registration runs out", p.Waiters)
	}
}
