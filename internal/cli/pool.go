package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/executor"
	"github.com/daguq/daguq/queuestore"
)

func (a *app) newPoolCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Cap how many commands run at once across every DAG: pools of slots",
		Long: `A pool is a number of slots (its capacity) that every user of the database
shares, whatever DAG, run, process or host: "daguq pool run NAME -- CMD" and
the Dagu step "type: pool" wait until the slots they ask for are free, hold
them while their command runs, and give them back when it ends. A command can
weigh more than one slot (--slots). Waiters are served by priority, then in
the order they arrived, strictly: a waiter wanting 4 slots is not passed by
later waiters wanting 1.

A pool must be set before it is used: "daguq pool set NAME CAPACITY". See
docs/pools.md.`,
		Example: `  daguq pool set warehouse-db 2
  daguq pool run warehouse-db -- psql -f nightly.sql
  daguq pool run warehouse-db --slots 2 --priority 5 -- ./rebuild-index.sh
  daguq pool list
  daguq pool rm warehouse-db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError("missing subcommand: set, list, rm or run (see daguq pool --help)")
		},
	}
	cmd.AddCommand(a.newPoolSetCmd(), a.newPoolListCmd(), a.newPoolRmCmd(), a.newPoolRunCmd())
	return cmd
}

// withPools opens the database (creating it when missing) and runs fn on
// it; executor.ExitCode gives fn's error its exit status.
func (a *app) withPools(fn func(queuestore.PoolBackend) error) error {
	opened, err := a.openStore()
	if err != nil {
		return err
	}
	defer opened.Close()
	return fn(opened)
}

// poolArgs accepts exactly the positional arguments named and checks that
// the first is a valid pool name.
func poolArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usageError("missing %s argument (usage: %s)", names[len(args)], cmd.UseLine())
		}
		if len(args) > len(names) {
			return usageError("unexpected argument %q (usage: %s)", args[len(names)], cmd.UseLine())
		}
		if name := args[0]; queuestore.ValidatePoolName(name) != nil {
			return usageError("NAME argument %q: want %s", name, queuestore.QueueNameRule)
		}
		return nil
	}
}

func (a *app) newPoolSetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME CAPACITY",
		Short: "Create a pool or change its capacity (slots)",
		Long: fmt.Sprintf(`Create the pool NAME with CAPACITY slots (1..%d), or change the capacity of
an existing one. Lowering it takes nothing back: commands holding slots run
on, and nobody else gets slots until the holders fit in the new capacity.
A waiter asking for more slots than the new capacity fails (exit status 2).`, queuestore.MaxPoolCapacity),
		Example: `  daguq pool set warehouse-db 2     # two commands of weight 1 at once
  daguq pool set gpu 8`,
		Args: poolArgs("NAME", "CAPACITY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 1 || n > queuestore.MaxPoolCapacity {
				return usageError("CAPACITY argument must be an integer 1..%d, got %q (remove a pool with daguq pool rm)", queuestore.MaxPoolCapacity, args[1])
			}
			return a.withPools(func(st queuestore.PoolBackend) error {
				if err := st.SetPool(cmd.Context(), args[0], n); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "pool %q: %d slot(s)\n", args[0], n)
				return nil
			})
		},
	}
}

func (a *app) newPoolRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a pool",
		Long: `Remove the pool NAME. While commands hold its slots or wait for them, it
refuses (exit status 2) unless --force: then the holders' commands run on
without slots and the waiters end with exit status 2 (pool not set).`,
		Example: `  daguq pool rm warehouse-db
  daguq pool rm warehouse-db --force`,
		Args: poolArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withPools(func(st queuestore.PoolBackend) error {
				holders, waiters, err := st.RemovePool(cmd.Context(), args[0], force)
				switch {
				case errors.Is(err, queuestore.ErrPoolNotFound):
					return usageError("pool %q is not set", args[0])
				case errors.Is(err, queuestore.ErrPoolBusy):
					return usageError("pool %q is in use: %d holder(s) and %d waiter(s) (daguq pool list %s); --force removes it anyway", args[0], holders, waiters, args[0])
				case err != nil:
					return err
				}
				fmt.Fprintf(a.stdout, "pool %q removed", args[0])
				if holders+waiters > 0 {
					fmt.Fprintf(a.stdout, " (%d holder(s) and %d waiter(s) dropped)", holders, waiters)
				}
				fmt.Fprintln(a.stdout)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove the pool even while commands hold or wait for its slots")
	return cmd
}

// poolReport is the --json form of pool list.
type poolReport struct {
	DB       string                  `json:"db"`
	DBSource string                  `json:"db_source"`
	Pools    []queuestore.PoolStatus `json:"pools"`
}

func (a *app) newPoolListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [NAME...]",
		Short: "Show every pool: capacity, slots in use, who holds them and who waits",
		Long: `Show, for every pool (or those named), its capacity, the slots in use and free,
and how many wait; then one line per holder and per waiter, waiters in the
order they will be served: slots, priority, the Dagu DAG, run id and step
(from the step's environment: DAG_NAME, DAG_RUN_ID, DAG_RUN_STEP_NAME), the
host and process id, and for how long it has held or waited. Holders and
waiters whose process died drop out when their lease or registration runs
out.`,
		Example: `  daguq pool list
  daguq pool list warehouse-db
  daguq pool list --json | jq '.pools[] | {pool, used, capacity}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range args {
				if queuestore.ValidatePoolName(name) != nil {
					return usageError("NAME argument %q: want %s", name, queuestore.QueueNameRule)
				}
			}
			return a.poolList(cmd.Context(), args, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print one JSON object: {"db", "db_source", "pools": [{"pool", "capacity", "used", "holders", "waiters"}]}`)
	return cmd
}

func (a *app) poolList(ctx context.Context, names []string, asJSON bool) error {
	path, source := a.dbPath()
	report := poolReport{DB: path, DBSource: source, Pools: []queuestore.PoolStatus{}}
	opened, err := a.openExisting()
	if err != nil {
		return err
	}
	if opened == nil && len(names) > 0 {
		return usageError("pool %q is not set (no database file yet)", names[0])
	}
	if opened != nil {
		defer opened.Close()
		if len(names) == 0 {
			pools, err := opened.Pools(ctx)
			if err != nil {
				return err
			}
			report.Pools = append(report.Pools, pools...)
		}
		for _, n := range names {
			p, err := opened.Pool(ctx, n)
			if errors.Is(err, queuestore.ErrPoolNotFound) {
				return usageError("pool %q is not set", n)
			}
			if err != nil {
				return err
			}
			report.Pools = append(report.Pools, p)
		}
	}
	return a.writeReport(report, asJSON, path, source, func() error { return a.poolTables(report.Pools) })
}

// poolTables prints the pools, then their holders and waiters, if any.
func (a *app) poolTables(pools []queuestore.PoolStatus) error {
	if len(pools) == 0 {
		fmt.Fprintln(a.stdout, "(no pools: create one with daguq pool set NAME CAPACITY)")
		return nil
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "POOL\tCAPACITY\tUSED\tFREE\tWAITING")
	for _, p := range pools {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", p.Name, p.Capacity, p.Used, p.Free(), len(p.Waiters))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	now := time.Now()
	tw = newTable(a.stdout)
	rows := 0
	row := func(pool, state string, slots int, priority int64, who queuestore.Holder, duration string) {
		if rows == 0 {
			fmt.Fprintln(tw, "\nPOOL\tSTATE\tSLOTS\tPRIORITY\tDAG\tRUN\tSTEP\tPROCESS\tFOR")
		}
		rows++
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", pool, state, slots, priority,
			dash(who.DAG), dash(who.RunID), dash(who.Step), process(who), duration)
	}
	for _, p := range pools {
		for _, h := range p.Holders {
			row(p.Name, "holds", h.Slots, h.Priority, h.Holder, since(now, h.GrantedAt))
		}
		for i, w := range p.Waiters {
			row(p.Name, "waits "+strconv.Itoa(i+1), w.Slots, w.Priority, w.Holder, since(now, w.ArrivedAt))
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func process(h queuestore.Holder) string {
	if h.Host == "" {
		return strconv.Itoa(h.PID)
	}
	return h.Host + ":" + strconv.Itoa(h.PID)
}

func since(now, t time.Time) string {
	d := max(now.Sub(t), 0)
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func (a *app) newPoolRunCmd() *cobra.Command {
	var flags *configFlags
	cmd := &cobra.Command{
		Use:   "run NAME [flags] -- COMMAND [ARG...]",
		Short: "Run a command while holding slots of a pool (the pool step)",
		Long: `Wait until --slots slots (default 1) of the pool NAME are free, run the
command holding them, and give them back when it ends: exactly what the Dagu
step "type: pool" does, whose with: keys are the flags in kebab-case
(wait_timeout is --wait-timeout).

The command is what follows "--", run directly with its arguments (no
shell), or a command line in --run (run with sh -c), or a script body in
--script. Its stdin, stdout and stderr are daguq's; it runs in its own process
group (unless stdin is a terminal) with $DAGUQ_POOL, $DAGUQ_POOL_SLOTS and
$DAGUQ_POOL_GRANT (the grant's id) set.

While it waits, daguq says so on stderr (the slots it wants, who holds the
pool, how many wait) at once and then every minute. Waiters are served by
--priority (higher first), then arrival. SIGTERM or SIGINT while waiting
leaves the line at once (exit status 4); --wait-timeout gives up waiting
(exit status 5). While the command runs, a heartbeat extends the slots'
lease every lease/3; SIGTERM or SIGINT goes to the command (SIGKILL after
--grace) and the slots are given back as soon as it has ended. A stopped
daguq gives the database until --grace + 1.5s after the stop to take the
slots (or its place in line) back, then exits all the same: what it could not
give back returns when the lease (or the 15s registration of a waiter) runs
out, as stderr says. If daguq is killed outright, the slots return when the
lease runs out.

The exit status is the command's (128+N when signal N killed it). Before the
command runs daguq's own apply: 2 bad flag, pool not set, or more slots than
its capacity; 3 database error; 4 stopped while waiting; 5 wait timeout.`,
		Example: `  daguq pool set warehouse-db 2
  daguq pool run warehouse-db -- psql -f nightly.sql
  daguq pool run warehouse-db --slots 2 --priority 5 --wait-timeout 30m -- ./rebuild.sh --all
  daguq pool run warehouse-db --run 'pg_dump app | gzip > app.sql.gz'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			config, err := flags.config()
			if err != nil {
				return err
			}
			dash := cmd.ArgsLenAtDash()
			named := args
			var command []string
			if dash >= 0 {
				named, command = args[:dash], args[dash:]
			}
			switch {
			case len(named) > 1:
				return usageError("unexpected argument %q: put the command after \"--\" (daguq pool run NAME -- COMMAND)", named[1])
			case len(named) == 1:
				if name := named[0]; queuestore.ValidatePoolName(name) != nil {
					return usageError("NAME argument %q: want %s", name, queuestore.QueueNameRule)
				}
				if given, ok := config["pool"].(string); ok && given != named[0] {
					return usageError("pool %q in --with and %q as NAME: give it once", given, named[0])
				}
				config["pool"] = named[0]
			case config["pool"] == nil:
				return usageError("missing NAME argument (usage: %s)", cmd.UseLine())
			}
			if dash >= 0 {
				if len(command) == 0 {
					return usageError("no command after \"--\"")
				}
				_, hasRun := config["run"]
				_, hasScript := config["script"]
				if hasRun || hasScript {
					return usageError("give the command once: after \"--\", or with --run, or with --script")
				}
				config["run"] = anyList(command)
			}
			return a.runExecutor("daguq pool run", executor.KindPool, flags, config, a.stdin)
		},
	}
	flags = addConfigFlags(cmd.Flags(), executor.KindPool, "db", "pool")
	return cmd
}
