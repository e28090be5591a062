package cli_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/internal/storeopen"
	"github.com/daguq/daguq/queuestore"
)

// poolState reads a pool straight from the database (a file or a
// PostgreSQL URL).
func (e *env) poolState(name string) queuestore.PoolStatus {
	e.tb.Helper()
	st, err := storeopen.Open(e.db, storeopen.Options{})
	if err != nil {
		e.tb.Fatal(err)
	}
	defer st.Close()
	p, err := st.Pool(context.Background(), name)
	if err != nil {
		e.tb.Fatal(err)
	}
	return p
}

// waitPool polls the pool every 20 ms until cond holds.
func (e *env) waitPool(name string, within time.Duration, what string, cond func(queuestore.PoolStatus) bool) queuestore.PoolStatus {
	e.tb.Helper()
	deadline := time.Now().Add(within)
	for {
		p := e.poolState(name)
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("%s: not within %s; pool %+v", what, within, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// started is a daguq process running in the background.
type started struct {
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer // read while it runs
	done   chan struct{}
}

func (e *env) start(args ...string) *started {
	e.tb.Helper()
	s := &started{cmd: e.command(nil, args...), done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		e.tb.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	e.tb.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

// wait waits for the process to end and returns its exit status.
func (s *started) wait(tb testing.TB, within time.Duration) int {
	tb.Helper()
	select {
	case <-s.done:
	case <-time.After(within):
		tb.Fatalf("%v still running after %s; stderr: %s", s.cmd.Args, within, s.stderr.String())
	}
	return s.cmd.ProcessState.ExitCode()
}

// poolRun is one "daguq pool run" of the proof test.
type poolRun struct {
	id, slots int
	priority  int
}

// Thirty "daguq pool run" processes of mixed weights on one pool of 3
// slots: the slots their commands use never add up to more than 3, every
// command runs, and the grants go in priority order, then arrival order.
// The processes join the line one by one while a blocker holds the whole
// pool, then the blocker ends.
func TestPoolRunProof(t *testing.T) {
	t.Parallel()
	poolRunProof(t, newEnv(t))
}

// The same on PostgreSQL: the processes share nothing but the URL.
func TestPoolRunProofOnPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	e := newEnv(t)
	e.db = url
	e.setenv("DAGUQ_DB", url)
	poolRunProof(t, e)
}

func poolRunProof(t *testing.T, e *env) {
	e.ok(nil, "pool", "set", "db", "3")
	logFile := filepath.Join(e.dir, "log")
	release := filepath.Join(e.dir, "release")
	blocker := e.start("pool", "run", "db", "--slots", "3", "--", "sh", "-c",
		`while [ ! -e "$0" ]; do sleep 0.02; done`, release)
	e.waitPool("db", 30*time.Second, "the blocker holds the pool", func(p queuestore.PoolStatus) bool { return p.Used == 3 })

	// Each command logs its start and end (nanoseconds), its slots and id,
	// and the grant's id, which numbers the grants in the order made.
	const script = `echo "start $(date +%s%N) $DAGUQ_POOL_SLOTS $0 $DAGUQ_POOL_GRANT" >> "$1"; sleep 0.05; echo "end $(date +%s%N) $DAGUQ_POOL_SLOTS $0 $DAGUQ_POOL_GRANT" >> "$1"`
	var runs []poolRun
	var procs []*started
	for i := range 30 {
		r := poolRun{id: i, slots: 1 + (i*7)%3, priority: (i * 5) % 3}
		runs = append(runs, r)
		procs = append(procs, e.start("pool", "run", "db", "--slots", strconv.Itoa(r.slots), "--priority", strconv.Itoa(r.priority),
			"--", "sh", "-c", script, strconv.Itoa(i), logFile))
		e.waitPool("db", 30*time.Second, fmt.Sprintf("run %d in line", i), func(p queuestore.PoolStatus) bool { return len(p.Waiters) == i+1 })
	}
	os.WriteFile(release, nil, 0o644)
	if code := blocker.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("blocker: exit %d: %s", code, blocker.stderr.String())
	}
	for i, p := range procs {
		if code := p.wait(t, 2*time.Minute); code != 0 {
			t.Errorf("run %d: exit %d: %s", i, code, p.stderr.String())
		}
	}

	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	type event struct {
		at, delta int64
	}
	var events []event
	grantOf := map[int]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 {
			t.Fatalf("log line %q", line)
		}
		at, _ := strconv.ParseInt(f[1], 10, 64)
		slots, _ := strconv.ParseInt(f[2], 10, 64)
		id, _ := strconv.Atoi(f[3])
		grant, _ := strconv.ParseInt(f[4], 10, 64)
		if f[0] == "start" {
			events = append(events, event{at, slots})
			grantOf[id] = grant
			if want := int64(runs[id].slots); slots != want {
				t.Errorf("run %d held %d slots, asked for %d", id, slots, want)
			}
		} else {
			events = append(events, event{at, -slots})
		}
	}
	if len(grantOf) != 30 || len(events) != 60 {
		t.Fatalf("%d commands ran (%d log lines), want 30", len(grantOf), len(events))
	}
	// The sweep line: ends before starts at the same instant.
	sort.Slice(events, func(i, j int) bool {
		if events[i].at != events[j].at {
			return events[i].at < events[j].at
		}
		return events[i].delta < events[j].delta
	})
	var inUse, most int64
	for _, ev := range events {
		inUse += ev.delta
		most = max(most, inUse)
	}
	if most > 3 {
		t.Errorf("the commands used %d slots at once; the capacity is 3", most)
	}
	t.Logf("at most %d of 3 slots in use at once", most)

	want := append([]poolRun(nil), runs...)
	sort.SliceStable(want, func(i, j int) bool { return want[i].priority > want[j].priority })
	got := append([]poolRun(nil), runs...)
	sort.Slice(got, func(i, j int) bool { return grantOf[got[i].id] < grantOf[got[j].id] })
	for i := range want {
		if got[i].id != want[i].id {
			t.Fatalf("grant %d went to run %d (priority %d), want run %d (priority %d)\ngot  %v\nwant %v",
				i, got[i].id, got[i].priority, want[i].id, want[i].priority, ids(got), ids(want))
		}
	}
	if p := e.poolState("db"); p.Used != 0 || len(p.Waiters) != 0 {
		t.Errorf("pool at the end: %+v", p)
	}
}

func ids(runs []poolRun) []int {
	out := make([]int, len(runs))
	for i, r := range runs {
		out[i] = r.id
	}
	return out
}

// A holder killed with SIGKILL gives nothing back itself: its slots return
// when its lease runs out, and the next in line gets them then.
func TestPoolRunKilledHolderSlotsReturnAfterTheLease(t *testing.T) {
	t.Parallel()
	killedHolder(t, newEnv(t))
}

func TestPoolRunKilledHolderOnPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	e := newEnv(t)
	e.db = url
	e.setenv("DAGUQ_DB", url)
	killedHolder(t, e)
}

func killedHolder(t *testing.T, e *env) {
	e.ok(nil, "pool", "set", "db", "2")
	holder := e.start("pool", "run", "db", "--slots", "2", "--lease", "2s", "--", "sleep", "60")
	e.waitPool("db", 30*time.Second, "the holder holds the pool", func(p queuestore.PoolStatus) bool { return p.Used == 2 })
	next := e.start("pool", "run", "db", "--", "echo", "next ran")
	e.waitPool("db", 30*time.Second, "the next in line", func(p queuestore.PoolStatus) bool { return len(p.Waiters) == 1 })
	time.Sleep(time.Second) // a heartbeat or more has extended the lease
	holder.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	if code := next.wait(t, 30*time.Second); code != 0 || next.stdout.String() != "next ran\n" {
		t.Fatalf("next: exit %d, stdout %q, stderr %s", code, next.stdout.String(), next.stderr.String())
	}
	// Its lease had at least 2s - 2s/3 to run after the kill.
	waited := time.Since(killed)
	if waited < time.Second {
		t.Errorf("the slots came back %s after SIGKILL, before the lease (2s) could run out", waited)
	}
	t.Logf("slots back %s after SIGKILL (lease 2s)", waited.Round(time.Millisecond))
}

// A holder stopped with SIGTERM passes the signal to its command and gives
// the slots back as soon as the command has ended, long before the lease;
// the command's exit status is its own.
func TestPoolRunStoppedHolderFreesSlotsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "pool", "set", "db", "1")
	holder := e.start("pool", "run", "db", "--lease", "10m", "--", "sh", "-c",
		`trap 'echo term > "$0/got-term"; exit 143' TERM; touch "$0/running"; while :; do sleep 0.05; done`, e.dir)
	e.waitPool("db", 30*time.Second, "the holder holds the pool", func(p queuestore.PoolStatus) bool { return p.Used == 1 })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(e.dir, "running")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not start")
		}
	}
	next := e.start("pool", "run", "db", "--", "echo", "next ran")
	e.waitPool("db", 30*time.Second, "the next in line", func(p queuestore.PoolStatus) bool { return len(p.Waiters) == 1 })
	holder.cmd.Process.Signal(syscall.SIGTERM)
	stopped := time.Now()
	if code := holder.wait(t, 30*time.Second); code != 143 {
		t.Errorf("holder: exit %d, want the command's 143; stderr %s", code, holder.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(e.dir, "got-term")); err != nil {
		t.Errorf("the command did not get SIGTERM: %v", err)
	}
	if code := next.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("next: exit %d: %s", code, next.stderr.String())
	}
	if d := time.Since(stopped); d > 10*time.Second {
		t.Errorf("the next in line ran %s after the stop: the slot was not given back at once", d)
	}
}

// A waiter stopped with SIGTERM leaves the line at once (exit 4); one that
// waits past --wait-timeout leaves it with exit 5. Neither runs its command.
func TestPoolRunWaiterStopAndTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	waiter := e.waitingRun("--", "echo", "ran")
	waiter.cmd.Process.Signal(syscall.SIGTERM)
	if code := waiter.wait(t, 30*time.Second); code != 4 || waiter.stdout.String() != "" {
		t.Errorf("stopped waiter: exit %d, stdout %q; stderr %s", code, waiter.stdout.String(), waiter.stderr.String())
	}
	if !strings.Contains(waiter.stderr.String(), `waiting for 1 slot(s) of 1 (0 free); held by daguq pool run (1 slot(s)`) {
		t.Errorf("the waiter did not say why it waits: %s", waiter.stderr.String())
	}
	if p := e.poolState("db"); len(p.Waiters) != 0 {
		t.Errorf("waiters after the stop: %+v", p.Waiters)
	}
	r := e.run(nil, "pool", "run", "db", "--wait-timeout", "200ms", "--", "echo", "ran")
	if r.Code != 5 || r.Stdout != "" || !strings.Contains(r.Stderr, "wait_timeout 200ms passed") {
		t.Errorf("wait timeout: %s", r)
	}
}

// waitingRun sets the pool "db" to 1 slot, lets a `daguq pool run` hold it,
// and starts `daguq pool run db ARGS...`, which waits in line. It returns
// once the waiter has said it waits (just after joining the line).
func (e *env) waitingRun(args ...string) *started {
	e.tb.Helper()
	e.ok(nil, "pool", "set", "db", "1")
	e.start("pool", "run", "db", "--", "sleep", "60")
	e.waitPool("db", 30*time.Second, "the holder holds the pool", func(p queuestore.PoolStatus) bool { return p.Used == 1 })
	waiter := e.start(append([]string{"pool", "run", "db"}, args...)...)
	e.waitPool("db", 30*time.Second, "the waiter in line", func(p queuestore.PoolStatus) bool { return len(p.Waiters) == 1 })
	waitFor(e.tb, "the waiter says it waits", &waiter.stderr, func() bool { return strings.Contains(waiter.stderr.String(), "waiting for") })
	return waiter
}

// pool list names holders and waiters by Dagu's DAG, run and step, and a
// pool must be set before it is used.
func TestPoolCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run(nil, "pool", "run", "db", "--", "true")
	if r.Code != 2 || !strings.Contains(r.Stderr, "daguq pool set db CAPACITY") {
		t.Errorf("unset pool: %s", r)
	}
	e.ok(nil, "pool", "set", "db", "2")
	if r := e.run(nil, "pool", "run", "db", "--slots", "3", "--", "true"); r.Code != 2 || !strings.Contains(r.Stderr, "slots 3 is more than the capacity 2") {
		t.Errorf("3 slots of 2: %s", r)
	}
	if r := e.run(nil, "pool", "run", "db", "--slots", "0", "--", "true"); r.Code != 2 || !strings.Contains(r.Stderr, "--slots must be 1..1000000, got 0") {
		t.Errorf("0 slots: %s", r)
	}
	if r := e.run(nil, "pool", "set", "db", "0"); r.Code != 2 {
		t.Errorf("capacity 0: %s", r)
	}
	vars := e.vars
	e.vars = append(e.vars, "DAG_NAME=etl", "DAG_RUN_ID=0193", "DAG_RUN_STEP_NAME=load")
	e.start("pool", "run", "db", "--slots", "2", "--", "sleep", "60")
	e.waitPool("db", 30*time.Second, "the holder", func(p queuestore.PoolStatus) bool { return p.Used == 2 })
	e.vars = append(vars, "DAG_NAME=reports", "DAG_RUN_ID=0194", "DAG_RUN_STEP_NAME=export")
	e.start("pool", "run", "db", "--priority", "4", "--", "true")
	e.vars = vars
	e.waitPool("db", 30*time.Second, "a holder and a waiter", func(p queuestore.PoolStatus) bool { return p.Used == 2 && len(p.Waiters) == 1 })
	r = e.ok(nil, "pool", "list")
	for _, want := range []string{"db    2         2     0     1", "db    holds    2      0         etl      0193  load", "db    waits 1  1      4         reports  0194  export"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("pool list lacks %q:\n%s", want, r.Stdout)
		}
	}
	if r := e.run(nil, "pool", "rm", "db"); r.Code != 2 || !strings.Contains(r.Stderr, "1 holder(s) and 1 waiter(s)") {
		t.Errorf("rm of a pool in use: %s", r)
	}
	e.ok(nil, "pool", "rm", "db", "--force")
	if r := e.ok(nil, "pool", "list"); !strings.Contains(r.Stdout, "no pools") {
		t.Errorf("after rm: %s", r.Stdout)
	}
	// With --with, as Dagu's step type calls it.
	e.ok(nil, "pool", "set", "w", "1")
	r = e.ok(nil, "pool", "run", "--with", `{"pool":"w","slots":1,"run":"echo \"$DAGUQ_POOL\"","priority":0,"wait_timeout":"0s","lease":"1m","grace":"3s","shell":"sh"}`)
	if r.Stdout != "w\n" {
		t.Errorf("--with: %s", r)
	}
}
