//go:build unix

package proctree

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Starter runs command after command under one supervisor, and each
// command's tree ends with it as under a supervisor of its own: after a
// stop and SIGKILL too, and with a signal byte sent after the end.
func TestStarterReusesSupervisor(t *testing.T) {
	t.Parallel()
	needSupervisor(t)
	s := NewStarter("")
	defer s.Close()
	var parents []string
	for i := range 3 {
		dir := t.TempDir()
		script := spawn + "echo $PPID > parent\necho $$ > handler\nexit " + strconv.Itoa(i) + "\n"
		if i == 1 { // stopped, then killed
			script = spawn + "echo $PPID > parent\necho $$ > handler\necho > started\ntrap '' TERM\nwhile :; do sleep 0.01; done\n"
		}
		tree := startShWithStarter(t, s, dir, script)
		if i == 1 {
			waitFile(t, filepath.Join(dir, "started"))
			tree.Signal(syscall.SIGTERM)
			tree.Signal(syscall.SIGKILL)
		}
		code := tree.Wait()
		tree.Signal(syscall.SIGTERM) // after the end: reaches nothing, not the next command
		want := i
		if i == 1 {
			want = -1
		}
		if code != want {
			t.Errorf("command %d: exit code %d, want %d", i, code, want)
		}
		assertGone(t, pids(t, dir, "handler", "bg", "orphan", "session"), 0)
		b, _ := os.ReadFile(filepath.Join(dir, "parent"))
		parents = append(parents, strings.TrimSpace(string(b)))
	}
	if parents[0] == "" || parents[1] != parents[0] || parents[2] != parents[0] {
		t.Errorf("supervisors of the three commands: %v, want one", parents)
	}
}

// startShWithStarter starts sh -c script in dir under s, with stdin and
// output on /dev/null.
func startShWithStarter(tb testing.TB, s *Starter, dir, script string) *Tree {
	tb.Helper()
	c := Cmd{Path: "/bin/sh", Args: []string{"sh", "-c", script}, Dir: dir}
	t, err := s.Start(c)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// When the process that holds a Starter dies by SIGKILL while its
// supervisor waits for the next command, the supervisor removes the
// cleanup directory and exits; while a command runs, it kills the tree.
func TestStarterOwnerKilled(t *testing.T) {
	t.Parallel()
	needSupervisor(t)
	for _, busy := range []bool{false, true} {
		t.Run("busy="+strconv.FormatBool(busy), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cleanup := filepath.Join(dir, "cleanup")
			os.MkdirAll(filepath.Join(cleanup, "sub"), 0o700)
			os.WriteFile(filepath.Join(cleanup, "sub", "f"), []byte("x"), 0o600)
			cmd := exec.Command(os.Args[0], "-test.run=^TestStarterHelper$")
			cmd.Env = append(os.Environ(), helperDir+"="+dir, helperCleanup+"="+cleanup, helperRunning+"="+strconv.FormatBool(busy))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			line, _ := bufio.NewReader(out).ReadString('\n')
			sup, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("helper said %q", line)
			}
			var tree map[string]int
			if busy {
				waitFile(t, filepath.Join(dir, "started"))
				tree = pids(t, dir, "handler", "bg", "orphan", "session")
			}
			cmd.Process.Kill()
			cmd.Wait()
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := os.Stat(cleanup); os.IsNotExist(err) && !running(sup) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := os.Stat(cleanup); !os.IsNotExist(err) {
				t.Errorf("cleanup directory left: %v", err)
			}
			if running(sup) {
				syscall.Kill(sup, syscall.SIGKILL)
				t.Errorf("supervisor %d still runs", sup)
			}
			assertGone(t, tree, 5*time.Second)
		})
	}
}

const (
	helperDir     = "PROCTREE_HELPER_DIR"
	helperCleanup = "PROCTREE_HELPER_CLEANUP"
	helperRunning = "PROCTREE_HELPER_RUNNING"
)

// TestStarterHelper is the process TestStarterOwnerKilled kills: it runs
// one command under a Starter, prints the supervisor's pid, and then waits
// idle or with a second command running.
func TestStarterHelper(t *testing.T) {
	dir := os.Getenv(helperDir)
	if dir == "" {
		t.Skip("run by TestStarterOwnerKilled only")
	}
	s := NewStarter(os.Getenv(helperCleanup))
	first := startShWithStarter(t, s, dir, "echo $PPID > supervisor")
	first.Wait()
	if os.Getenv(helperRunning) == "true" {
		startShWithStarter(t, s, dir, spawn+"echo $$ > handler\necho > started\nwhile :; do sleep 0.01; done\n")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "supervisor"))
	os.Stdout.WriteString(strings.TrimSpace(string(b)) + "\n")
	time.Sleep(time.Hour)
}
