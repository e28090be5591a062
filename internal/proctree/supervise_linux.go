//go:build cgo

package proctree

// The supervisor itself is C (supervise_linux.c): an ELF constructor that
// runs before the Go runtime would start. A Starter keeps its supervisors
// between commands, so a command costs a fork and an exec of its own
// program in a small process, not an exec of this binary as well.

import "C"

import (
	"bufio"
	"encoding/binary"
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

// Request bytes of the protocol (supervise_linux.c): above every signal
// number, so that a signal byte left over from an ended command is no
// request.
const (
	reqRun  = 'R'
	reqQuit = 'Q'
)

var errNoSupervisor = errors.New("proctree: no supervisor")

// pool holds a Starter's idle supervisors.
type pool struct {
	mu     sync.Mutex
	idle   []*supervisor
	closed bool
}

// start runs c under an idle supervisor of s, or a new one, or directly
// when no supervisor can be started (no /proc, no socket).
func (s *Starter) start(c Cmd) (tree, error) {
	sup := s.takeIdle()
	if sup == nil {
		var err error
		if sup, err = startSupervisor(s.cleanup, c.statOnly); err != nil {
			return startDirect(c)
		}
	}
	t, err := sup.run(c)
	if err != nil {
		if sup.broken {
			sup.quit()
		} else {
			s.release(sup)
		}
		return nil, err
	}
	t.release = s.release
	return t, nil
}

// takeIdle returns an idle supervisor that is still alive, or nil.
func (s *Starter) takeIdle() *supervisor {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	for len(s.pool.idle) > 0 {
		sup := s.pool.idle[len(s.pool.idle)-1]
		s.pool.idle = s.pool.idle[:len(s.pool.idle)-1]
		if sup.idleAlive() {
			return sup
		}
		sup.broken = true
		go sup.quit()
	}
	return nil
}

// release keeps a supervisor whose command has ended for the next one, or
// quits it when the Starter is closed or single-use.
func (s *Starter) release(sup *supervisor) {
	s.pool.mu.Lock()
	if !s.pool.closed && !s.single && !sup.broken {
		s.pool.idle = append(s.pool.idle, sup)
		sup = nil
	}
	s.pool.mu.Unlock()
	if sup != nil {
		sup.quit()
	}
}

func (s *Starter) closeIdle() {
	s.pool.mu.Lock()
	idle := s.pool.idle
	s.pool.idle, s.pool.closed = nil, true
	s.pool.mu.Unlock()
	for _, sup := range idle {
		sup.quit()
	}
}

// supervisor is one supervisor process and our end of its socket.
type supervisor struct {
	cmd    *exec.Cmd
	ctl    *os.File
	in     *bufio.Reader
	buf    []byte
	broken bool // the protocol failed: quit it, never reuse it
}

func startSupervisor(cleanup string, statOnly bool) (*supervisor, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, errNoSupervisor
	}
	ours := os.NewFile(uintptr(fds[0]), "proctree-control")
	theirs := os.NewFile(uintptr(fds[1]), "proctree-control")
	if cleanup != "" {
		if cleanup, err = filepath.Abs(cleanup); err != nil {
			cleanup = ""
		}
	}
	version := protocol
	if statOnly {
		version += "-stat"
	}
	// Our own environment: the dynamic loader may need it (LD_LIBRARY_PATH)
	// to start this binary again. Each command gets its own.
	env := append(os.Environ(), envSupervise+"="+version)
	cmd := &exec.Cmd{
		// The running binary, even when its file was replaced meanwhile.
		Path:       "/proc/self/exe",
		Args:       []string{supervisorArg0, cleanup},
		Env:        env,
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
	sup := &supervisor{cmd: cmd, ctl: ours, in: bufio.NewReader(ours)}
	if line, err := sup.in.ReadString('\n'); err != nil || line != "ready\n" {
		sup.broken = true
		sup.quit()
		return nil, errNoSupervisor
	}
	return sup, nil
}

// run starts c under the supervisor.
func (sup *supervisor) run(c Cmd) (*supervised, error) {
	stdin, output := c.Stdin, c.Output
	if stdin == nil || output == nil {
		null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		defer null.Close()
		stdin, output = cmp(stdin, null), cmp(output, null)
	}
	sup.buf = request(sup.buf[:0], c)
	rights := syscall.UnixRights(int(stdin.Fd()), int(output.Fd()))
	if err := sendRequest(sup.ctl, sup.buf, rights); err != nil {
		sup.broken = true
		return nil, fmt.Errorf("handler supervisor: %w", err)
	}
	line, err := sup.in.ReadString('\n')
	word, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	switch {
	case err == nil && word == "pid":
		return &supervised{sup: sup}, nil
	case err == nil && word == "errno":
		code, stage, _ := strings.Cut(rest, " ")
		n, _ := strconv.Atoi(code)
		if stage == "chdir" {
			return nil, &os.PathError{Op: "chdir", Path: c.Dir, Err: syscall.Errno(n)}
		}
		return nil, &os.PathError{Op: "fork/exec", Path: c.Path, Err: syscall.Errno(n)}
	}
	sup.broken = true
	return nil, fmt.Errorf("handler supervisor: %v", err)
}

func cmp(f, or *os.File) *os.File {
	if f != nil {
		return f
	}
	return or
}

// request encodes c for the supervisor (pt_req in supervise_linux.c): 'R',
// the length, then NUL-terminated path, directory, argument count,
// arguments and environment, without the supervisor's switch.
func request(buf []byte, c Cmd) []byte {
	buf = append(buf, reqRun, 0, 0, 0, 0)
	word := func(s string) { buf = append(append(buf, s...), 0) }
	word(c.Path)
	word(c.Dir)
	word(strconv.Itoa(len(c.Args)))
	for _, a := range c.Args {
		word(a)
	}
	for _, kv := range c.Env {
		if !strings.HasPrefix(kv, envSupervise+"=") {
			word(kv)
		}
	}
	binary.LittleEndian.PutUint32(buf[1:5], uint32(len(buf)-5))
	return buf
}

// sendRequest writes the request with the descriptors on its first byte.
func sendRequest(ctl *os.File, req, rights []byte) error {
	for {
		n, err := syscall.SendmsgN(int(ctl.Fd()), req, rights, nil, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n < len(req) {
			_, err = ctl.Write(req[n:]) // the rest, without descriptors
		}
		return err
	}
}

// idleAlive tells whether an idle supervisor still runs: it says nothing
// between commands, so anything to read is its end of file.
func (sup *supervisor) idleAlive() bool {
	if sup.in.Buffered() > 0 {
		return false
	}
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(sup.ctl.Fd()), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN
}

// quit ends the supervisor: it exits between commands; when it is broken
// or its command still runs, closing the socket kills the tree.
func (sup *supervisor) quit() {
	if !sup.broken {
		_, _ = sup.ctl.Write([]byte{reqQuit})
	}
	sup.ctl.Close()
	_ = sup.cmd.Wait()
}

// supervised is a command running under a supervisor.
type supervised struct {
	sup     *supervisor
	release func(*supervisor)
	mu      sync.Mutex // one signal byte at a time
	done    bool       // the command has ended: its supervisor may run another
}

func (s *supervised) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		_, _ = s.sup.ctl.Write([]byte{byte(sig)})
	}
}

func (s *supervised) wait() int {
	code := -1 // the supervisor died without a word (killed): so did the handler
	line, err := s.sup.in.ReadString('\n')
	if word, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " "); err == nil && word == "exit" {
		if ws, perr := strconv.Atoi(rest); perr == nil {
			code = exitCode(syscall.WaitStatus(ws))
		}
	} else {
		s.sup.broken = true
	}
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.release(s.sup)
	return code
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Exited() {
		return ws.ExitStatus()
	}
	return -1
}
