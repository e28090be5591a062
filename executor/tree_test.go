package executor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// leaveBehind is handler shell code that starts three processes meant to
// outlive it and records their pids: one in the handler's process group
// (bg), one orphaned by a double fork (orphan), one in a session of its own
// (session). All ignore SIGTERM.
const leaveBehind = `echo $$ > pid.handler
sh -c 'trap "" TERM; echo $$ > pid.bg.tmp; mv pid.bg.tmp pid.bg; exec sleep 1000' &
sh -c 'sh -c "trap \"\" TERM; echo \$\$ > pid.orphan.tmp; mv pid.orphan.tmp pid.orphan; exec sleep 1000" &' &
setsid sh -c 'trap "" TERM; echo $$ > pid.session.tmp; mv pid.session.tmp pid.session; exec sleep 1000' &
while [ ! -f pid.bg ] || [ ! -f pid.orphan ] || [ ! -f pid.session ]; do sleep 0.01; done
echo started
`

// needTreeSweep skips where handler trees are not swept (the supervisor is
// Linux only) or the test cannot make a session (no setsid).
func needTreeSweep(tb testing.TB) {
	tb.Helper()
	if runtime.GOOS != "linux" {
		tb.Skip("handler trees are swept on Linux")
	}
	if _, err := exec.LookPath("setsid"); err != nil {
		tb.Skip("no setsid(1)")
	}
}

// treePids reads the pids leaveBehind recorded in dir.
func treePids(tb testing.TB, dir string) map[string]int {
	tb.Helper()
	pids := map[string]int{}
	for _, name := range []string{"handler", "bg", "orphan", "session"} {
		b, err := os.ReadFile(filepath.Join(dir, "pid."+name))
		if err != nil {
			tb.Fatalf("the handler did not record its %s process: %v", name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			tb.Fatalf("pid.%s: %q", name, b)
		}
		pids[name] = pid
	}
	return pids
}

// assertTreeGone fails for each recorded process still alive (kill -0
// succeeds: running, or a zombie nobody reaped), and kills it.
func assertTreeGone(tb testing.TB, pids map[string]int) {
	tb.Helper()
	for name, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			syscall.Kill(pid, syscall.SIGKILL)
			tb.Errorf("the handler's %s process (pid %d) outlived its batch", name, pid)
		}
	}
}

// A handler that exits 0 and leaves processes running (`sleep 1000 &`):
// its batch is acked and, when Run returns, none of them is left.
func TestHandlerTreeEndsWithBatch(t *testing.T) {
	t.Parallel()
	needTreeSweep(t)
	te := setup(t)
	te.enqueueN("q", 1)
	te.script("h.sh", leaveBehind+"exit 0\n")
	start := time.Now()
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": "./h.sh"})
	took := time.Since(start)
	wantExit(t, r.err, 0)
	if s := consumeSummary(t, r); s.Acked != 1 {
		t.Fatalf("summary %+v\nstderr: %s", s, r.stderr)
	}
	if !strings.Contains(r.stderr, "started") {
		t.Errorf("handler output lost: %q", r.stderr)
	}
	assertTreeGone(t, treePids(t, te.dir))
	t.Logf("batch handled in %s", took)
}

// batch_timeout and Kill: SIGTERM, then after grace SIGKILL for the whole
// tree, those outside the handler's group included. Nothing is left when
// Run returns, which it does within grace (plus slack) of the signal.
func TestStoppedHandlerTreeLeavesNothing(t *testing.T) {
	t.Parallel()
	needTreeSweep(t)
	const grace = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		kill bool
	}{
		{"batch_timeout", map[string]any{"batch_timeout": "1s"}, false}, // room for the handler to start its processes
		{"Kill", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			te := setup(t)
			te.enqueueN("q", 2)
			te.script("h.sh", "trap 'exit 143' TERM\n"+leaveBehind+"touch started\nwhile :; do sleep 0.01; done\n")
			cfg := map[string]any{"queue": "q", "run": "./h.sh", "mode": "once", "grace": grace.String(), "backoff": "none"}
			for k, v := range tc.cfg {
				cfg[k] = v
			}
			e := te.exec(KindQueue, cfg, nil)
			done := make(chan result, 1)
			go func() { done <- runExecutor(t, e, context.Background()) }()
			waitFile(t, filepath.Join(te.dir, "started"), 10*time.Second)
			signalled := time.Now()
			if tc.kill {
				e.Kill(syscall.SIGTERM)
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			pids := treePids(t, te.dir)
			assertTreeGone(t, pids)
			if d := time.Since(signalled); d > 5*time.Second {
				t.Errorf("Run returned %s after the stop began, grace is %s", d, grace)
			}
			s := consumeSummary(t, r)
			if tc.kill {
				wantExit(t, r.err, ExitStopped)
				if s.Released != 2 {
					t.Errorf("summary %+v", s)
				}
				assertAllReadyUnspent(t, te, "q", 2)
			} else if s.Retried != 2 {
				t.Errorf("summary %+v", s)
			}
		})
	}
}

// Kill(SIGKILL) after Kill(SIGTERM) (the CLI's second ^C) ends the handler
// tree at once instead of after grace; the batch is released.
func TestKillSIGKILLEndsGraceAtOnce(t *testing.T) {
	t.Parallel()
	needTreeSweep(t)
	te := setup(t)
	te.enqueueN("q", 2)
	te.script("h.sh", "trap '' TERM\n"+leaveBehind+"touch started\nwhile :; do sleep 0.01; done\n")
	e := te.exec(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "grace": "1h"}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitFile(t, filepath.Join(te.dir, "started"), 10*time.Second)
	e.Kill(syscall.SIGTERM)
	select {
	case r := <-done:
		t.Fatalf("Run returned before grace although the handler ignores SIGTERM: %v", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	e.Kill(syscall.SIGKILL)
	select {
	case r := <-done:
		wantExit(t, r.err, ExitStopped)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Kill(SIGKILL)")
	}
	assertTreeGone(t, treePids(t, te.dir))
	assertAllReadyUnspent(t, te, "q", 2)
}
