package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/proctest"
)

// A consumer killed with SIGKILL in the middle of a drain loses nothing: the
// batches it held come back when their lease runs out (no heartbeat extends
// it any more) and are handled again, as attempt 2. Those are the only
// messages handled twice.
func TestKilledConsumerLosesNothing(t *testing.T) {
	t.Parallel()
	const total = 4000
	e := newEnv(t)
	e.ok(strings.NewReader(jsonLines(total)), "enqueue", "--queue", "crash", "--file", "-")
	out := filepath.Join(e.dir, "out")
	// Each batch is saved whole to a file named after its consumer, then the
	// handler takes a moment: a kill that follows a saved file lands while
	// that batch is still held.
	handler := func(name string) []string { return proctest.RecordingHandler(t, out, name, "0.2") }
	consume := func(name string) []string {
		args := []string{"consume", "--queue", "crash", "--batch-size", "50", "--concurrency", "2",
			"--lease", "2s", "--progress-interval", "0s", "--consumer", name, "--"}
		return append(args, handler(name)...)
	}

	victim := e.command(nil, consume("victim")...)
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.run(nil, consume(fmt.Sprintf("c%d", i))...); r.Code != 0 {
				t.Errorf("consumer c%d: %s", i, r)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(out, "victim.*"))
		if len(files) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			victim.Process.Kill()
			t.Fatal("the victim handled no batch in 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	victim.Process.Kill() // SIGKILL: no release, no ack, no heartbeat
	killed := time.Now()
	victim.Wait()
	wg.Wait()

	// What the victim held is leased until its lease ends; then a last
	// consumer takes it.
	time.Sleep(time.Until(killed.Add(2500 * time.Millisecond)))
	e.ok(nil, consume("sweeper")...)

	doubles := proctest.CheckKilledConsumer(t, proctest.ReadDeliveries(t, out), total, "victim", killed)
	if doubles == 0 {
		t.Errorf("no message of the killed consumer was handled again: its batches were lost or never held")
	}
	t.Logf("%d messages held by the killed consumer were handled again after its lease ran out", doubles)
	if s := e.stats("crash"); s.Ready+s.InFlight+s.Delayed+s.Dead != 0 {
		t.Errorf("after the sweep: %+v", s)
	}
}

// leaveBehind is a handler script that starts three processes meant to
// outlive it and records their pids: one in the handler's process group
// (bg), one orphaned by a double fork (orphan), one in a session of its own
// (session). All ignore SIGTERM. Then it runs until killed.
const leaveBehind = `#!/bin/sh
trap 'echo got-term >> term' TERM INT
echo $$ > pid.handler
sh -c 'trap "" TERM; echo $$ > pid.bg.tmp; mv pid.bg.tmp pid.bg; exec sleep 1000' &
sh -c 'sh -c "trap \"\" TERM; echo \$\$ > pid.orphan.tmp; mv pid.orphan.tmp pid.orphan; exec sleep 1000" &' &
setsid sh -c 'trap "" TERM; echo $$ > pid.session.tmp; mv pid.session.tmp pid.session; exec sleep 1000' &
while [ ! -f pid.bg ] || [ ! -f pid.orphan ] || [ ! -f pid.session ]; do sleep 0.01; done
touch started
while :; do sleep 0.05; done
`

// startLeaveBehind writes leaveBehind to dir/h.sh and starts daguq consume
// on one message of queue "tree" with it, and TMPDIR in dir/tmp; it returns
// once the handler's processes run. done closes when daguq has exited.
func startLeaveBehind(tb testing.TB, e *env, flags ...string) (cmd *exec.Cmd, done <-chan struct{}, stderr *syncBuffer) {
	tb.Helper()
	if runtime.GOOS != "linux" {
		tb.Skip("handler trees are swept on Linux")
	}
	if _, err := exec.LookPath("setsid"); err != nil {
		tb.Skip("no setsid(1)")
	}
	if err := os.WriteFile(filepath.Join(e.dir, "h.sh"), []byte(leaveBehind), 0o755); err != nil {
		tb.Fatal(err)
	}
	e.ok(nil, "enqueue", "--queue", "tree", "--messages", `[1,2,3]`)
	tmp := filepath.Join(e.dir, "tmp")
	os.Mkdir(tmp, 0o700)
	e.setenv("TMPDIR", tmp)
	args := append([]string{"consume", "--queue", "tree", "--batch-size", "3", "--progress-interval", "0s"}, flags...)
	cmd = e.command(nil, append(args, "--", "./h.sh")...)
	stderr = &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() { cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(e.dir, "started")); err == nil {
			return cmd, exited, stderr
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the handler did not start\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
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

// aliveOf lists the processes of pids still alive (kill -0 succeeds:
// running, or a zombie nobody reaped).
func aliveOf(pids map[string]int) []string {
	var alive []string
	for name, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			alive = append(alive, fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	sort.Strings(alive)
	return alive
}

// killTree kills what a failed test left running.
func killTree(pids map[string]int) {
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// runDirs lists the consumers' temporary directories in tmp.
func runDirs(tmp string) []string {
	dirs, _ := filepath.Glob(filepath.Join(tmp, "daguq-*"))
	return dirs
}

// kill -9 of daguq consume while its handler runs: within grace + 1 s no
// process of the handler's tree is left (in its group, orphaned, or in a
// session of its own), and the consumer's temporary directory is gone.
func TestKilledConsumerLeavesNoHandlerTree(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	e := newEnv(t)
	cmd, done, stderr := startLeaveBehind(t, e, "--grace", grace.String())
	pids := treePids(t, e.dir)
	t.Cleanup(func() { killTree(pids) })
	tmp := filepath.Join(e.dir, "tmp")
	if len(runDirs(tmp)) != 1 {
		t.Fatalf("want one temporary directory of the consumer in %s, got %v", tmp, runDirs(tmp))
	}

	cmd.Process.Kill() // SIGKILL: daguq cleans up nothing itself
	killed := time.Now()
	<-done
	deadline := killed.Add(grace + time.Second)
	for (len(aliveOf(pids)) > 0 || len(runDirs(tmp)) > 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive := aliveOf(pids); len(alive) > 0 {
		t.Errorf("%s after kill -9 of daguq: still alive: %v\n%s", grace+time.Second, alive, stderr)
	}
	if dirs := runDirs(tmp); len(dirs) > 0 {
		t.Errorf("%s after kill -9 of daguq: its temporary directory is still there: %v", grace+time.Second, dirs)
	}
}

// kill -9 of daguq consume while no handler runs (a batch lingers for
// max_wait): nothing removes its temporary directory then, so the next
// consumer to start does, and it leaves the directories of live consumers
// alone.
func TestNextConsumerRemovesTempDirOfKilledOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tmp := filepath.Join(e.dir, "tmp")
	os.Mkdir(tmp, 0o700)
	e.setenv("TMPDIR", tmp)
	e.ok(nil, "enqueue", "--queue", "linger", "--messages", `[1]`)
	e.ok(nil, "enqueue", "--queue", "live", "--messages", `[1]`)
	lingering := func(queue string) *exec.Cmd {
		cmd := e.command(nil, "consume", "--queue", queue, "--batch-size", "100", "--max-wait", "1h",
			"--poll-interval", "20ms", "--progress-interval", "0s", "--", "true")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		deadline := time.Now().Add(30 * time.Second)
		for e.stats(queue).InFlight != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("consumer of %s claimed nothing", queue)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return cmd
	}
	victim := lingering("linger")
	dirs := runDirs(tmp)
	if len(dirs) != 1 {
		t.Fatalf("want the temporary directory of the consumer in %s, got %v", tmp, dirs)
	}
	victim.Process.Kill()
	victim.Wait()
	if _, err := os.Stat(dirs[0]); err != nil {
		t.Fatalf("precondition: the killed consumer's directory should still be there: %v", err)
	}
	live := lingering("live") // starts after the kill: its start sweeps
	if _, err := os.Stat(dirs[0]); err == nil {
		t.Errorf("the temporary directory %s of the killed consumer outlived the next consumer's start", dirs[0])
	}
	liveDirs := runDirs(tmp)
	if len(liveDirs) != 1 || liveDirs[0] == dirs[0] {
		t.Fatalf("want only the live consumer's directory, got %v", liveDirs)
	}
	e.ok(nil, "consume", "--queue", "empty", "--", "true") // another start: the live one's stays
	if _, err := os.Stat(liveDirs[0]); err != nil {
		t.Errorf("a start removed the directory of a live consumer: %v", err)
	}
	live.Process.Signal(syscall.SIGTERM)
	live.Wait()
	if got := runDirs(tmp); len(got) != 0 {
		t.Errorf("a stopped consumer left its directory: %v", got)
	}
}
