// Command daguq-dagu embeds Dagu's engine with daguq's `queue`, `enqueue` and `pool`
// step types registered: it runs a DAG file in this process, or serves as a
// worker of Dagu's distributed mode.
//
//	daguq-dagu run dags/x.yaml -- PARAM=value
//	daguq-dagu worker --coordinator 127.0.0.1:50055 --label pool=queues
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dagucloud/dagu"
	"github.com/spf13/cobra"

	"github.com/daguq/daguq/plugin"
)

func main() {
	plugin.Register()
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the command line until it ends or ctx is done, and returns
// the exit status.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var fail runFailed
		if !errors.As(err, &fail) {
			fmt.Fprintln(stderr, "daguq-dagu:", err)
		}
		return 1
	}
	return 0
}

// runFailed is a DAG run that ended, already reported, but not succeeded.
type runFailed struct{ status string }

func (e runFailed) Error() string { return "dag-run " + e.status }

// engineFlags are the engine options both subcommands take.
type engineFlags struct {
	home, config, baseConfig, dagsDir string
	verbose                           bool
}

func (f *engineFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.home, "dagu-home", os.Getenv("DAGU_HOME"), "Dagu home: config, data and logs (default $DAGU_HOME, else Dagu's default); also daguq's default db is DIR/daguq/daguq.db")
	fl.StringVarP(&f.config, "config", "c", "", "Dagu config file")
	fl.StringVar(&f.baseConfig, "base-config", "", "Dagu base config applied to every DAG (must not define step_types named queue, enqueue or pool)")
	fl.StringVarP(&f.dagsDir, "dags", "d", "", "directory of named DAGs")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log the engine's progress on stderr")
}

func (f *engineFlags) options(stderr io.Writer) (dagu.Options, error) {
	if f.home != "" {
		// daguq resolves its default database from DAGU_HOME, as it does
		// under a Dagu server started with DAGU_HOME.
		if err := os.Setenv("DAGU_HOME", f.home); err != nil {
			return dagu.Options{}, fmt.Errorf("--dagu-home: %w", err)
		}
	}
	opts := dagu.Options{HomeDir: f.home, ConfigFile: f.config, BaseConfig: f.baseConfig, DAGsDir: f.dagsDir}
	if f.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return opts, nil
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "daguq-dagu",
		Short:         "Dagu's engine with daguq's queue, enqueue and pool step types built in",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(stdout, stderr), newWorkerCmd(stdout, stderr), newStartCmd())
	return root
}

// newStartCmd answers Dagu's "<executable> start" call for a local sub-DAG
// (call:, parallel:) with what to do instead.
func newStartCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "start",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New(`Dagu runs sub-DAGs (call:, parallel:) as "<executable> start" processes, which daguq-dagu is not: ` +
				"set DAGU_EXECUTABLE (or paths.executable in Dagu's config) to a dagu binary; " +
				"sub-DAGs run there have no queue, enqueue or pool step type")
		},
	}
}

func newRunCmd(stdout, stderr io.Writer) *cobra.Command {
	var ef engineFlags
	var runID string
	cmd := &cobra.Command{
		Use:   "run DAG_FILE [-- PARAM=VALUE ...]",
		Short: "Run a DAG file in this process and wait for it; exit 1 unless it succeeded",
		Long: `Run a DAG file in this process and wait for it. Its queue, enqueue and pool steps run
here; call: and parallel: sub-DAGs are started as "dagu start" subprocesses by
Dagu and do not have them. On SIGINT or SIGTERM the run is stopped (its
consumers release their unfinished batches) and the command exits 1.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := ef.options(stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDAG(ctx, opts, args[0], args[1:], runID, stdout)
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVarP(&runID, "run-id", "r", "", "DAG-run id (default: generated)")
	return cmd
}

// runDAG runs one DAG file, stops it when ctx ends, and prints its status.
func runDAG(ctx context.Context, opts dagu.Options, file string, params []string, runID string, stdout io.Writer) error {
	bg := context.WithoutCancel(ctx)
	eng, err := dagu.New(bg, opts)
	if err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	defer eng.Close(bg)

	runOpts := []dagu.RunOption{dagu.WithParamsList(params)}
	if runID != "" {
		runOpts = append(runOpts, dagu.WithRunID(runID))
	}
	run, err := eng.RunFile(bg, file, runOpts...)
	if err != nil {
		return fmt.Errorf("run %s: %w", file, err)
	}
	waited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(bg, 30*time.Second)
			defer cancel()
			_ = run.Stop(stopCtx)
		case <-waited:
		}
	}()
	// Wait returns the final status, and an error too unless it succeeded.
	st, err := run.Wait(bg)
	close(waited)
	if st == nil {
		return fmt.Errorf("wait for dag-run %s: %w", run.ID(), err)
	}
	fmt.Fprintf(stdout, "dag-run %s %s: %s\n", st.Name, st.RunID, st.Status)
	if st.Error != "" {
		fmt.Fprintf(stdout, "error: %s\n", strings.TrimSpace(st.Error))
	}
	if st.LogFile != "" {
		fmt.Fprintf(stdout, "log: %s\n", st.LogFile)
	}
	if st.Status != "succeeded" {
		return runFailed{status: st.Status}
	}
	return nil
}

func newWorkerCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		ef           engineFlags
		coordinators []string
		labels       map[string]string
		wo           dagu.WorkerOptions
	)
	cmd := &cobra.Command{
		Use:   "worker --coordinator HOST:PORT [--label KEY=VALUE ...]",
		Short: "Run DAGs dispatched by a Dagu coordinator in this process, until SIGINT or SIGTERM",
		Long: `Serve as a worker of Dagu's distributed mode: poll the coordinators for
DAG runs whose worker_selector matches the labels, and run them in this
process, where the queue, enqueue and pool step types exist.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(coordinators) == 0 {
				return errors.New("--coordinator is required: the address HOST:PORT of a Dagu coordinator")
			}
			for _, c := range coordinators {
				if _, port, ok := strings.Cut(c, ":"); !ok || port == "" {
					return fmt.Errorf("--coordinator %q: want HOST:PORT", c)
				}
			}
			opts, err := ef.options(stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			bg := context.WithoutCancel(ctx)
			eng, err := dagu.New(bg, opts)
			if err != nil {
				return fmt.Errorf("start engine: %w", err)
			}
			defer eng.Close(bg)
			wo.Coordinators = coordinators
			wo.Labels = labels
			w, err := eng.NewWorker(wo)
			if err != nil {
				return fmt.Errorf("worker: %w", err)
			}
			done := make(chan error, 1)
			go func() { done <- w.Start(ctx) }()
			go func() {
				if w.WaitReady(ctx) == nil {
					fmt.Fprintf(stdout, "worker ready: coordinators %s, labels %v\n", strings.Join(coordinators, ","), labels)
				}
			}()
			err = <-done
			stopCtx, cancel := context.WithTimeout(bg, 30*time.Second)
			defer cancel()
			_ = w.Stop(stopCtx)
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("worker: %w", err)
			}
			return nil
		},
	}
	ef.register(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&coordinators, "coordinator", nil, "coordinator address HOST:PORT (repeatable)")
	fl.StringToStringVar(&labels, "label", nil, "worker label KEY=VALUE, matched by worker_selector (repeatable)")
	fl.StringVar(&wo.ID, "id", "", "worker id (default: HOST@PID)")
	fl.IntVar(&wo.MaxActiveRuns, "max-active-runs", 0, "DAG runs at once (default 100)")
	fl.IntVar(&wo.HealthPort, "health-port", 0, "port of the HTTP health endpoint (0: none)")
	fl.BoolVar(&wo.TLS.Insecure, "insecure", true, "plaintext connection to the coordinator (Dagu's default); false to use TLS")
	fl.StringVar(&wo.TLS.CertFile, "cert-file", "", "TLS client certificate")
	fl.StringVar(&wo.TLS.KeyFile, "key-file", "", "TLS client key")
	fl.StringVar(&wo.TLS.ClientCAFile, "ca-file", "", "CA file to verify the coordinator")
	fl.BoolVar(&wo.TLS.SkipTLSVerify, "skip-tls-verify", false, "do not verify the coordinator's certificate")
	return cmd
}
