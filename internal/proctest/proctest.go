// Package proctest runs commands as real processes for tests: a clean
// environment, captured output, the exit status, and a time limit.
package proctest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Result is what a finished process printed and its exit status.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
}

// Environ is this process's environment without the variables drop names.
func Environ(drop func(name string) bool) []string {
	var vars []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !drop(name) {
			vars = append(vars, kv)
		}
	}
	return vars
}

// Setenv replaces or adds name in vars; an empty value removes it.
func Setenv(vars []string, name, value string) []string {
	var out []string
	for _, kv := range vars {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	if value != "" {
		out = append(out, name+"="+value)
	}
	return out
}

// Run runs cmd to its end with its output captured. After limit it kills
// the process (its whole group when cmd sets Setpgid) and fails the test.
func Run(tb testing.TB, cmd *exec.Cmd, limit time.Duration) Result {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	line := strings.Join(cmd.Args, " ")
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", line, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		if cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		} else {
			cmd.Process.Kill()
		}
		<-done
		tb.Fatalf("%s: still running after %s\nstderr: %s", line, limit, stderr.String())
	}
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.Code = exitErr.ExitCode()
	case err != nil:
		tb.Fatalf("%s: %v", line, err)
	}
	return res
}

// BuildDaguq builds the daguq binary as path (with the race detector when
// race), for tests that run it as a real process. It returns the build's
// output with the error.
func BuildDaguq(path string, race bool) error {
	args := []string{"build", "-o", path}
	if race {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "github.com/daguq/daguq/cmd/daguq")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("build daguq: %v\n%s", err, out)
	}
	return nil
}

// SyncBuffer is a process's output that a test may read while the process
// writes it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
