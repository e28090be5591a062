package executor

import (
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/daguq/daguq/internal/stopdeadline"
)

// stopState is what the queue and pool steps keep of Kill: the stop
// deadline of their store calls (grace + 1.5 s after the first Kill, 1.5 s
// after a Kill(SIGKILL)) and the first Kill's signal. mu also guards each
// step's own record of the processes it runs, which Kill signals.
type stopState struct {
	mu      sync.Mutex
	stopSig syscall.Signal // the signal of the first Kill
	stop    *stopdeadline.Deadline
}

func newStopState(grace time.Duration) stopState {
	return stopState{stop: stopdeadline.New(grace)}
}

// stopLocked records a Kill with sig, read as a signal number (SIGTERM
// when it is none), and returns that number. The caller holds mu.
func (s *stopState) stopLocked(sig os.Signal) syscall.Signal {
	n, ok := sig.(syscall.Signal)
	if !ok || n == 0 {
		n = syscall.SIGTERM
	}
	if s.stop.Stop() {
		s.stopSig = n
	}
	if n == syscall.SIGKILL {
		s.stop.Hurry()
	}
	return n
}

// isStopped reports whether Kill was called.
func (s *stopState) isStopped() bool { return s.stop.IsStopped() }

// signal returns the signal of the first Kill.
func (s *stopState) signal() syscall.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopSig
}
