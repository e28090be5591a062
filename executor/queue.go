package executor

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
)

// queueExecutor is the `queue` step: consume, claim, ack or nack.
type queueExecutor struct {
	spec   Spec
	cfg    queueConfig
	stdout io.Writer
	stderr io.Writer

	mu       sync.Mutex
	stopSig  os.Signal
	stopOnce sync.Once
	stopped  chan struct{} // closed by Kill
}

var _ Executor = (*queueExecutor)(nil)

func newQueueExecutor(spec Spec, cfg queueConfig) *queueExecutor {
	return &queueExecutor{spec: spec, cfg: cfg, stdout: io.Discard, stderr: io.Discard, stopped: make(chan struct{})}
}

func (e *queueExecutor) SetStdout(w io.Writer) { e.stdout = w }
func (e *queueExecutor) SetStderr(w io.Writer) { e.stderr = w }

// Kill stops the step: no more claims, sig to every running handler's
// process group, SIGKILL after grace, held leases released. Run returns soon
// after. Kill may be called many times and before Run.
func (e *queueExecutor) Kill(sig os.Signal) error {
	e.mu.Lock()
	e.stopSig = sig
	e.mu.Unlock()
	e.stopOnce.Do(func() { close(e.stopped) })
	return nil
}

func (e *queueExecutor) Run(ctx context.Context) error {
	return &ExitError{Code: ExitUsage, Err: errors.New("queue executor: not implemented yet")}
}
