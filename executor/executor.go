package executor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
// Its error is a *ConfigError: ExitCode gives ExitUsage for it.
func Validate(kind string, config map[string]any) error {
	switch kind {
	case KindQueue:
		cfg, err := parseQueueConfig(config)
		if err != nil {
			return invalid(err)
		}
		return invalid(cfg.resolveHandler(Spec{}))
	case KindEnqueue:
		_, err := parseEnqueueConfig(config)
		return invalid(err)
	case KindPool:
		return invalid(validatePool(config))
	}
	return invalid(unknownKind(kind))
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
