package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/executor"
)

// Exit codes of every daguq command. They are the executor's, so a Dagu step
// and a shell script see the same numbers; executor.ExitCode decides them.
const (
	exitOK    = executor.ExitOK
	exitUsage = executor.ExitUsage // bad flag, argument or config value
)

// app is what every subcommand shares: the global flags and the streams.
type app struct {
	db     string // --db
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// started: the command line parsed and a command began to run; an error
	// before that is cobra's own (an unknown command or flag): exit status 2.
	started bool
}

// Main runs the command line with args and returns the process exit code.
func Main(args []string) int {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	return a.run(args)
}

func (a *app) run(args []string) int {
	root := a.newRoot()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	code := executor.ExitCode(err)
	if !a.started {
		code = exitUsage // cobra refused the command line
	}
	var ee *executor.ExitError
	if errors.As(err, &ee) && ee.Err != nil {
		err = ee.Err // the text without Dagu's "exit status N: " prefix
	}
	name := "daguq"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", name, printable(oneLine(err.Error())))
	return code
}

// usageError is an error in a flag or argument: exit status 2.
func usageError(format string, args ...any) error {
	return &executor.ExitError{Code: exitUsage, Err: &executor.ConfigError{Err: fmt.Errorf(format, args...)}}
}

// oneLine puts a message on one line; joined errors are separated by "; ".
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "; ")
}

func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "daguq",
		Short: "Durable message queues for Dagu, kept in SQLite",
		Long: `daguq keeps durable message queues in one SQLite file that many processes share:
producers enqueue JSON messages, consumers claim them in batches under a lease,
run a handler per batch, and ack, retry with backoff, or dead-letter them.

In Dagu the same code runs as the step types "enqueue" and "queue"
(see "daguq dagu-config"); on the command line as "daguq enqueue" and
"daguq consume". Pools ("daguq pool", the step type "pool") cap how many
commands run at once across every DAG.

The database is the file given by --db, else $DAGUQ_DB, else a file under
$DAGU_HOME when it is set, else one under the XDG data directory
($XDG_DATA_HOME or ~/.local/share). "daguq stats" names the file and the rule
that chose it.

Exit codes: 0 ok; 1 a handler failed and the fail policy asked to fail;
2 bad flag, argument or config value; 3 database error; 4 stopped by a signal;
5 a pool's wait timeout passed. "daguq pool run" exits with its command's status.`,
		Example: `  # enqueue three messages, drain them through a handler, check the queue
  printf '{"to":"a@example.com"}\n{"to":"b@example.com"}\n' | daguq enqueue --queue emails --file -
  daguq enqueue --queue emails --message '{"to":"c@example.com"}' --priority 5
  daguq consume --queue emails --batch-size 50 --concurrency 4 -- ./send.sh
  daguq stats`,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.started = true
			return a.checkDBFlag(cmd)
		},
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	root.Version = readBuildInfo().String()
	root.SetVersionTemplate("daguq {{.Version}}\n")
	root.PersistentFlags().StringVar(&a.db, "db", "", "database: a SQLite file, or a postgres:// URL (default: $DAGUQ_DB, else under $DAGU_HOME, else under the XDG data directory)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError("%v (see %s --help)", err, cmd.CommandPath())
	})
	root.AddCommand(
		a.newEnqueueCmd(),
		a.newConsumeCmd(),
		a.newStatsCmd(),
		a.newPeekCmd(),
		a.newDLQCmd(),
		a.newPauseCmd(),
		a.newResumeCmd(),
		a.newLimitCmd(),
		a.newPoolCmd(),
		a.newPurgeCmd(),
		a.newMigrateCmd(),
		a.newVacuumCmd(),
		a.newDaguConfigCmd(),
		a.newVersionCmd(),
		a.newServeCmd(),
		a.newCheckCmd(),
		a.newDispatchCmd(),
		a.newCopyCmd(),
	)
	return root
}
