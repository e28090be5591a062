package executor

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// commandResult is how the pool step's command ended.
type commandResult struct {
	exitCode int            // its exit status; 128+N when signal N killed it
	signal   syscall.Signal // the signal that killed it, or 0
	stopped  bool           // Kill arrived while it ran
	startErr error
}

// runCommand runs the pool step's command with the step's streams: stdin
// (none by default), stdout (for Dagu's output:) and stderr. It runs in its
// own process group, so that a stop reaches its children, unless stdin is a
// terminal (an interactive `daguq pool run`: the command must stay in the
// terminal's foreground group, where Ctrl-C reaches it too). On Kill the
// command gets Kill's signal, and SIGKILL after grace.
func (e *poolExecutor) runCommand(argv, env []string) commandResult {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = e.spec.Dir
	cmd.Env = env
	cmd.Stdin = e.stdin
	cmd.Stdout = e.stdout
	cmd.Stderr = e.stderr
	// Output of children that outlive the command is cut short.
	cmd.WaitDelay = outputDrainTime
	group := !isTerminal(e.stdin)
	cmd.SysProcAttr = commandSysProcAttr(group)
	if err := cmd.Start(); err != nil {
		return commandResult{startErr: err}
	}
	pid := cmd.Process.Pid
	e.mu.Lock()
	if group {
		e.target = pid
	} else {
		e.target = -pid
	}
	if e.isStopped() {
		e.signalLocked(e.stopSig)
	}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.target = 0
		e.mu.Unlock()
	}()

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var res commandResult
	graceTimer := time.NewTimer(time.Hour)
	graceTimer.Stop()
	defer graceTimer.Stop()
	var killAfter <-chan time.Time
	stopped := e.stop.Stopped()
	for {
		select {
		case err := <-done:
			if res.stopped && group {
				// The command may be a wrapper (sh -c ...): give the rest
				// of its group the grace period too.
				awaitPoolGroup(pid, killAfter)
			}
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) && !errors.Is(err, exec.ErrWaitDelay) {
				res.exitCode = 1
				res.startErr = err
				return res
			}
			st, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			switch {
			case st.Signaled():
				res.signal = st.Signal()
				res.exitCode = 128 + int(res.signal)
			default:
				res.exitCode = cmd.ProcessState.ExitCode()
			}
			return res
		case <-stopped:
			stopped = nil
			res.stopped = true // Kill has signalled the command
			graceTimer.Reset(e.cfg.Grace)
			killAfter = graceTimer.C
		case <-killAfter:
			killAfter = nil
			e.mu.Lock()
			e.signalLocked(syscall.SIGKILL)
			e.mu.Unlock()
		}
	}
}

// awaitPoolGroup waits until no process is left in the group, sending
// SIGKILL when killAfter fires (nil: SIGKILL was sent already).
func awaitPoolGroup(pgid int, killAfter <-chan time.Time) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var giveUp <-chan time.Time
	if killAfter == nil {
		giveUp = time.After(time.Second)
	}
	for syscall.Kill(-pgid, 0) == nil {
		select {
		case <-killAfter:
			killAfter = nil
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			giveUp = time.After(time.Second) // zombies nobody reaps
		case <-giveUp:
			return
		case <-tick.C:
		}
	}
}
