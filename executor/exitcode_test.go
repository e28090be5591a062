package executor

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/daguq/daguq/queuestore"
)

// Dagu asks an executor for ExitCode() before it parses the error text.
func TestExitCodeReportsTheLastRun(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 1)
	te.script("h.sh", "exit 3\n")
	tests := []struct {
		name   string
		kind   string
		config map[string]any
		want   int
	}{
		{"consume acked", KindQueue, map[string]any{"queue": "empty", "run": "./h.sh"}, ExitOK},
		{"fail_on dead", KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "max_attempts": 1, "fail_on": "dead"}, ExitHandlerFailed},
		{"enqueue into a directory", KindEnqueue, map[string]any{"queue": "q", "message": 1, "db": te.dir}, ExitStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exec, err := New(tt.kind, te.spec(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			coder, ok := exec.(interface{ ExitCode() int })
			if !ok {
				t.Fatalf("%T has no ExitCode method", exec)
			}
			r := runExecutor(t, exec, context.Background())
			if got := coder.ExitCode(); got != tt.want || got != ExitCode(r.err) {
				t.Fatalf("ExitCode() = %d, Run error %v, want %d", got, r.err, tt.want)
			}
		})
	}
}

// TestExitCodeClassifies: one function maps every error to its exit status
// by its type or sentinel, never by its text.
func TestExitCodeClassifies(t *testing.T) {
	t.Parallel()
	badConfig := Validate(KindQueue, map[string]any{"queue": "q", "run": "true", "batch_size": 0})
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"explicit status", fmt.Errorf("step: %w", &ExitError{Code: ExitHandlerFailed, Err: errors.New("2 dead")}), ExitHandlerFailed},
		{"Validate", badConfig, ExitUsage},
		{"config error", &ConfigError{Err: errors.New("batch_size must be 1..10000")}, ExitUsage},
		{"store refused input", fmt.Errorf("enqueue: %w", queuestore.ErrInvalid), ExitUsage},
		{"database path a directory", &DatabaseError{DB: "/tmp", Err: fmt.Errorf("%w: a directory", queuestore.ErrInvalid)}, ExitStore},
		{"not a daguq database", fmt.Errorf("open: %w", queuestore.ErrNotDaguqDatabase), ExitStore},
		{"schema too new", queuestore.ErrSchemaTooNew, ExitStore},
		{"lease lost", fmt.Errorf("ack: %w", queuestore.ErrLeaseLost), ExitStore},
		{"backend unavailable", ErrBackendUnavailable, ExitStore},
		{"cancelled", fmt.Errorf("claim: %w", context.Canceled), ExitStopped},
		{"anything else", errors.New("disk I/O error"), ExitStore},
		// Text that looks like another class changes nothing.
		{"text is not a type", errors.New("queuestore: invalid input: exit status 2"), ExitStore},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("%s: ExitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

// A directory as the database is a database error (3) for every kind and
// action, as it is for the CLI.
func TestDatabaseDirectoryExitsThree(t *testing.T) {
	t.Parallel()
	te := setup(t)
	for _, config := range []map[string]any{
		{"queue": "q", "message": 1, "db": te.dir},
		{"queue": "q", "run": "true", "db": te.dir},
		{"queue": "q", "action": "claim", "db": te.dir},
	} {
		kind := KindQueue
		if _, ok := config["message"]; ok {
			kind = KindEnqueue
		}
		exec, err := New(kind, te.spec(config))
		if err != nil {
			t.Fatal(err)
		}
		r := runExecutor(t, exec, context.Background())
		wantExit(t, r.err, ExitStore)
		var de *DatabaseError
		if !errors.As(r.err, &de) || de.DB != te.dir {
			t.Errorf("%v: error %v is not a DatabaseError naming %s", config, r.err, te.dir)
		}
	}
}
