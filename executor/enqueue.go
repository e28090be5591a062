package executor

import (
	"context"
	"errors"
	"io"
	"os"
)

// enqueueExecutor is the `enqueue` step.
type enqueueExecutor struct {
	spec   Spec
	cfg    enqueueConfig
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

var (
	_ Executor    = (*enqueueExecutor)(nil)
	_ StdinSetter = (*enqueueExecutor)(nil)
)

func newEnqueueExecutor(spec Spec, cfg enqueueConfig) *enqueueExecutor {
	return &enqueueExecutor{spec: spec, cfg: cfg, stdin: os.Stdin, stdout: io.Discard, stderr: io.Discard}
}

func (e *enqueueExecutor) SetStdout(w io.Writer) { e.stdout = w }
func (e *enqueueExecutor) SetStderr(w io.Writer) { e.stderr = w }

// SetStdin sets what `file: "-"` reads (default os.Stdin).
func (e *enqueueExecutor) SetStdin(r io.Reader) { e.stdin = r }

// Kill has nothing to stop: an enqueue is one short transaction.
func (e *enqueueExecutor) Kill(os.Signal) error { return nil }

func (e *enqueueExecutor) Run(ctx context.Context) error {
	return &ExitError{Code: ExitUsage, Err: errors.New("enqueue executor: not implemented yet")}
}
