package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

func (te *testEnv) setPool(name string, capacity int) {
	te.tb.Helper()
	if err := te.store().SetPool(context.Background(), name, capacity); err != nil {
		te.tb.Fatal(err)
	}
}

func (te *testEnv) pool(name string) queuestore.PoolStatus {
	te.tb.Helper()
	p, err := te.store().Pool(context.Background(), name)
	if err != nil {
		te.tb.Fatal(err)
	}
	return p
}

// hold takes slots of a pool straight through the store, as another step.
func (te *testEnv) hold(name string, slots int) *queuestore.Grant {
	te.tb.Helper()
	g, err := te.store().Acquire(context.Background(), queuestore.AcquireOptions{Pool: name, Slots: slots, Lease: time.Hour,
		Holder: queuestore.Holder{DAG: "other", RunID: "r0", Step: "busy", Host: "h", PID: 1}})
	if err != nil {
		te.tb.Fatal(err)
	}
	return g
}

// waitFor polls cond every 5 ms until it holds.
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The command runs as a plain step would: its stdout is the step's stdout,
// its stderr the step's stderr, its exit status the step's; it sees the
// pool in its environment, and the pool shows the step (from Dagu's
// variables) as the holder while it runs.
func TestPoolStepRunsTheCommand(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.setPool("db", 3)
	te.script("cmd.sh", `echo "out $DAGUQ_POOL $DAGUQ_POOL_SLOTS $1"
echo err >&2
touch running
while [ ! -e finish ]; do sleep 0.01; done
exit 7
`)
	e := te.exec(KindPool, map[string]any{"pool": "db", "slots": "2", "run": []any{"./cmd.sh", "a b"}}, func(s *Spec) {
		s.Env = []string{"DAG_NAME=etl", "DAG_RUN_ID=0193", "DAG_RUN_STEP_NAME=load"}
	})
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitFile(t, filepath.Join(te.dir, "running"), 10*time.Second)
	p := te.pool("db")
	if p.Used != 2 || len(p.Holders) != 1 {
		t.Fatalf("pool while the command runs: %+v", p)
	}
	if h := p.Holders[0]; h.DAG != "etl" || h.RunID != "0193" || h.Step != "load" || h.PID != os.Getpid() || h.Host == "" {
		t.Errorf("holder %+v, want etl/0193/load and this process", h)
	}
	os.WriteFile(filepath.Join(te.dir, "finish"), nil, 0o644)
	r := <-done
	wantExit(t, r.err, 7)
	if r.stdout != "out db 2 a b\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "err\n") {
		t.Errorf("stderr %q", r.stderr)
	}
	if p := te.pool("db"); p.Used != 0 || len(p.Holders) != 0 {
		t.Errorf("pool after the command: %+v", p)
	}
}

// A command line goes through the shell, a script body through a file; both
// exit 0.
func TestPoolStepCommandForms(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.setPool("db", 1)
	r := te.run(KindPool, map[string]any{"pool": "db", "run": `printf '%s' "$DAGUQ_POOL" | tr a-z A-Z`})
	if r.err != nil || r.stdout != "DB" {
		t.Errorf("run line: %v %q", r.err, r.stdout)
	}
	r = te.run(KindPool, map[string]any{"pool": "db", "script": "set -e\necho one\necho two\n", "shell": "sh -e"})
	if r.err != nil || r.stdout != "one\ntwo\n" {
		t.Errorf("script: %v %q", r.err, r.stdout)
	}
	// The step's own command, for Dagu's Go registry.
	e := te.exec(KindPool, map[string]any{"pool": "db"}, func(s *Spec) { s.Command = "echo from-command" })
	if r := runExecutor(t, e, context.Background()); r.err != nil || r.stdout != "from-command\n" {
		t.Errorf("spec command: %v %q", r.err, r.stdout)
	}
}

func TestPoolStepRefusesWhatCanNeverRun(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.setPool("db", 2)
	for _, tc := range []struct {
		name   string
		config map[string]any
		code   int
		want   string
	}{
		{"pool not set", map[string]any{"pool": "nope", "run": "true"}, ExitUsage, "daguq pool set nope"},
		{"more slots than the capacity", map[string]any{"pool": "db", "slots": 3, "run": "true"}, ExitUsage, "slots 3 is more than the capacity 2"},
		{"missing program", map[string]any{"pool": "db", "run": []any{"./nope.sh"}}, ExitUsage, `handler program "./nope.sh"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := te.run(KindPool, tc.config)
			wantExit(t, r.err, tc.code)
			if !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", r.err, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q: the command must not run", r.stdout)
			}
		})
	}
	if p := te.pool("db"); p.Used != 0 || len(p.Waiters) != 0 {
		t.Errorf("pool %+v: want nothing held or waiting", p)
	}
}

func TestPoolStepBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"slots zero", map[string]any{"pool": "db", "run": "x", "slots": 0}, []string{"slots must be 1..1000000, got 0"}},
		{"slots text", map[string]any{"pool": "db", "run": "x", "slots": "two"}, []string{"slots must be an integer"}},
		{"unknown key", map[string]any{"pool": "db", "run": "x", "slot": 2}, []string{`unknown key "slot"`, "allowed keys are", "slots"}},
		{"no pool", map[string]any{"run": "x"}, []string{"pool is required", "daguq pool set"}},
		{"bad pool name", map[string]any{"pool": "my pool", "run": "x"}, []string{`pool "my pool" must be`}},
		{"no command", map[string]any{"pool": "db"}, []string{"run or script is required"}},
		{"run and script", map[string]any{"pool": "db", "run": "x", "script": "y"}, []string{"run and script are exclusive"}},
		{"wait_timeout negative", map[string]any{"pool": "db", "run": "x", "wait_timeout": "-1s"}, []string{"wait_timeout must be at least 0s"}},
		{"lease zero", map[string]any{"pool": "db", "run": "x", "lease": 0}, []string{"lease must be 1s..168h0m0s, got 0s"}},
		{"priority range", map[string]any{"pool": "db", "run": "x", "priority": int64(1) << 40}, []string{"priority must be -1000000..1000000"}},
		{"grace", map[string]any{"pool": "db", "run": "x", "grace": "2h"}, []string{"grace must be 0s..1h0m0s"}},
		{"shell empty", map[string]any{"pool": "db", "run": "x", "shell": " "}, []string{"shell must name a program"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Validate(KindPool, tc.config)
			if err == nil {
				t.Fatalf("Validate accepted %v", tc.config)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			_, nerr := New(KindPool, Spec{Config: tc.config})
			wantExit(t, nerr, ExitUsage)
		})
	}
	// Dagu fills in every schema default before our parser sees with:.
	cfg := map[string]any{"pool": "db", "run": "x"}
	for _, f := range Fields(KindPool) {
		if f.Default != nil {
			cfg[f.Name] = f.Default
		}
	}
	if err := Validate(KindPool, cfg); err != nil {
		t.Errorf("schema defaults: %v", err)
	}
}

// A step waits in line while the pool is full, says so on stderr, and runs
// when the slots come free.
func TestPoolStepWaitsForItsTurn(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.setPool("db", 2)
	g := te.hold("db", 2)
	e := te.exec(KindPool, map[string]any{"pool": "db", "run": "echo ran"}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitFor(t, 10*time.Second, "the step in line", func() bool { return len(te.pool("db").Waiters) == 1 })
	if err := te.store().ReleaseGrant(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.stdout != "ran\n" {
		t.Fatalf("%v %q %s", r.err, r.stdout, r.stderr)
	}
	for _, want := range []string{`daguq: pool "db": waiting for 1 slot(s) of 2 (0 free); held by other/r0/busy (2 slot(s), h:1); 1 in line`, `got 1 slot(s) after`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
}

// wait_timeout ends the wait with exit status 5; the step leaves the line
// and the command does not run.
func TestPoolStepWaitTimeout(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.setPool("db", 1)
	te.hold("db", 1)
	start := time.Now()
	r := te.run(KindPool, map[string]any{"pool": "db", "run": "echo ran", "wait_timeout": "300ms"})
	wantExit(t, r.err, ExitWaitTimeout)
	if d := time.Since(start); d < 300*time.Millisecond || d > 10*time.Second {
		t.Errorf("returned after %s", d)
	}
	if r.stdout != "" || !strings.Contains(r.err.Error(), "wait_timeout 300ms passed") {
		t.Errorf("stdout %q, err %v", r.stdout, r.err)
	}
	if p := te.pool("db"); len(p.Waiters) != 0 {
		t.Errorf("waiters %+v, want none", p.Waiters)
	}
}

// Stopped while waiting: exit 4 at once, out of the line.
func TestPoolStepKilledWhileWaiting(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.setPool("db", 1)
	te.hold("db", 1)
	e := te.exec(KindPool, map[string]any{"pool": "db", "run": "echo ran"}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitFor(t, 10*time.Second, "the step in line", func() bool { return len(te.pool("db").Waiters) == 1 })
	e.Kill(syscall.SIGTERM)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Kill")
	}
	wantExit(t, r.err, ExitStopped)
	if p := te.pool("db"); len(p.Waiters) != 0 || r.stdout != "" {
		t.Errorf("waiters %+v, stdout %q: want none", p.Waiters, r.stdout)
	}
}

// Stopped while running: the command gets the signal, the slots are given
// back as soon as it has ended, and its exit status is the step's.
func TestPoolStepKilledWhileRunning(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.setPool("db", 1)
	te.script("cmd.sh", `trap 'echo term > got-term; exit 143' TERM
touch running
while :; do sleep 0.05; done
`)
	e := te.exec(KindPool, map[string]any{"pool": "db", "run": "./cmd.sh", "grace": "5s"}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitFile(t, filepath.Join(te.dir, "running"), 10*time.Second)
	killed := time.Now()
	e.Kill(syscall.SIGTERM)
	r := <-done
	if d := time.Since(killed); d > 4*time.Second {
		t.Errorf("Run returned %s after Kill", d)
	}
	wantExit(t, r.err, 143)
	if _, err := os.Stat(filepath.Join(te.dir, "got-term")); err != nil {
		t.Errorf("the command did not get SIGTERM: %v", err)
	}
	if p := te.pool("db"); p.Used != 0 {
		t.Errorf("pool %+v: want the slot given back", p)
	}
}

// A command that ignores SIGTERM is killed after grace; a command killed
// by a signal ends the step with 128+N.
func TestPoolStepKillEscalates(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.setPool("db", 1)
	te.script("cmd.sh", "trap '' TERM\ntouch running\nwhile :; do sleep 0.05; done\n")
	e := te.exec(KindPool, map[string]any{"pool": "db", "run": []any{"./cmd.sh"}, "grace": "200ms"}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitFile(t, filepath.Join(te.dir, "running"), 10*time.Second)
	e.Kill(syscall.SIGTERM)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after grace")
	}
	wantExit(t, r.err, 128+int(syscall.SIGKILL))
	if !strings.Contains(r.err.Error(), "stopped: command killed by signal 9") {
		t.Errorf("err %v", r.err)
	}
	if p := te.pool("db"); p.Used != 0 {
		t.Errorf("pool %+v: want the slot given back", p)
	}
}

// The heartbeat keeps the grant alive while the command runs longer than
// its lease.
func TestPoolStepHeartbeat(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.setPool("db", 1)
	te.script("cmd.sh", "touch running\nwhile [ ! -e finish ]; do sleep 0.02; done\n")
	e := te.exec(KindPool, map[string]any{"pool": "db", "run": "./cmd.sh", "lease": "1s"}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitFile(t, filepath.Join(te.dir, "running"), 10*time.Second)
	time.Sleep(2500 * time.Millisecond) // more than two leases
	p := te.pool("db")
	os.WriteFile(filepath.Join(te.dir, "finish"), nil, 0o644)
	if r := <-done; r.err != nil {
		t.Fatal(r.err)
	}
	if p.Used != 1 {
		t.Errorf("pool after 2.5 leases: %+v, want the slot still held", p)
	}
	if strings.Contains(te.run(KindPool, map[string]any{"pool": "db", "run": "true"}).stderr, "lost") {
		t.Error("a grant was lost")
	}
}
