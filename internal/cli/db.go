package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
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

// openStore opens (creating and migrating when needed) the chosen database,
// the way the executors do: a SQLite file, or a PostgreSQL database for a
// postgres:// URL. Its error names the rule that chose the database;
// executor.ExitCode gives it exit status 3.
func (a *app) openStore() (queuestore.Backend, error) {
	path, source := a.dbPath()
	st, err := executor.OpenBackend(path, executor.StoreOptions{})
	if err != nil {
		var de *executor.DatabaseError
		if errors.As(err, &de) {
			de.From = "database from " + describeSource(source)
		}
		return nil, err
	}
	return st, nil
}

// openExisting opens the database for a read-only command. It returns nil and
// no error when the file does not exist yet: nothing was ever enqueued there,
// and a look must not create it.
func (a *app) openExisting() (queuestore.Backend, error) {
	path, _ := a.dbPath()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !isURL(path) {
		return nil, nil
	}
	return a.openStore()
}

// isURL reports a database given as a URL (scheme://...).
func isURL(path string) bool {
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == ':':
			return i > 0 && len(path) > i+2 && path[i+1] == '/' && path[i+2] == '/'
		case c == '/':
			return false
		}
	}
	return false
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
		return checkQueueArg(args[0])
	}
}

// checkQueueArg refuses a QUEUE argument that is not a valid queue name.
func checkQueueArg(name string) error {
	if queuestore.ValidateQueueName(name) != nil {
		return usageError("QUEUE argument %q: want %s", name, queuestore.QueueNameRule)
	}
	return nil
}

// checkDBFlag refuses an empty --db: it would silently mean the default.
func (a *app) checkDBFlag(cmd *cobra.Command) error {
	if fl := cmd.Flag("db"); fl != nil && fl.Changed && strings.TrimSpace(a.db) == "" {
		return usageError("--db is empty: give a database file path, or leave --db out for the default ($DAGUQ_DB, else under $DAGU_HOME, else under the XDG data directory)")
	}
	return nil
}

// requireQueues refuses queues the database does not know (no messages, no
// settings): an admin command on a mistyped name must not create a queue or
// report zeros. st nil is a database file that does not exist yet. hint,
// when not empty, says how to go ahead anyway.
func (a *app) requireQueues(ctx context.Context, st queuestore.Backend, hint string, queues ...string) error {
	path, source := a.dbPath()
	for _, q := range queues {
		known := false
		if st != nil {
			var err error
			if known, err = queueExists(ctx, st, q); err != nil {
				return err
			}
		}
		if known {
			continue
		}
		where := fmt.Sprintf("database %s has no messages and no settings for it", describeDB(path, source))
		if st == nil {
			where = fmt.Sprintf("database %s does not exist yet", describeDB(path, source))
		}
		msg := fmt.Sprintf("unknown queue %q: %s; \"daguq stats\" lists the known queues", q, where)
		if hint != "" {
			msg += ", " + hint
		}
		return usageError("%s", msg)
	}
	return nil
}

// withQueue runs fn on the database with queue checked known (requireQueues)
// unless create is set; then a missing database file is created. Nothing is
// created for a refused queue.
func (a *app) withQueue(ctx context.Context, queue string, create bool, hint string, fn func(queuestore.Backend) error) error {
	st, err := a.openExisting()
	if err == nil && st == nil && create {
		st, err = a.openStore()
	}
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	if !create {
		if err := a.requireQueues(ctx, st, hint, queue); err != nil {
			return err
		}
	}
	return fn(st)
}

// queueExists asks the store whether it knows queue: its QueueExists when it
// has one, else whether Queues lists it (the same rule: messages or
// settings).
func queueExists(ctx context.Context, st queuestore.Backend, queue string) (bool, error) {
	if qe, ok := st.(interface {
		QueueExists(context.Context, string) (bool, error)
	}); ok {
		return qe.QueueExists(ctx, queue)
	}
	names, err := st.Queues(ctx)
	return slices.Contains(names, queue), err
}
