package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/dispatch"
	"github.com/daguq/daguq/executor"
)

// dispatchFlags are the flags of `daguq dispatch`; serve takes the rules
// file and the Dagu flags.
type dispatchFlags struct {
	rulesFile     string
	rule          dispatch.Rule
	minPriority   int64
	maxPriority   int64
	daguURL       string
	tokenFile     string
	basicAuthFile string
	state         string
	poll, watch   time.Duration
}

func (a *app) newDispatchCmd() *cobra.Command {
	var f dispatchFlags
	cmd := &cobra.Command{
		Use:   "dispatch (--rules FILE | --queue QUEUE --dag DAG [flags])",
		Short: "Start one Dagu DAG run per ready batch, ack it when the run succeeds",
		Long: `Claim a batch of a queue as soon as one is ready and start one run of a Dagu
DAG for it through Dagu's REST API; keep the batch's lease alive while the run
is active; ack the batch when the run succeeds (or partially succeeds), nack
it (backoff, then dead letters) when the run fails, is aborted or rejected.

The run gets only the parameters DAGUQ_QUEUE, DAGUQ_TOKEN, DAGUQ_BATCH_ID and
DAGUQ_COUNT, never message bodies; a step reads the batch by token
(type: queue, action: get) and may ack or nack messages itself (action:
ack/nack); the dispatcher finishes only what the lease still holds.

Each batch has one run id, "daguq-" + a hash of the database and queue + the
lease id, written to the state file (default: next to the database,
DB.dispatch.json) before the start; after any error, or when the dispatcher
starts again, the run is looked up by that id before anything is started.

One rule from the flags, or several from --rules FILE (YAML, docs/dispatch.md).
Dagu's address: --dagu-url, the rules file's dagu.url, $DAGUQ_DAGU_URL, else
http://127.0.0.1:8080. Credentials, never on the command line: an API key in
--dagu-token-file (or dagu.token_file, or $DAGUQ_DAGU_TOKEN), or
"user:password" in --dagu-basic-auth-file (or dagu.basic_auth_file, or
$DAGUQ_DAGU_BASIC_AUTH). They are never printed.

While Dagu cannot be reached it says so once, keeps the leases, and tries
again with backoff. SIGTERM or SIGINT stop it: batches not yet handed to a run
are released at once, or, when the database does not answer within 4.5s of
the stop, left to their lease (stderr names the queue and the count); those
handed to a run stay leased and recorded, and the next start follows their
runs.`,
		Example: `  daguq dispatch --queue orders --dag process-orders --batch-size 50 --concurrency 4 --max-wait 5s
  daguq dispatch --rules /etc/daguq/dispatch.yaml --dagu-token-file /etc/daguq/dagu-key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fl := cmd.Flags()
			if fl.Changed("min-priority") {
				f.rule.MinPriority = &f.minPriority
			}
			if fl.Changed("max-priority") {
				f.rule.MaxPriority = &f.maxPriority
			}
			// Zero means the default in a rules file; a flag says it outright.
			if f.rule.BatchSize < 1 || f.rule.Concurrency < 1 || f.rule.Lease <= 0 {
				return usageError("batch_size must be 1..10000, got %d; concurrency at least 1, got %d; lease positive, got %s",
					f.rule.BatchSize, f.rule.Concurrency, f.rule.Lease)
			}
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			d, _, err := a.newDispatcher(st, f)
			if err != nil {
				return err
			}
			if err := d.Run(ctx); err != nil {
				return &executor.ExitError{Code: executor.ExitStore, Err: err}
			}
			c := d.Counts()
			left := ""
			if c.Unfinished > 0 {
				left = fmt.Sprintf(", %d left to their lease", c.Unfinished)
			}
			fmt.Fprintf(a.stderr, "daguq dispatch: stopped: %d runs started, %d succeeded, %d failed; %d messages acked, %d retried, %d dead, %d finished by runs, %d released%s\n",
				c.Runs, c.Succeeded, c.Failed, c.Acked, c.Retried, c.Dead, c.Lost, c.Released, left)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.rulesFile, "rules", "", "YAML file of rules (and the dagu: section); exclusive with --queue/--dag")
	fl.StringVar(&f.rule.Queue, "queue", "", "queue to claim from (one rule from flags)")
	fl.StringVar(&f.rule.DAG, "dag", "", "Dagu DAG file name to start, without .yaml")
	fl.StringVar(&f.rule.DAGName, "dag-name", "", "the DAG's name in Dagu's run history when it differs from the file name")
	fl.IntVar(&f.rule.BatchSize, "batch-size", 10, "messages per run at most")
	fl.DurationVar(&f.rule.MaxWait, "max-wait", 0, "hold a partial batch this long for more messages (0: start at once)")
	fl.Int64Var(&f.rule.MaxBytes, "max-bytes", 0, "a batch is complete at this many body bytes (0: no limit)")
	fl.BoolVar(&f.rule.GroupBy, "group-by", false, "one group key per batch")
	fl.Int64Var(&f.minPriority, "min-priority", 0, "take only messages with at least this priority")
	fl.Int64Var(&f.maxPriority, "max-priority", 0, "take only messages with at most this priority")
	fl.IntVar(&f.rule.Concurrency, "concurrency", 1, "DAG runs of this rule at once at most")
	fl.DurationVar(&f.rule.Lease, "lease", 5*time.Minute, "lease of a batch, extended every lease/3 while its run is active")
	fl.IntVar(&f.rule.MaxAttempts, "max-attempts", 0, "deliveries before a failed message goes to the dead letters (0: the message's own)")
	fl.DurationVar(&f.rule.BackoffBase, "backoff-base", 10*time.Second, "first retry delay after a failed run (doubling, with jitter)")
	fl.DurationVar(&f.rule.BackoffMax, "backoff-max", time.Hour, "largest retry delay")
	fl.BoolVar(&f.rule.Enqueue, "enqueue", false, "start runs with Dagu's /enqueue (respects Dagu's queues) instead of /start")
	a.dispatchDaguFlags(cmd, &f)
	fl.StringVar(&f.state, "state", "", "the dispatcher's state file (default: DB.dispatch.json next to the database)")
	fl.DurationVar(&f.poll, "poll", 250*time.Millisecond, "pause between claims that found nothing")
	fl.DurationVar(&f.watch, "watch", 2*time.Second, "pause between looks at the active runs")
	return cmd
}

// dispatchDaguFlags adds the flags serve shares with dispatch.
func (a *app) dispatchDaguFlags(cmd *cobra.Command, f *dispatchFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.daguURL, "dagu-url", "", "Dagu's address (default: the rules file's dagu.url, $DAGUQ_DAGU_URL, else http://127.0.0.1:8080)")
	fl.StringVar(&f.tokenFile, "dagu-token-file", "", "file holding a Dagu API key (default: dagu.token_file, $DAGUQ_DAGU_TOKEN)")
	fl.StringVar(&f.basicAuthFile, "dagu-basic-auth-file", "", `file holding "user:password" for Dagu (default: dagu.basic_auth_file, $DAGUQ_DAGU_BASIC_AUTH)`)
}

// newDispatcher builds a dispatcher from the flags, the rules file and the
// environment, and says at which Dagu address (the URL as given, without
// /api/v1). Its errors never quote a credential.
func (a *app) newDispatcher(st dispatch.Store, f dispatchFlags) (*dispatch.Dispatcher, string, error) {
	var cfg dispatch.Config
	switch {
	case f.rulesFile != "" && (f.rule.Queue != "" || f.rule.DAG != ""):
		return nil, "", usageError("give --rules FILE or --queue and --dag, not both")
	case f.rulesFile != "":
		var err error
		if cfg, err = dispatch.LoadConfig(f.rulesFile); err != nil {
			return nil, "", usageError("--rules: %v", err)
		}
	case f.rule.Queue == "" || f.rule.DAG == "":
		return nil, "", usageError("give --queue and --dag (one rule), or --rules FILE")
	default:
		cfg.Rules = []dispatch.Rule{f.rule}
	}
	url := firstNonEmpty(f.daguURL, cfg.Dagu.URL, a.getenv("DAGUQ_DAGU_URL"), "http://127.0.0.1:8080")
	if f.tokenFile != "" || f.basicAuthFile != "" {
		cfg.Dagu.TokenFile, cfg.Dagu.BasicAuthFile = f.tokenFile, f.basicAuthFile
	}
	auth, err := cfg.Dagu.ReadAuth()
	if err != nil {
		return nil, "", usageError("%v", err)
	}
	if auth == (dispatch.Auth{}) {
		if tok := strings.TrimSpace(a.getenv("DAGUQ_DAGU_TOKEN")); tok != "" {
			auth.Token = tok
		} else if basic := a.getenv("DAGUQ_DAGU_BASIC_AUTH"); basic != "" {
			if auth, err = dispatch.ParseBasic(basic); err != nil {
				return nil, "", usageError("DAGUQ_DAGU_BASIC_AUTH: %v", err)
			}
		}
	}
	client, err := dispatch.NewClient(url, auth, nil)
	if err != nil {
		return nil, "", usageError("%v", err)
	}
	path, _ := a.dbPath()
	state := f.state
	if state == "" {
		if isURL(path) {
			return nil, "", usageError("the database is not a file: give the dispatcher's state file with --state FILE (--dispatch-state for serve)")
		}
		state = path + ".dispatch.json"
	}
	d, err := dispatch.New(dispatch.Options{Store: st, Dagu: client, Rules: cfg.Rules, StatePath: state,
		Namespace: path, Poll: f.poll, Watch: f.watch, Consumer: "daguq-dispatch", Stderr: a.stderr})
	if err != nil {
		return nil, "", usageError("%v", err)
	}
	how := "no auth"
	switch {
	case auth.Token != "":
		how = "API key"
	case auth.User != "":
		how = "basic auth"
	}
	for _, r := range d.Rules() {
		fmt.Fprintf(a.stderr, "daguq dispatch: queue %q -> dag %q (batch %d, concurrency %d, lease %s) at %s (%s), state %s\n",
			r.Queue, r.DAG, r.BatchSize, r.Concurrency, r.Lease, client, how, state)
	}
	return d, strings.TrimSuffix(client.String(), "/api/v1"), nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			return strings.TrimSpace(x)
		}
	}
	return ""
}

// runDispatcher runs d beside another long-lived job (serve) and returns a
// function that waits for it to stop.
func runDispatcher(ctx context.Context, d *dispatch.Dispatcher) (wait func() error) {
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return func() error { return <-done }
}
