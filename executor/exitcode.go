package executor

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/daguq/daguq/queuestore"
)

// Exit statuses of a step and of every daguq command. Dagu reads them from
// the "exit status N" text of the error Run returns (see ExitError), or from
// the executor's ExitCode method.
const (
	ExitOK            = 0 // done: every batch acked, or retried / dead-lettered by policy
	ExitHandlerFailed = 1 // fail_on asked to fail: a message went dead (or was nacked)
	ExitUsage         = 2 // bad flag, configuration or input: nothing was changed
	ExitStore         = 3 // the database could not be opened, read or written
	ExitStopped       = 4 // stopped by Kill, a signal or a cancelled context before finishing
	ExitWaitTimeout   = 5 // pool: wait_timeout passed before the slots were free
)

// ExitError is the error Run and New return: an exit status and its cause.
// Its text starts with "exit status N: " which Dagu parses.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return fmt.Sprintf("exit status %d: %v", e.Code, e.Err)
}

func (e *ExitError) Unwrap() error { return e.Err }

// ConfigError is input daguq refuses before it changes anything: a `with:`
// key or flag with a bad value, keys that exclude each other, a missing
// handler program, a message that is not valid JSON or not valid UTF-8, an
// unknown queue. Its text is the reasons, one per line. ExitCode gives
// ExitUsage for it.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func (e *ConfigError) spell(n Names) string { return Text(e.Err, n) }

// invalid marks err as refused input (nil stays nil).
func invalid(err error) error {
	if err == nil {
		return nil
	}
	return &ConfigError{Err: err}
}

// DatabaseError is a database that cannot be used: a path that is a
// directory, under a regular file or not writable, a file that is not a
// daguq database or is of a newer schema, a URL of a backend this build does
// not have. ExitCode gives ExitStore for it whatever its cause, so that the
// CLI and the executors agree on a bad database path.
type DatabaseError struct {
	DB string // the path, or the URL with its password hidden
	// From says what chose the database, at the start of the text: "db"
	// (the with: key) when empty; the CLI names its flag or variable.
	From string
	Err  error
}

func (e *DatabaseError) Error() string {
	from := e.From
	if from == "" {
		from = "db"
	}
	return from + ": " + e.Err.Error()
}
func (e *DatabaseError) Unwrap() error { return e.Err }

// ExitCode is the one function that maps an error to an exit status: the
// CLI, the executors and plugin/ all use it, and none looks at error text.
//
//   - nil: ExitOK
//   - an *ExitError: its Code (a handler failure under fail_on, a stop)
//   - a *DatabaseError: ExitStore
//   - context.Canceled: ExitStopped
//   - a *ConfigError or queuestore.ErrInvalid: ExitUsage
//   - anything else (queuestore.ErrLeaseLost, ErrNotDaguqDatabase,
//     ErrSchemaTooNew, ErrBackendUnavailable, SQLite errors): ExitStore
func ExitCode(err error) int {
	var (
		ee *ExitError
		de *DatabaseError
		ce *ConfigError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &de):
		return ExitStore
	case errors.Is(err, context.Canceled):
		return ExitStopped
	case errors.As(err, &ce), errors.Is(err, queuestore.ErrInvalid):
		return ExitUsage
	}
	return ExitStore
}

// withExitStatus gives err the exit status ExitCode decides, as an
// *ExitError whose text starts with "exit status N: " (nil stays nil).
func withExitStatus(err error) error {
	if err == nil {
		return nil
	}
	if ee, ok := err.(*ExitError); ok {
		return ee
	}
	return &ExitError{Code: ExitCode(err), Err: err}
}

// exitStatus remembers the exit status of the last Run for Dagu, which asks
// an executor for ExitCode() before it parses the error text.
type exitStatus struct{ code atomic.Int32 }

// ExitCode is the exit status of the last Run (0 before any).
func (s *exitStatus) ExitCode() int { return int(s.code.Load()) }

// record gives err its exit status and remembers it.
func (s *exitStatus) record(err error) error {
	err = withExitStatus(err)
	s.code.Store(int32(ExitCode(err)))
	return err
}

func usageError(err error) error   { return &ExitError{Code: ExitUsage, Err: invalid(err)} }
func storeError(err error) error   { return &ExitError{Code: ExitStore, Err: err} }
func stoppedError(err error) error { return &ExitError{Code: ExitStopped, Err: err} }
