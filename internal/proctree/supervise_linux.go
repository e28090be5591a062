//go:build cgo

package proctree

// The supervisor itself is C (supervise_linux.c): an ELF constructor that
// runs before the Go runtime would start, so a supervised handler costs
// about one exec more than a direct one, not a Go program's start.

import "C"

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// haveSupervisor tells that handlers run under a supervisor here.
const haveSupervisor = true

func init() {
	// Never passed on by a process that got the switch but is no
	// supervisor (no socket): the C side unset it in its C library's copy.
	os.Unsetenv(envSupervise)
}

// start runs c under a supervisor, or directly when no supervisor can be
// started (no /proc, a Dir that does not exist: then the direct start
// reports the error exec.Cmd.Start gives).
func start(c Cmd) (tree, error) {
	t, err := startSupervised(c)
	if errors.Is(err, errNoSupervisor) {
		return startDirect(c)
	}
	return t, err
}

var errNoSupervisor = errors.New("proctree: no supervisor")

// supervised is a command running under a supervisor process.
type supervised struct {
	cmd *exec.Cmd // the supervisor
	ctl *os.File  // our end of the control socket
	in  *bufio.Reader
	mu  sync.Mutex // one signal byte at a time
}

func startSupervised(c Cmd) (*supervised, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, errNoSupervisor
	}
	ours := os.NewFile(uintptr(fds[0]), "proctree-control")
	theirs := os.NewFile(uintptr(fds[1]), "proctree-control")
	env := make([]string, 0, len(c.Env)+1)
	for _, kv := range c.Env {
		if !strings.HasPrefix(kv, envSupervise+"=") {
			env = append(env, kv)
		}
	}
	cleanup := c.Cleanup
	if cleanup != "" {
		if cleanup, err = filepath.Abs(cleanup); err != nil {
			cleanup = ""
		}
	}
	version := protocol
	if c.statOnly {
		version += "-stat"
	}
	cmd := &exec.Cmd{
		// The running binary, even when its file was replaced meanwhile.
		Path:       "/proc/self/exe",
		Args:       append([]string{supervisorArg0, c.Path, cleanup}, c.Args...),
		Dir:        c.Dir,
		Env:        append(env, envSupervise+"="+version),
		Stdin:      c.Stdin,
		Stdout:     c.Output,
		Stderr:     c.Output,
		ExtraFiles: []*os.File{theirs},
		// Its own group: a signal to the starting process's group (a
		// terminal's ^C, Dagu's kill of the step) does not reach it, so it
		// outlives a SIGKILL of that group and then cleans up.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		ours.Close()
		return nil, errNoSupervisor
	}
	s := &supervised{cmd: cmd, ctl: ours, in: bufio.NewReader(ours)}
	line, err := s.in.ReadString('\n')
	word, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	switch {
	case err == nil && word == "pid":
		return s, nil
	case err == nil && word == "errno":
		s.close()
		n, _ := strconv.Atoi(rest)
		return nil, &os.PathError{Op: "fork/exec", Path: c.Path, Err: syscall.Errno(n)}
	}
	s.close()
	return nil, fmt.Errorf("handler supervisor: %v", cmd.ProcessState)
}

func (s *supervised) close() {
	s.ctl.Close()
	_ = s.cmd.Wait()
}

func (s *supervised) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.ctl.Write([]byte{byte(sig)}) // after the end: ErrClosed, nothing to do
}

func (s *supervised) wait() int {
	code := -1 // the supervisor died without a word (killed): so did the handler
	for {
		line, err := s.in.ReadString('\n')
		if word, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " "); word == "exit" {
			if ws, perr := strconv.Atoi(rest); perr == nil {
				code = exitCode(syscall.WaitStatus(ws))
			}
		}
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	s.close()
	s.mu.Unlock()
	return code
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Exited() {
		return ws.ExitStatus()
	}
	return -1
}
