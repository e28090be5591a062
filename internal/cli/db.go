package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/executor"
	"github.com/daguq/daguq/internal/storeopen"
	"github.com/daguq/daguq/queuestore"
)

// dbPath is the database file the global flags and the environment choose,
// and the rule that chose it: flag, DAGUQ_DB, DAGU_HOME or XDG.
func (a *app) dbPath() (path, source string) {
	return executor.ResolveDB(a.db, a.getenv)
}

// describeDB names the database and its rule for messages: `"/x/q.db" (from
// DAGUQ_DB)`, a URL without its password.
func describeDB(path, source string) string {
	return fmt.Sprintf("%q (from %s)", storeopen.Redact(path), describeSource(source))
}

func describeSource(source string) string {
	if source == executor.DBSourceFlag {
		return "--db"
	}
	return source
}

// openStore opens (creating and migrating when needed) the chosen database:
// a SQLite file, or a PostgreSQL database for a postgres:// URL.
func (a *app) openStore() (queuestore.Backend, error) {
	path, source := a.dbPath()
	st, err := storeopen.Open(path, storeopen.Options{})
	if err != nil {
		// The store names the path too: say it once, with its rule.
		msg := strings.Replace(err.Error(), fmt.Sprintf("database path %q: ", path), "", 1)
		msg = strings.Replace(msg, "open database "+storeopen.Redact(path)+": ", "", 1)
		code := exitStore
		if errors.Is(err, queuestore.ErrInvalid) {
			code = exitUsage
		}
		return nil, &executor.ExitError{Code: code, Err: fmt.Errorf("database %s: %s", describeDB(path, source), msg)}
	}
	return st, nil
}

// openExisting opens the database for a read-only command. It returns nil and
// no error when the file does not exist yet: nothing was ever enqueued there,
// and a look must not create it. (A URL is always opened.)
func (a *app) openExisting() (queuestore.Backend, error) {
	path, _ := a.dbPath()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !storeopen.IsURL(path) {
		return nil, nil
	}
	return a.openStore()
}

// storeError gives err its exit code: 2 for input the store refused, 3 for
// everything else the database did.
// withStore opens the database (creating it when missing), runs fn on it
// and closes it; an error of fn gets the exit status storeError gives it.
func (a *app) withStore(fn func(queuestore.Backend) error) error {
	st, err := a.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	return storeError(fn(st))
}

func storeError(err error) error {
	if err == nil {
		return nil
	}
	var ee *executor.ExitError
	if errors.As(err, &ee) {
		return err
	}
	if errors.Is(err, queuestore.ErrInvalid) {
		return &executor.ExitError{Code: exitUsage, Err: err}
	}
	return &executor.ExitError{Code: exitStore, Err: err}
}

// queueArgs accepts exactly the positional arguments named, checks the first
// is a valid queue name, and says what is missing in the words of the usage.
func queueArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usageError("missing %s argument (usage: %s)", names[len(args)], cmd.UseLine())
		}
		if len(args) > len(names) {
			return usageError("unexpected argument %q (usage: %s)", args[len(names)], cmd.UseLine())
		}
		if err := queuestore.ValidateQueueName(args[0]); err != nil {
			return usageError("QUEUE argument: %s", trimStorePrefix(err))
		}
		return nil
	}
}

// trimStorePrefix drops the sentinel text "queuestore: invalid input: " that
// means nothing to a command-line user.
func trimStorePrefix(err error) string {
	s := err.Error()
	const p = "queuestore: invalid input: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
