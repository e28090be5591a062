package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// The step types daguq adds to Dagu.
const (
	KindQueue   = "queue"   // consume batches (or claim, ack, nack one)
	KindEnqueue = "enqueue" // add messages
	KindPool    = "pool"    // run a command holding slots of a pool (pool.go)
)

// Kinds lists the step types in a stable order.
func Kinds() []string { return []string{KindQueue, KindEnqueue, KindPool} }

// Spec is the part of a Dagu step an executor needs.
type Spec struct {
	Name    string         // step name; names the consumer by default
	Command string         // the step's command: a fallback handler for `queue`
	Script  string         // the step's script: a fallback handler for `queue`
	Config  map[string]any // the step's `with:` map, already ${VAR}-expanded
	Env     []string       // KEY=VALUE pairs added to the handler's environment
	Dir     string         // working directory of the handler and of relative paths
}

// Executor is Dagu's executor method set.
type Executor interface {
	SetStdout(io.Writer)
	SetStderr(io.Writer)
	Kill(os.Signal) error
	Run(context.Context) error
}

// StdinSetter is implemented by executors that can read standard input
// (`enqueue` with file "-"). Dagu does not call it; the CLI does.
type StdinSetter interface {
	SetStdin(io.Reader)
}

// Exit statuses of a step. Dagu reads them from the "exit status N" text of
// the error Run returns (see ExitError).
const (
	ExitOK            = 0 // done: every batch acked, or retried / dead-lettered by policy
	ExitHandlerFailed = 1 // fail_on asked to fail: a message went dead (or was nacked)
	ExitUsage         = 2 // bad configuration or input: nothing was changed
	ExitStore         = 3 // the database could not be opened, read or written
	ExitStopped       = 4 // stopped by Kill or a cancelled context before finishing
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

// ExitCode reports the exit status for err: 0 for nil, the code of an
// ExitError, else ExitStore.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ExitStore
}

// exitStatus remembers the exit status of the last Run for Dagu, which asks
// an executor for ExitCode() before it parses the error text.
type exitStatus struct{ code atomic.Int32 }

// ExitCode is the exit status of the last Run (0 before any).
func (s *exitStatus) ExitCode() int { return int(s.code.Load()) }

func (s *exitStatus) record(err error) error {
	s.code.Store(int32(ExitCode(err)))
	return err
}

func usageError(err error) error   { return &ExitError{Code: ExitUsage, Err: err} }
func storeError(err error) error   { return &ExitError{Code: ExitStore, Err: err} }
func stoppedError(err error) error { return &ExitError{Code: ExitStopped, Err: err} }

// New builds the executor of kind from spec: it parses and validates the
// configuration (the error names the field and is an *ExitError with
// ExitUsage) but opens no database; Run does.
func New(kind string, spec Spec) (Executor, error) {
	switch kind {
	case KindQueue:
		cfg, err := parseQueueConfig(spec.Config)
		if err != nil {
			return nil, usageError(err)
		}
		if err := cfg.resolveHandler(spec); err != nil {
			return nil, usageError(err)
		}
		return newQueueExecutor(spec, cfg), nil
	case KindEnqueue:
		cfg, err := parseEnqueueConfig(spec.Config)
		if err != nil {
			return nil, usageError(err)
		}
		return newEnqueueExecutor(spec, cfg), nil
	case KindPool:
		return newPoolExecutor(spec)
	}
	return nil, usageError(unknownKind(kind))
}

// Validate checks a `with:` map of kind with the parser New uses: Dagu's
// step validator. A `queue` consume step must name its handler in config
// (run or script), as step_types call sites have no command or script.
func Validate(kind string, config map[string]any) error {
	switch kind {
	case KindQueue:
		cfg, err := parseQueueConfig(config)
		if err != nil {
			return err
		}
		return cfg.resolveHandler(Spec{})
	case KindEnqueue:
		_, err := parseEnqueueConfig(config)
		return err
	case KindPool:
		return validatePool(config)
	}
	return unknownKind(kind)
}

func unknownKind(kind string) error {
	return fmt.Errorf("unknown step type %q: want %s", kind, strings.Join(Kinds(), " or "))
}

// Where ResolveDB found the database path.
const (
	DBSourceFlag     = "flag"          // the explicit value (--db or with: db)
	DBSourceEnv      = "DAGUQ_DB"      // the DAGUQ_DB variable
	DBSourceDaguHome = "DAGU_HOME"     // $DAGU_HOME/daguq/daguq.db
	DBSourceXDG      = "XDG_DATA_HOME" // $XDG_DATA_HOME or ~/.local/share, then daguq/daguq.db
)

// ResolveDB picks the database: explicit when not empty, else DAGUQ_DB, else
// $DAGU_HOME/daguq/daguq.db, else $XDG_DATA_HOME/daguq/daguq.db with
// XDG_DATA_HOME defaulting to $HOME/.local/share. source says which rule
// applied (one of the DBSource constants). getenv nil means os.Getenv.
func ResolveDB(explicit string, getenv func(string) string) (path, source string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if explicit != "" {
		return explicit, DBSourceFlag
	}
	if v := getenv("DAGUQ_DB"); v != "" {
		return v, DBSourceEnv
	}
	if v := getenv("DAGU_HOME"); v != "" {
		return filepath.Join(v, "daguq", "daguq.db"), DBSourceDaguHome
	}
	data := getenv("XDG_DATA_HOME")
	if data == "" {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		data = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(data, "daguq", "daguq.db"), DBSourceXDG
}
