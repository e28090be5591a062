package executor

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/daguq/daguq/internal/proctree"
	"github.com/daguq/daguq/queuestore"
)

// queueExecutor is the `queue` step: consume, claim, ack or nack.
type queueExecutor struct {
	spec   Spec
	cfg    queueConfig
	stdout io.Writer
	stderr io.Writer
	// progress, when set, is told the messages consume finished, instead
	// of progress lines on stderr.
	progress Progress

	stopState
	lastSig syscall.Signal          // the signal of the latest Kill
	trees   map[*proctree.Tree]bool // running handlers

	exitStatus
}

var _ Executor = (*queueExecutor)(nil)

func newQueueExecutor(spec Spec, cfg queueConfig) *queueExecutor {
	return &queueExecutor{spec: spec, cfg: cfg, stdout: io.Discard, stderr: io.Discard,
		stopState: newStopState(cfg.Grace), trees: map[*proctree.Tree]bool{}}
}

func (e *queueExecutor) SetStdout(w io.Writer) { e.stdout = w }
func (e *queueExecutor) SetStderr(w io.Writer) { e.stderr = w }

// Kill stops the step: it claims no more, sends sig to every running
// handler's process tree (SIGKILL follows after grace), and gives the
// leases of unfinished batches back. Run returns soon after, by the stop
// deadline (package stopdeadline) even when the database does not answer.
// Kill may be called many times (each call forwards sig again; SIGKILL ends
// every handler tree at once and brings the stop deadline closer) and
// before Run.
func (e *queueExecutor) Kill(sig os.Signal) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stopLocked(sig)
	e.lastSig = s
	for t := range e.trees {
		t.Signal(s)
	}
	return nil
}

// addTree registers a running handler; when the step is already stopping
// the tree gets the latest signal of Kill at once.
func (e *queueExecutor) addTree(t *proctree.Tree) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.trees[t] = true
	if e.stop.IsStopped() {
		t.Signal(e.lastSig)
	}
}

func (e *queueExecutor) removeTree(t *proctree.Tree) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.trees, t)
}

// Run runs the configured action. A cancelled context (Dagu's step
// timeout) stops the step the way Kill does.
func (e *queueExecutor) Run(ctx context.Context) error { return e.record(e.run(ctx)) }

func (e *queueExecutor) run(ctx context.Context) error {
	defer context.AfterFunc(ctx, func() { e.Kill(syscall.SIGTERM) })()
	// Store calls must still work while stopping: leases are released after
	// the context is cancelled, until the stop deadline.
	storeCtx, cancelStore := e.stop.Context(ctx)
	defer cancelStore()

	if e.cfg.Action == ActionConsume {
		if err := e.cfg.checkProgram(e.spec.Dir); err != nil {
			return usageError(err)
		}
	}
	// One writer for the store's notices, the consumer and its handlers.
	e.stderr = &lockedWriter{w: e.stderr}
	path, _ := ResolveDB(e.cfg.DB, specGetenv(e.spec))
	store, err := OpenStore(resolvePath(e.spec.Dir, path), StoreOptions{Backoff: e.cfg.backoffFunc(), LockWaitNotice: e.stderr})
	if err != nil {
		return storeError(err)
	}
	defer store.Close()

	switch e.cfg.Action {
	case ActionClaim:
		return e.runClaim(storeCtx, store)
	case ActionAck, ActionNack:
		return e.runFinish(storeCtx, store)
	case ActionGet:
		return e.runGet(storeCtx, store)
	}
	return newConsumer(e, store).run(storeCtx)
}

// backoffFunc is the retry delay policy the store applies at nack.
func (c *queueConfig) backoffFunc() func(int) time.Duration {
	switch {
	case c.fixedDelay < 0:
		return func(int) time.Duration { return 0 }
	case c.fixedDelay > 0:
		d := c.fixedDelay
		return func(int) time.Duration { return d }
	}
	return queuestore.ExponentialBackoff(c.BackoffBase, c.BackoffMax)
}

// claimOptions are the claim settings shared by consume and claim.
func (e *queueExecutor) claimOptions(max int) queuestore.ClaimOptions {
	return queuestore.ClaimOptions{
		Queue:       e.cfg.Queue,
		Max:         max,
		Lease:       e.cfg.Lease,
		MinPriority: e.cfg.MinPriority,
		MaxPriority: e.cfg.MaxPriority,
		Group:       e.cfg.Group,
		OneGroup:    e.cfg.GroupBy,
		Consumer:    e.consumerName(),
		ClaimedBy:   dagRun(specGetenv(e.spec)),
		Aging:       e.cfg.Aging,
	}
}

func (e *queueExecutor) consumerName() string {
	if e.cfg.Consumer != "" {
		return e.cfg.Consumer
	}
	name := e.spec.Name
	if name == "" {
		name = "daguq"
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s:%d", name, host, os.Getpid())
}

// skippedReason tells why nothing could be claimed: "paused", "limit"
// (the queue's in-flight limit is reached) or "empty".
func skippedReason(ctx context.Context, store Store, queue string) string {
	st, err := store.Stats(ctx, queue)
	switch {
	case err != nil:
		return "empty"
	case st.Paused:
		return "paused"
	case st.InFlightLimit > 0 && st.Leases >= st.InFlightLimit && st.Ready > 0:
		return "limit"
	}
	return "empty"
}
