package executor

import (
	"os"
	"sync"
	"syscall"
	"time"
)

// stopState is what the queue and pool steps keep of Kill: the first call
// closes stopped and keeps its signal and time. mu also guards each step's own
// record of the processes it runs, which Kill signals.
type stopState struct {
	mu      sync.Mutex
	stopSig syscall.Signal // the signal of the first Kill
	stopAt  time.Time      // when it came
	stopped chan struct{}  // closed by the first Kill
}

func newStopState() stopState { return stopState{stopped: make(chan struct{})} }

// stopLocked records a Kill with sig, read as a signal number (SIGTERM
// when it is none), and returns that number. The caller holds mu.
func (s *stopState) stopLocked(sig os.Signal) syscall.Signal {
	n, ok := sig.(syscall.Signal)
	if !ok || n == 0 {
		n = syscall.SIGTERM
	}
	select {
	case <-s.stopped:
	default:
		s.stopSig, s.stopAt = n, time.Now()
		close(s.stopped)
	}
	return n
}

// isStopped reports whether Kill was called.
func (s *stopState) isStopped() bool {
	select {
	case <-s.stopped:
		return true
	default:
		return false
	}
}

// signal returns the signal of the first Kill.
func (s *stopState) signal() syscall.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopSig
}
