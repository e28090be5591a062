package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/daguq/daguq/internal/stopdeadline"
	"github.com/daguq/daguq/queuestore"
)

// The `pool` step: run a command while holding slots of a pool, a capacity
// shared by every step of every DAG that uses the database (docs/pools.md).
// The step waits in line for its slots (by priority, then arrival), runs
// the command as a plain step would (the command's stdout is the step's
// stdout, its exit status the step's), and gives the slots back when the
// command ends, when the step is stopped, or, if daguq is killed, when the
// lease runs out.

var poolFields = []Field{
	{Name: "pool", Type: TypeString, Required: true, MaxLength: 128,
		Description: "Pool name: " + queuestore.QueueNameRule + ". Set its capacity first: `daguq pool set NAME CAPACITY`."},
	{Name: "slots", Type: TypeInteger, Default: 1, Min: bound(1), Max: bound(queuestore.MaxPoolCapacity),
		Description: "Slots the command holds while it runs (its weight); at most the pool's capacity."},
	{Name: "run", Type: TypeStringOrList, Verbatim: true,
		Description: "The command: a command line run with `shell -c`, or a list of words run without a shell. Its stdout is the step's stdout (for `output:`), its stderr the step's stderr, its exit status the step's. With Dagu's step_types a `$` in a command line reaches the shell (docs/dagu.md, the `$` rule)."},
	{Name: "script", Type: TypeString, Verbatim: true,
		Description: "The command as a script body, written to a temporary file and run as `shell FILE`. Exclusive with run."},
	{Name: "shell", Type: TypeString, Default: "sh", Verbatim: true,
		Description: "Program (and arguments, split on spaces) that runs a string `run` (with -c) or a `script` file."},
	{Name: "priority", Type: TypeInteger, Default: 0, Min: bound(queuestore.MinPriority), Max: bound(queuestore.MaxPriority),
		Description: "Waiting steps are served by priority (higher first), then in the order they arrived."},
	{Name: "wait_timeout", Type: TypeDuration, Default: "0s", Min: bound(0),
		Description: "Give up waiting for the slots after this long: the step ends with exit status 5 and the command does not run. 0s: wait as long as it takes."},
	{Name: "lease", Type: TypeDuration, Default: "1m", Min: bound(1), Max: bound(7 * 24 * 3600),
		Description: "The slots count this long unless extended; a heartbeat extends them every lease/3 while the command runs. If daguq is killed (kill -9) they return when it runs out."},
	{Name: "grace", Type: TypeDuration, Default: "3s", Min: bound(0), Max: bound(3600),
		Description: "On stop: time between the signal and SIGKILL of the command's process group. The slots are given back when the command has ended, until grace + 1.5s after the stop; what the database did not take by then returns when the lease runs out."},
	dbField,
}

type poolConfig struct {
	Pool        string        `mapstructure:"pool"`
	Slots       int           `mapstructure:"slots"`
	Run         any           `mapstructure:"run"`
	Script      string        `mapstructure:"script"`
	Shell       string        `mapstructure:"shell"`
	Priority    int64         `mapstructure:"priority"`
	WaitTimeout time.Duration `mapstructure:"wait_timeout"`
	Lease       time.Duration `mapstructure:"lease"`
	Grace       time.Duration `mapstructure:"grace"`
	DB          string        `mapstructure:"db"`

	// The command, parsed as the queue step's handler is.
	cmd queueConfig
}

func defaultPoolConfig() poolConfig {
	return poolConfig{Slots: 1, Shell: "sh", Lease: time.Minute, Grace: 3 * time.Second}
}

// parsePoolConfig decodes, defaults and validates a pool step's `with:`.
func parsePoolConfig(raw map[string]any) (poolConfig, error) {
	cfg := defaultPoolConfig()
	if err := decodeConfig(KindPool, raw, &cfg); err != nil {
		return poolConfig{}, err
	}
	if err := cfg.validate(); err != nil {
		return poolConfig{}, err
	}
	return cfg, nil
}

func (c *poolConfig) validate() error {
	var errs []error
	switch {
	case c.Pool == "":
		errs = append(errs, badValue("pool", "is required: the pool name (set its capacity with `daguq pool set NAME CAPACITY`)"))
	case len(c.Pool) > mustField(KindPool, "pool").MaxLength: // checkFields names the length
	case queuestore.ValidatePoolName(c.Pool) != nil:
		errs = append(errs, badValue("pool", "%q must be %s", c.Pool, queuestore.QueueNameRule))
	}
	errs = append(errs, checkFields(Fields(KindPool), c)...)
	// The command: run, script and shell as the queue step reads them.
	c.cmd = queueConfig{Action: ActionConsume, Run: c.Run, Script: c.Script, Shell: c.Shell}
	errs = append(errs, c.cmd.parseCommand("command")...)
	return errors.Join(errs...)
}

// resolveCommand takes the step's own command or script when `with:` names
// none (Dagu's Go registry), and requires one.
func (c *poolConfig) resolveCommand(spec Spec) error {
	if err := c.cmd.resolveHandler(spec); err != nil {
		return badKeys("run", func(n Names) string {
			return fmt.Sprintf("%s or %s is required: the command to run while holding the slots (e.g. %s)", n.Key("run"), n.Key("script"), n.Setting("run", "./load.sh"))
		})
	}
	return nil
}

func validatePool(config map[string]any) error {
	cfg, err := parsePoolConfig(config)
	if err != nil {
		return err
	}
	return cfg.resolveCommand(Spec{})
}

// Variables Dagu sets in a step's environment; they name the holder of a
// pool's slots in `daguq pool list`.
const (
	envDAGName  = "DAG_NAME"
	envDAGRunID = "DAG_RUN_ID"
	envDAGStep  = "DAG_RUN_STEP_NAME"
)

// Environment variables the command gets, besides the step's own.
const (
	EnvPool      = "DAGUQ_POOL"       // the pool name
	EnvPoolSlots = "DAGUQ_POOL_SLOTS" // the slots held
	EnvPoolGrant = "DAGUQ_POOL_GRANT" // the grant's id: grants are numbered in the order they were made
)

// PoolStore is what the pool step needs of a store; every backend has it.
type PoolStore interface {
	Acquire(ctx context.Context, opts queuestore.AcquireOptions) (*queuestore.Grant, error)
	ExtendGrant(ctx context.Context, g *queuestore.Grant, d time.Duration) error
	ReleaseGrant(ctx context.Context, g *queuestore.Grant) error
	Pool(ctx context.Context, name string) (queuestore.PoolStatus, error)
	Close() error
}

var _ PoolStore = queuestore.Backend(nil)

// poolExecutor is the `pool` step.
type poolExecutor struct {
	spec   Spec
	cfg    poolConfig
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	stopState
	target int // the running command: a process group (> 0) or, negated, a process

	exitStatus
}

var (
	_ Executor    = (*poolExecutor)(nil)
	_ StdinSetter = (*poolExecutor)(nil)
)

func newPoolExecutor(spec Spec) (*poolExecutor, error) {
	cfg, err := parsePoolConfig(spec.Config)
	if err != nil {
		return nil, usageError(err)
	}
	if err := cfg.resolveCommand(spec); err != nil {
		return nil, usageError(err)
	}
	return &poolExecutor{spec: spec, cfg: cfg, stdout: io.Discard, stderr: io.Discard, stopState: newStopState(cfg.Grace)}, nil
}

func (e *poolExecutor) SetStdout(w io.Writer) { e.stdout = w }
func (e *poolExecutor) SetStderr(w io.Writer) { e.stderr = w }

// SetStdin sets the command's standard input (default: none, as a Dagu
// command step has).
func (e *poolExecutor) SetStdin(r io.Reader) { e.stdin = r }

// Kill stops the step. Waiting, it leaves the line at once and Run returns
// with exit status 4. Running, the command (its process group) gets sig,
// SIGKILL after grace, and the slots are given back as soon as it has
// ended. Leaving the line and giving the slots back end at the stop
// deadline (package stopdeadline) even when the database does not answer.
// Kill may be called many times (each forwards sig again; SIGKILL brings
// the stop deadline closer) and before Run.
func (e *poolExecutor) Kill(sig os.Signal) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.signalLocked(e.stopLocked(sig))
	return nil
}

func (e *poolExecutor) signalLocked(s syscall.Signal) {
	switch {
	case e.target > 0:
		_ = syscall.Kill(-e.target, s)
	case e.target < 0:
		_ = syscall.Kill(-e.target, s)
	}
}

// errStopped and errWaitTimeout are why a wait for slots ended early.
var (
	errStopped     = errors.New("stopped")
	errWaitTimeout = errors.New("wait_timeout passed")
)

// Run waits for the slots, runs the command holding them and gives them
// back. A cancelled context (Dagu's step timeout) stops the step the way
// Kill does.
func (e *poolExecutor) Run(ctx context.Context) error { return e.record(e.run(ctx)) }

func (e *poolExecutor) run(ctx context.Context) error {
	defer context.AfterFunc(ctx, func() { e.Kill(syscall.SIGTERM) })()
	// Store calls must still work while stopping: the slots are given back
	// after the context is cancelled, until the stop deadline.
	storeCtx, cancelStore := e.stop.Context(ctx)
	defer cancelStore()

	if err := e.cfg.cmd.checkProgram(e.spec.Dir); err != nil {
		return usageError(err)
	}
	path, _ := ResolveDB(e.cfg.DB, specGetenv(e.spec))
	store, err := OpenBackend(resolvePath(e.spec.Dir, path), StoreOptions{})
	if err != nil {
		return storeError(err)
	}
	defer store.Close()

	grant, err := e.acquire(storeCtx, store)
	if err != nil {
		return err
	}
	if e.isStopped() { // stopped as the slots came: do not start
		how := "slots given back"
		if !e.release(storeCtx, store, grant) {
			how = "slots left to their lease"
		}
		return stoppedError(fmt.Errorf("stopped before the command started; pool %q: %s", e.cfg.Pool, how))
	}
	argv, cleanup, err := e.argv()
	if err != nil {
		e.release(storeCtx, store, grant)
		return usageError(err)
	}
	defer cleanup()

	beatCtx, stopBeat := context.WithCancel(storeCtx)
	beatDone := make(chan struct{})
	go func() { defer close(beatDone); e.heartbeat(beatCtx, store, grant) }()
	env := append(append(os.Environ(), e.spec.Env...), EnvPool+"="+e.cfg.Pool,
		EnvPoolSlots+"="+strconv.Itoa(grant.Slots), EnvPoolGrant+"="+strconv.FormatInt(grant.ID, 10))
	res := e.runCommand(argv, env)
	stopBeat() // an extend under way is cut short: the release follows
	<-beatDone
	e.release(storeCtx, store, grant)

	switch {
	case res.startErr != nil:
		return usageError(fmt.Errorf("start command: %w", res.startErr))
	case res.exitCode == 0:
		return nil
	}
	why := "command exited with status " + strconv.Itoa(res.exitCode)
	if res.signal != 0 {
		why = fmt.Sprintf("command killed by signal %d (%v): exit status %d", int(res.signal), res.signal, res.exitCode)
	}
	if res.stopped {
		why = "stopped: " + why
	}
	return &ExitError{Code: res.exitCode, Err: errors.New(why)}
}

// acquire waits for the slots, telling on stderr that it waits (once, then
// every waitNoticeEvery), and maps why a wait ended to an exit status.
func (e *poolExecutor) acquire(ctx context.Context, store PoolStore) (*queuestore.Grant, error) {
	waitCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		select {
		case <-e.stop.Stopped():
			cancel(errStopped)
		case <-stopWatch:
		}
	}()
	if e.cfg.WaitTimeout > 0 {
		var cancelTimeout context.CancelFunc
		waitCtx, cancelTimeout = context.WithTimeoutCause(waitCtx, e.cfg.WaitTimeout, errWaitTimeout)
		defer cancelTimeout()
	}
	started := time.Now()
	// The notices' reads end with the wait, even while the database does
	// not answer.
	noticesCtx, noticesDone := context.WithCancel(ctx)
	var notices sync.WaitGroup
	opts := queuestore.AcquireOptions{
		Pool: e.cfg.Pool, Slots: e.cfg.Slots, Priority: e.cfg.Priority, Lease: e.cfg.Lease,
		Holder: e.holder(),
		OnWait: func() {
			notices.Add(1)
			go func() { defer notices.Done(); e.waitNotices(noticesCtx, store) }()
		},
		LeaveContext: ctx, // a stopped wait leaves the line until the stop deadline
	}
	grant, err := store.Acquire(waitCtx, opts)
	noticesDone()
	notices.Wait()
	switch {
	case err == nil:
		if grant.Waited > 0 {
			fmt.Fprintf(e.stderr, "daguq: pool %q: got %d slot(s) after %s\n", e.cfg.Pool, grant.Slots, time.Since(started).Round(time.Millisecond))
		}
		return grant, nil
	case errors.Is(context.Cause(waitCtx), errStopped): // a statement the stop cut short fails with context.Canceled
		how := "left the line"
		if stopdeadline.Passed(ctx) {
			how = fmt.Sprintf("could not leave the line within %s of the stop (the database did not answer): its place lapses when its registration runs out, 15s after the last refresh", e.stop.Bound().Round(100*time.Millisecond))
		}
		return nil, stoppedError(fmt.Errorf("stopped while waiting for %d slot(s) of pool %q: %s; the command did not run", e.cfg.Slots, e.cfg.Pool, how))
	case errors.Is(err, errWaitTimeout):
		return nil, &ExitError{Code: ExitWaitTimeout, Err: fmt.Errorf("wait_timeout %s passed while waiting for %d slot(s) of pool %q: left the line; the command did not run", e.cfg.WaitTimeout, e.cfg.Slots, e.cfg.Pool)}
	case errors.Is(err, queuestore.ErrPoolNotFound):
		return nil, usageError(fmt.Errorf("pool %q is not set: create it with `daguq pool set %s CAPACITY`", e.cfg.Pool, e.cfg.Pool))
	case errors.Is(err, queuestore.ErrInvalid):
		// "slots 4 is more than the capacity 3 of pool ...": from the key on.
		msg := err.Error()
		if _, after, ok := strings.Cut(msg, queuestore.ErrInvalid.Error()+": "); ok {
			msg = after
		}
		return nil, usageError(errors.New(msg))
	}
	return nil, storeError(err)
}

// waitNoticeEvery is how often a waiting step says again that it waits.
var waitNoticeEvery = time.Minute

// waitNotices says on stderr that the step waits, and who holds the pool:
// at once, then every waitNoticeEvery until ctx ends.
func (e *poolExecutor) waitNotices(ctx context.Context, store PoolStore) {
	started := time.Now()
	tick := time.NewTicker(waitNoticeEvery)
	defer tick.Stop()
	for {
		p, err := store.Pool(ctx, e.cfg.Pool)
		if ctx.Err() != nil { // granted or stopped meanwhile: say nothing
			return
		}
		if err == nil {
			fmt.Fprintf(e.stderr, "daguq: pool %q: waiting for %d slot(s) %s\n", e.cfg.Pool, e.cfg.Slots, describeWait(p, time.Since(started)))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// describeWait: "of 3 (0 free) for 12s; held by etl/0193/load (2 slots,
// host:4711), ...; 3 in line".
func describeWait(p queuestore.PoolStatus, waited time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "of %d (%d free)", p.Capacity, p.Free())
	if waited >= time.Second {
		fmt.Fprintf(&b, " for %s", waited.Round(time.Second))
	}
	if len(p.Holders) > 0 {
		b.WriteString("; held by ")
		for i, h := range p.Holders {
			if i > 0 {
				b.WriteString(", ")
			}
			if i == 5 {
				fmt.Fprintf(&b, "%d more", len(p.Holders)-i)
				break
			}
			fmt.Fprintf(&b, "%s (%d slot(s), %s)", HolderName(h.Holder), h.Slots, hostPID(h.Holder))
		}
	}
	fmt.Fprintf(&b, "; %d in line", len(p.Waiters))
	return b.String()
}

// HolderName names who holds or waits: DAG/run/step, or what is known.
func HolderName(h queuestore.Holder) string {
	var parts []string
	for _, p := range []string{h.DAG, h.RunID, h.Step} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "/")
}

func hostPID(h queuestore.Holder) string {
	if h.Host == "" {
		return "pid " + strconv.Itoa(h.PID)
	}
	return h.Host + ":" + strconv.Itoa(h.PID)
}

// holder is this step as `daguq pool list` shows it: Dagu's DAG, run and
// step from the step's environment, this host and process.
func (e *poolExecutor) holder() queuestore.Holder {
	getenv := specGetenv(e.spec)
	h := queuestore.Holder{DAG: getenv(envDAGName), RunID: getenv(envDAGRunID), Step: getenv(envDAGStep), PID: os.Getpid()}
	if h.Step == "" {
		h.Step = e.spec.Name
	}
	h.Host, _ = os.Hostname()
	return h
}

// heartbeat extends the grant every lease/3 until ctx ends. A grant that
// is lost (its lease ran out before a heartbeat got through, or the pool was
// removed) is said once on stderr: the command runs on without its slots.
func (e *poolExecutor) heartbeat(ctx context.Context, store PoolStore, g *queuestore.Grant) {
	tick := time.NewTicker(max(e.cfg.Lease/3, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := store.ExtendGrant(ctx, g, e.cfg.Lease)
		switch {
		case err == nil:
		case ctx.Err() != nil: // the command ended meanwhile
		case errors.Is(err, queuestore.ErrLeaseLost):
			fmt.Fprintf(e.stderr, "daguq: pool %q: the %d slot(s) of this step were lost (the lease ran out before a heartbeat got through, or the pool was removed); the command runs on and the pool may be over its capacity until it ends\n", e.cfg.Pool, g.Slots)
			return
		default:
			fmt.Fprintf(e.stderr, "daguq: pool %q: heartbeat: %v (trying again)\n", e.cfg.Pool, err)
		}
	}
}

// release gives the slots back, and reports whether it did (or they were
// gone already); when it cannot, they return at the end of the lease.
func (e *poolExecutor) release(ctx context.Context, store PoolStore, g *queuestore.Grant) bool {
	err := store.ReleaseGrant(ctx, g)
	switch {
	case err == nil || errors.Is(err, queuestore.ErrLeaseLost):
		return true
	case stopdeadline.Passed(ctx):
		fmt.Fprintf(e.stderr, "daguq: pool %q: %d slot(s) could not be given back within %s of the stop (the database did not answer): they stay held until their lease runs out, at %s (lease %s)\n",
			e.cfg.Pool, g.Slots, e.stop.Bound().Round(100*time.Millisecond), g.ExpiresAt.Local().Format(time.TimeOnly), e.cfg.Lease)
	default:
		fmt.Fprintf(e.stderr, "daguq: pool %q: give back %d slot(s): %v; they return when the lease runs out (%s)\n",
			e.cfg.Pool, g.Slots, err, g.ExpiresAt.Local().Format(time.TimeOnly))
	}
	return false
}

// argv is the command: a list run as it is, a script file run by the shell,
// or a command line run with shell -c. cleanup removes the script file.
func (e *poolExecutor) argv() (argv []string, cleanup func(), err error) {
	c := &e.cfg.cmd
	switch {
	case c.runArgv != nil:
		return c.runArgv, func() {}, nil
	case c.Script != "":
		dir, err := os.MkdirTemp("", "daguq-pool-")
		if err != nil {
			return nil, nil, fmt.Errorf("script: temporary directory: %w", err)
		}
		file := dir + string(os.PathSeparator) + "command.sh"
		if err := os.WriteFile(file, []byte(c.Script), 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("script: write command file: %w", err)
		}
		return append(append([]string(nil), c.shellArgv...), file), func() { os.RemoveAll(dir) }, nil
	}
	return append(append([]string(nil), c.shellArgv...), "-c", c.runLine), func() {}, nil
}
