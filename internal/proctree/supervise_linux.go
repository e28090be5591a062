package proctree

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The supervisor switch: the variable's presence makes a program that links
// this package a supervisor (see init). The value is the protocol version.
const (
	envSupervise   = "DAGUQ_PROCTREE_SUPERVISE"
	protocol       = "1"
	supervisorArg0 = "daguq-handler-supervisor"
	controlFD      = 3 // the socket to the starting process, in the supervisor

	prSetChildSubreaper = 36 // prctl(2) PR_SET_CHILD_SUBREAPER
)

func init() {
	v, ok := os.LookupEnv(envSupervise)
	if !ok {
		return
	}
	// Never passed on: not to the handler, nor to any program a handler or
	// this process starts.
	os.Unsetenv(envSupervise)
	// Only as started by startSupervised: the socket in place, the cleanup
	// directory absolute or none.
	var st syscall.Stat_t
	if v != protocol || len(os.Args) < 4 || syscall.Fstat(controlFD, &st) != nil ||
		st.Mode&syscall.S_IFMT != syscall.S_IFSOCK || os.Args[2] != "" && !filepath.IsAbs(os.Args[2]) {
		return
	}
	syscall.Exit(supervise(os.Args[1], os.Args[2], os.Args[3:]))
}

func directSysProcAttr() *syscall.SysProcAttr {
	// Pdeathsig: a handler dies with the process that started it.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
	cmd := &exec.Cmd{
		// The running binary, even when its file was replaced meanwhile.
		Path:       "/proc/self/exe",
		Args:       append([]string{supervisorArg0, c.Path, c.Cleanup}, c.Args...),
		Dir:        c.Dir,
		Env:        append(env, envSupervise+"="+protocol),
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
	case err == nil && word == "error":
		s.close()
		return nil, errors.New(rest)
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

// supervise is the supervisor process: it runs path with argv and returns
// its own exit status. Its protocol, on the socket at controlFD:
//
//	to the starting process:   "pid N\n" (started) or "error TEXT\n" (not),
//	                           then "exit WAITSTATUS\n" when the tree is gone
//	from the starting process: one byte per signal to forward; end of file
//	                           means that process died
func supervise(path, cleanup string, argv []string) int {
	ctl := os.NewFile(controlFD, "proctree-control")
	syscall.CloseOnExec(controlFD) // the handler must not hold the socket
	// Pdeathsig of the handler follows the thread that forks it: keep this
	// one until the process ends.
	runtime.LockOSThread()
	// Orphans of the tree (setsid, double fork) come to us, not to init.
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		fmt.Fprintf(os.Stderr, "daguq: handler supervisor: PR_SET_CHILD_SUBREAPER: %v\n", e)
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		perr := &os.PathError{Op: "fork/exec", Path: path, Err: err}
		fmt.Fprintf(ctl, "error %s\n", strings.ReplaceAll(perr.Error(), "\n", " "))
		return 0
	}
	fmt.Fprintf(ctl, "pid %d\n", pid)

	cmds := make(chan syscall.Signal, 16)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := ctl.Read(buf)
			for _, b := range buf[:n] {
				cmds <- syscall.Signal(b)
			}
			if err != nil {
				close(cmds)
				return
			}
		}
	}()

	s := &supervisor{self: os.Getpid(), pid: pid}
	stopping := false
	for {
		select {
		case sig := <-sigs:
			if sig != syscall.SIGCHLD {
				s.forward(sig.(syscall.Signal))
				stopping = true
			}
		case sig, ok := <-cmds:
			switch {
			case !ok: // the starting process is gone: nobody waits for the tree
				s.killAll()
				if cleanup != "" {
					os.RemoveAll(cleanup)
				}
				return 0
			case sig == syscall.SIGKILL:
				s.killAll()
			default:
				s.forward(sig)
				stopping = true
			}
		}
		left := s.reap()
		if s.exited && (!left || !stopping) {
			break
		}
	}
	// The handler is done. Without a stop, whatever it left running dies
	// now; after a stop, nothing is left at this point.
	s.killAll()
	fmt.Fprintf(ctl, "exit %d\n", int(s.status))
	return 0
}

// supervisor is the supervisor's view of its tree.
type supervisor struct {
	self   int
	pid    int // the handler, also its process group
	status syscall.WaitStatus
	exited bool // the handler has been reaped: its pid may be reused
}

// reap collects every child that has ended and reports whether any is left.
func (s *supervisor) reap() (left bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil: // ECHILD
			return false
		case pid == 0:
			return true
		case pid == s.pid:
			s.status, s.exited = ws, true
		}
	}
}

// killAll kills every process of the tree and reaps it, round by round
// while any child is left. It kills the handler's group (while the handler
// is unreaped its pid, the group's id, cannot be reused) and our own
// children: the handler, and the orphans the kernel gave us as their
// parents died. A process further down becomes our child when its parent
// dies, so a later round gets it. Only our children are killed by pid, and
// only we reap them: no pid reuse can make us kill a stranger.
func (s *supervisor) killAll() {
	for s.reap() {
		if !s.exited {
			_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		}
		for _, p := range children(s.self) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if pid == s.pid && err == nil {
			s.status, s.exited = ws, true
		}
	}
}

// forward sends a stop signal to the handler's group, and to every process
// of the tree outside it (setsid): each gets it once.
func (s *supervisor) forward(sig syscall.Signal) {
	if !s.exited {
		_ = syscall.Kill(-s.pid, sig)
	}
	for _, p := range descendants(s.self) {
		if pg, err := syscall.Getpgid(p); err == nil && (s.exited || pg != s.pid) {
			_ = syscall.Kill(p, sig)
		}
	}
}

// descendants lists the processes below pid.
func descendants(pid int) []int {
	var all []int
	next := []int{pid}
	for len(next) > 0 && len(all) < 1<<16 {
		p := next[0]
		next = next[1:]
		kids := children(p)
		all = append(all, kids...)
		next = append(next, kids...)
	}
	return all
}

// children lists the children of pid, from /proc/PID/task/*/children, or
// from every process's parent in /proc/*/stat when the kernel lacks the
// former (CONFIG_PROC_CHILDREN).
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var kids []int
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "children"))
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(filepath.Join(dir, t.Name())); serr == nil {
				return childrenFromStat(pid)
			}
		}
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

func childrenFromStat(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, p)
		}
	}
	return kids
}
