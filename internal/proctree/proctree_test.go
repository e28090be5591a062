//go:build unix

package proctree

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startSh starts sh -c script in dir with the environment plus env and its
// output in the file out.
func startSh(tb testing.TB, dir, script string, env ...string) (*Tree, *os.File) {
	return startShWith(tb, Cmd{}, dir, script, env...)
}

// startShWith is startSh with the fields of c that startSh does not set.
func startShWith(tb testing.TB, c Cmd, dir, script string, env ...string) (*Tree, *os.File) {
	tb.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		tb.Skip("no sh")
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { in.Close() })
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { out.Close() })
	c.Path, c.Args, c.Dir, c.Env, c.Stdin, c.Output = sh, []string{"sh", "-c", script}, dir, append(os.Environ(), env...), in, out
	t, err := Start(c)
	if err != nil {
		tb.Fatal(err)
	}
	return t, out
}

// pids reads the pid files a handler wrote.
func pids(tb testing.TB, dir string, names ...string) map[string]int {
	tb.Helper()
	got := map[string]int{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			tb.Fatalf("pid file %s: %v", n, err)
		}
		p, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || p <= 1 {
			tb.Fatalf("pid file %s: %q", n, b)
		}
		got[n] = p
	}
	return got
}

// waitFile waits until path has content.
func waitFile(tb testing.TB, path string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for fi, err := os.Stat(path); err != nil || fi.Size() == 0; fi, err = os.Stat(path) {
		if time.Now().After(deadline) {
			tb.Fatalf("%s not written in 10 s", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// assertGone fails for every pid still alive after within (zombies count as
// alive: the tree is reaped).
func assertGone(tb testing.TB, procs map[string]int, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for name, p := range procs {
		for alive(p) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if alive(p) {
			syscall.Kill(p, syscall.SIGKILL)
			tb.Errorf("process %s (pid %d) of the tree is still alive", name, p)
		}
	}
}

// spawn is a handler's shell code that leaves three processes running and
// records their pids: one in its group, one orphaned by a double fork, one
// in a session of its own (setsid). All ignore SIGTERM.
const spawn = `sh -c 'trap "" TERM; echo $$ > bg; exec sleep 1000' &
sh -c 'sh -c "trap \"\" TERM; echo \$\$ > orphan; exec sleep 1000" & ' &
setsid sh -c 'trap "" TERM; echo $$ > session; exec sleep 1000' &
while [ ! -s bg ] || [ ! -s orphan ] || [ ! -s session ]; do sleep 0.01; done
`

func needSupervisor(tb testing.TB) {
	tb.Helper()
	if !haveSupervisor {
		tb.Skip("no supervisor here (Linux with cgo only)")
	}
	if _, err := exec.LookPath("setsid"); err != nil {
		tb.Skip("no setsid")
	}
}

// A command that exits leaves nothing running: not in its group, not
// orphaned, not in a session of its own; also where the kernel lists no
// children in /proc/PID/task/TID/children.
func TestTreeEndsWithCommand(t *testing.T) {
	t.Parallel()
	needSupervisor(t)
	for _, tc := range []struct {
		name     string
		statOnly bool
	}{{"children files", false}, {"stat files", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tree, _ := startShWith(t, Cmd{statOnly: tc.statOnly}, dir, spawn+"echo $$ > handler\nexit 7\n")
			if code := tree.Wait(); code != 7 {
				t.Errorf("exit code %d, want 7", code)
			}
			assertGone(t, pids(t, dir, "handler", "bg", "orphan", "session"), 0)
		})
	}
}

// Signal starts a stop: the tree gets the signal (in and outside the
// command's group) and keeps running until it exits or SIGKILL comes.
func TestStopThenKill(t *testing.T) {
	t.Parallel()
	needSupervisor(t)
	for _, statOnly := range []bool{false, true} {
		t.Run("statOnly="+strconv.FormatBool(statOnly), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tree, _ := startShWith(t, Cmd{statOnly: statOnly}, dir, `trap 'echo $$ > handler; exit 143' TERM
setsid sh -c 'trap "echo term > listener-got-term; exit 0" TERM; echo $$ > listener; while :; do sleep 0.01; done' &
`+spawn+"while [ ! -s listener ]; do sleep 0.01; done\necho > started\nwhile :; do sleep 0.01; done\n")
			waitFile(t, filepath.Join(dir, "started"))
			done := make(chan int, 1)
			go func() { done <- tree.Wait() }()
			tree.Signal(syscall.SIGTERM)
			waitFile(t, filepath.Join(dir, "handler"))           // the handler got it
			waitFile(t, filepath.Join(dir, "listener-got-term")) // and a process in a session of its own
			procs := pids(t, dir, "handler", "bg", "orphan", "session", "listener")
			select {
			case code := <-done:
				t.Fatalf("Wait returned %d while processes that ignore SIGTERM still run", code)
			case <-time.After(100 * time.Millisecond):
			}
			for name, p := range procs {
				if name != "handler" && name != "listener" && !alive(p) {
					t.Errorf("%s died before SIGKILL", name)
				}
			}
			tree.Signal(syscall.SIGKILL)
			select {
			case code := <-done:
				if code != 143 {
					t.Errorf("exit code %d, want 143 (the handler's own)", code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Wait did not return after SIGKILL")
			}
			assertGone(t, procs, 0)
		})
	}
}

// The command gets stdin, the environment and the output file unchanged,
// without the supervisor's switch; its exit status and death by a signal
// come back as they are.
func TestCommandContract(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, script string
		code         int
	}{
		{"exit 0", "exit 0", 0},
		{"exit 3", "exit 3", 3},
		{"exit 143", "exit 143", 143},
		{"killed by a signal", "kill -TERM $$", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tree, _ := startSh(t, dir, "env > env.txt; "+tc.script, "PROCTREE_TEST=a b")
			if code := tree.Wait(); code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			env, _ := os.ReadFile(filepath.Join(dir, "env.txt"))
			if !strings.Contains(string(env), "PROCTREE_TEST=a b\n") || strings.Contains(string(env), envSupervise) {
				t.Errorf("environment of the command:\n%s", env)
			}
		})
	}

	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.WriteFile(in, []byte("line 1\nline 2\n"), 0o600)
	stdin, _ := os.Open(in)
	defer stdin.Close()
	out, _ := os.Create(filepath.Join(dir, "out"))
	defer out.Close()
	tree, err := Start(Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "wc -l; echo to-stderr >&2; pwd"}, Dir: dir, Stdin: stdin, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if code := tree.Wait(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "out"))
	if got := strings.Fields(string(b)); len(got) != 3 || got[0] != "2" || got[1] != "to-stderr" || got[2] != dir {
		t.Errorf("output %q", b)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "h.sh")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600)
	for _, tc := range []struct {
		name string
		cmd  Cmd
		want string
	}{
		{"missing program", Cmd{Path: filepath.Join(dir, "nope"), Args: []string{"nope"}}, "fork/exec " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"not executable", Cmd{Path: notExec, Args: []string{"h.sh"}}, "fork/exec " + notExec + ": permission denied"},
		{"missing dir", Cmd{Path: "/bin/sh", Args: []string{"sh"}, Dir: filepath.Join(dir, "nodir")}, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree, err := Start(tc.cmd)
			if err == nil {
				tree.Wait()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q", err, tc.want)
			}
		})
	}
}

// The fallback without a supervisor sweeps the command's group.
func TestDirectSweepsGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	impl, err := startDirect(Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 1000 & echo $! > bg"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if code := impl.wait(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	// The sleep was orphaned: whether init reaps it is not ours to test.
	bg := pids(t, dir, "bg")["bg"]
	deadline := time.Now().Add(5 * time.Second)
	for running(bg) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if running(bg) {
		syscall.Kill(bg, syscall.SIGKILL)
		t.Errorf("the command's background process (pid %d) outlived it", bg)
	}
}

// running reports a process that exists and is no zombie.
func running(pid int) bool {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		i := strings.LastIndexByte(string(b), ')')
		return i < 0 || !strings.HasPrefix(string(b[i+1:]), " Z")
	}
	return alive(pid)
}

// BenchmarkStartWait is the cost of one handler run: under a supervisor of
// its own, under a supervisor kept from the run before, and started
// directly.
func BenchmarkStartWait(b *testing.B) {
	devnull, _ := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	defer devnull.Close()
	c := Cmd{Path: "/bin/true", Args: []string{"true"}, Stdin: devnull, Output: devnull}
	b.Run("supervised", func(b *testing.B) {
		for b.Loop() {
			t, err := Start(c)
			if err != nil {
				b.Fatal(err)
			}
			t.Wait()
		}
	})
	b.Run("reused", func(b *testing.B) {
		s := NewStarter("")
		defer s.Close()
		for b.Loop() {
			t, err := s.Start(c)
			if err != nil {
				b.Fatal(err)
			}
			t.Wait()
		}
	})
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			t, err := startDirect(c)
			if err != nil {
				b.Fatal(err)
			}
			t.wait()
		}
	})
}
