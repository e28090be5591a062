//go:build unix

package proctree

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// The supervisor switch: the variable makes a process of a program that
// links this package a supervisor (supervise_linux.c). The value is the
// protocol version.
const (
	envSupervise   = "DAGUQ_PROCTREE_SUPERVISE"
	protocol       = "2"
	supervisorArg0 = "daguq-handler-supervisor"
)

// Cmd is a command to run as a tree.
type Cmd struct {
	Path   string   // the program, resolved as os/exec resolves it (exec.Cmd.Path)
	Args   []string // the arguments, Args[0] included
	Dir    string   // working directory; "" keeps the caller's
	Env    []string // the whole environment of the command
	Stdin  *os.File
	Output *os.File // stdout and stderr
	// Cleanup is a directory the supervisor removes when the process that
	// started the command dies while the tree still runs (Linux only). A
	// Starter's own directory takes its place.
	Cleanup string

	statOnly bool // tests: the supervisor finds children in /proc/PID/stat
}

// Tree is a running command and every process it started.
type Tree struct {
	impl tree
}

type tree interface {
	signal(syscall.Signal)
	wait() int
}

// Start starts c under a supervisor of its own, which ends with it. The
// error is the command's own start error (a missing program, a bad Dir), as
// exec.Cmd.Start reports it.
func Start(c Cmd) (*Tree, error) {
	return (&Starter{cleanup: c.Cleanup, single: true}).Start(c)
}

// Starter starts commands one after another or side by side and keeps the
// supervisors of ended commands for the next ones: a command then costs no
// supervisor start. Close ends the idle supervisors.
type Starter struct {
	cleanup string // for every supervisor of the Starter: see Cmd.Cleanup
	single  bool   // no reuse: each supervisor quits after its command
	pool    pool
}

// NewStarter returns a Starter whose supervisors remove cleanup (when not
// "") if the process that started them dies, even with no command running.
func NewStarter(cleanup string) *Starter { return &Starter{cleanup: cleanup} }

// Start starts c as Start does; c.Cleanup is ignored.
func (s *Starter) Start(c Cmd) (*Tree, error) {
	impl, err := s.start(c)
	if err != nil {
		return nil, err
	}
	return &Tree{impl: impl}, nil
}

// Close ends the idle supervisors; those of running commands end with
// their commands. Start must not be called after Close.
func (s *Starter) Close() { s.closeIdle() }

// Signal sends sig to the command's process group and, on Linux, to every
// process of the tree outside that group. SIGKILL kills the whole tree at
// once. Any other signal starts a stop: the tree then ends when every
// process of it has exited, or at a later SIGKILL.
func (t *Tree) Signal(sig syscall.Signal) { t.impl.signal(sig) }

// Wait waits until no process of the tree is left and returns the command's
// exit status: -1 when a signal killed it. After a command that exits
// without a stop (no Signal), what it left running is killed at once.
func (t *Tree) Wait() int { return t.impl.wait() }

// direct runs the command itself in its own process group: the fallback
// where there is no supervisor. It sweeps the group only.
type direct struct {
	cmd  *exec.Cmd
	pgid int

	mu       sync.Mutex
	stopping bool
	killed   chan struct{} // closed by Signal(SIGKILL)
}

func startDirect(c Cmd) (tree, error) {
	cmd := &exec.Cmd{Path: c.Path, Args: c.Args, Dir: c.Dir, Env: c.Env,
		Stdin: c.Stdin, Stdout: c.Output, Stderr: c.Output, SysProcAttr: directSysProcAttr()}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &direct{cmd: cmd, pgid: cmd.Process.Pid, killed: make(chan struct{})}, nil
}

func (d *direct) signal(sig syscall.Signal) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopping = true
	_ = syscall.Kill(-d.pgid, sig)
	if sig == syscall.SIGKILL {
		select {
		case <-d.killed:
		default:
			close(d.killed)
		}
	}
}

func (d *direct) wait() int {
	err := d.cmd.Wait()
	d.mu.Lock()
	stopping := d.stopping
	d.mu.Unlock()
	if stopping {
		// The command may be a wrapper (sh -c ./h.sh): the rest of its
		// group gets until the SIGKILL too.
		awaitGroup(d.pgid, d.killed)
	} else {
		_ = syscall.Kill(-d.pgid, syscall.SIGKILL)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// awaitGroup waits until no process is left in the group, or a second after
// killed closes (zombies nobody reaps).
func awaitGroup(pgid int, killed <-chan struct{}) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var giveUp <-chan time.Time
	for syscall.Kill(-pgid, 0) == nil {
		select {
		case <-killed:
			killed = nil
			giveUp = time.After(time.Second)
		case <-giveUp:
			return
		case <-tick.C:
		}
	}
}
