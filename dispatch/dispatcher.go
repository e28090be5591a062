package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/daguq/daguq/internal/stopdeadline"
	"github.com/daguq/daguq/queuestore"
)

// Store is what a dispatcher needs of the queue store.
type Store interface {
	Claim(ctx context.Context, opts queuestore.ClaimOptions) (*queuestore.Lease, error)
	Ack(ctx context.Context, lease *queuestore.Lease, ids ...int64) error
	Nack(ctx context.Context, lease *queuestore.Lease, opts queuestore.NackOptions) (queuestore.NackResult, error)
	Extend(ctx context.Context, lease *queuestore.Lease, d time.Duration, ids ...int64) error
	Release(ctx context.Context, lease *queuestore.Lease, ids ...int64) error
	LeaseByToken(ctx context.Context, token string) (*queuestore.Lease, error)
}

// Dagu is what a dispatcher needs of Dagu's API; *Client implements it.
type Dagu interface {
	Start(ctx context.Context, fileName string, req StartRequest, enqueue bool) error
	Run(ctx context.Context, name, id string) (Run, error)
	ActiveRuns(ctx context.Context, name string, since time.Time) ([]Run, error)
}

var (
	_ Store = (*queuestore.Store)(nil)
	_ Dagu  = (*Client)(nil)
)

// Options configure a Dispatcher. Zero durations mean the defaults.
type Options struct {
	Store Store
	Dagu  Dagu
	Rules []Rule
	// StatePath is the dispatcher's own file of batches handed to runs
	// (JSON), locked while it runs. Required.
	StatePath string
	// Namespace tells databases apart in run ids: the database's name.
	Namespace string
	// Poll is the pause between claims that found nothing. Default 250ms.
	Poll time.Duration
	// Watch is the pause between looks at the active runs. Default 2s.
	Watch time.Duration
	// RetryMin and RetryMax bound the backoff while Dagu cannot be reached
	// or refuses a start. Defaults 1s and 30s.
	RetryMin, RetryMax time.Duration
	// Consumer names the dispatcher in leases. Default "daguq-dispatch".
	Consumer string
	// Stderr gets one line per notable event. Default os.Stderr.
	Stderr io.Writer
}

// Counts are a dispatcher's totals since it started.
type Counts struct {
	Runs      int64 `json:"runs"`      // runs started (or found started after a restart)
	Succeeded int64 `json:"succeeded"` // runs that ended succeeded
	Failed    int64 `json:"failed"`    // runs that ended failed, aborted or rejected
	Acked     int64 `json:"acked"`     // messages acked by the dispatcher
	Retried   int64 `json:"retried"`   // messages nacked and to be retried
	Dead      int64 `json:"dead"`      // messages nacked into the dead letters
	Lost      int64 `json:"lost"`      // messages finished by the run itself, or taken over
	Released  int64 `json:"released"`  // messages given back unstarted (stop, refused start)
	// Unfinished counts messages a stop could not give back by its
	// deadline (the database did not answer): they stay leased until their
	// lease runs out.
	Unfinished int64 `json:"unfinished"`
}

// BatchInfo describes a batch in flight, for a dashboard.
type BatchInfo struct {
	Queue   string    `json:"queue"`
	DAG     string    `json:"dag"`
	DAGName string    `json:"dag_name"` // the DAG's name in Dagu's run history
	RunID   string    `json:"run_id"`
	Token   string    `json:"token"`
	Count   int       `json:"count"`
	Phase   string    `json:"phase"`
	Status  int       `json:"status"` // Dagu's last known run status
	Since   time.Time `json:"since"`  // when the batch was handed to its run; zero while filling
}

// stopGrace stands for the grace of a queue step's handlers, which a
// dispatcher has none of: its stop gives the releases of the batches no run
// was asked for until 4.5 s after it (stopGrace + stopdeadline.Margin), the
// bound of a queue step with the default grace.
const stopGrace = 3 * time.Second

// StopBound is how long after its stop a dispatcher gives the database.
const StopBound = stopGrace + stopdeadline.Margin

// Dispatcher runs the rules. Create it with New, then call Run once.
type Dispatcher struct {
	opts  Options
	rules []*ruleRun
	state *stateFile
	stop  *stopdeadline.Deadline // started when Run's context ends

	runs, succeeded, failed, acked, retried, dead, lost, released, unfinished atomic.Int64

	mu       sync.Mutex
	inFlight map[string]BatchInfo
}

// New checks the options and the rules.
func New(opts Options) (*Dispatcher, error) {
	if opts.Store == nil || opts.Dagu == nil {
		panic("dispatch: New needs a Store and a Dagu")
	}
	if opts.StatePath == "" {
		return nil, errors.New("dispatch: a state file path is required")
	}
	if len(opts.Rules) == 0 {
		return nil, errors.New("dispatch: no rules")
	}
	if opts.Poll == 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.Watch == 0 {
		opts.Watch = 2 * time.Second
	}
	if opts.RetryMin == 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = 30 * time.Second
	}
	if opts.Consumer == "" {
		opts.Consumer = "daguq-dispatch"
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Poll < time.Millisecond || opts.Watch < time.Millisecond || opts.RetryMin < time.Millisecond || opts.RetryMax < opts.RetryMin {
		return nil, fmt.Errorf("dispatch: poll (%s), watch (%s) and retry_min (%s) must be at least 1ms, retry_max (%s) at least retry_min",
			opts.Poll, opts.Watch, opts.RetryMin, opts.RetryMax)
	}
	d := &Dispatcher{opts: opts, inFlight: map[string]BatchInfo{}, stop: stopdeadline.New(stopGrace)}
	var errs []error
	seen := map[string]bool{}
	for _, r := range opts.Rules {
		r = r.withDefaults()
		if err := r.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		key := r.Queue + "\x00" + r.DAGName
		if seen[key] {
			errs = append(errs, fmt.Errorf("rule %s -> %s: given twice", r.Queue, r.DAG))
		}
		seen[key] = true
		d.rules = append(d.rules, &ruleRun{d: d, rule: r, backoff: queuestore.ExponentialBackoff(r.BackoffBase, r.BackoffMax)})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// Counts returns the totals so far.
func (d *Dispatcher) Counts() Counts {
	return Counts{Runs: d.runs.Load(), Succeeded: d.succeeded.Load(), Failed: d.failed.Load(), Acked: d.acked.Load(),
		Retried: d.retried.Load(), Dead: d.dead.Load(), Lost: d.lost.Load(), Released: d.released.Load(),
		Unfinished: d.unfinished.Load()}
}

// InFlight lists the batches the dispatcher holds, by run id.
func (d *Dispatcher) InFlight() []BatchInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]BatchInfo, 0, len(d.inFlight))
	for _, b := range d.inFlight {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RunID < out[j].RunID })
	return out
}

// Rules are the rules with their defaults filled.
func (d *Dispatcher) Rules() []Rule {
	out := make([]Rule, len(d.rules))
	for i, r := range d.rules {
		out[i] = r.rule
	}
	return out
}

func (d *Dispatcher) logf(format string, args ...any) {
	fmt.Fprintf(d.opts.Stderr, "daguq dispatch: "+format+"\n", args...)
}

// RunID is the Dagu run id of a batch: "daguq-", 8 hex digits of the
// namespace and queue, and the lease id (unique per database): at most
// 34 characters of [-a-zA-Z0-9_].
func RunID(namespace, queue string, leaseID int64) string {
	h := sha256.Sum256([]byte(namespace + "\x00" + queue))
	return "daguq-" + hex.EncodeToString(h[:4]) + "-" + strconv.FormatInt(leaseID, 10)
}

// Run dispatches until ctx is cancelled. On return, batches whose run was
// never asked for are released, until 4.5 s after ctx ended: what the
// database did not take by then stays leased until the lease runs out.
// Batches handed to a run stay leased and recorded in the state file, and
// the next Run picks them up (a lease that runs out meanwhile makes its
// messages ready again: at least once).
func (d *Dispatcher) Run(ctx context.Context) error {
	stopAfter := context.AfterFunc(ctx, func() { d.stop.Stop() })
	defer stopAfter()
	lock, err := lockFile(d.opts.StatePath)
	if err != nil {
		return err
	}
	defer lock.Close()
	if d.state, err = openState(d.opts.StatePath); err != nil {
		return err
	}
	d.restore(ctx)
	var wg sync.WaitGroup
	for _, r := range d.rules {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// restore takes back the batches of the state file whose lease still holds
// messages; their runs are looked up before anything is started again.
func (d *Dispatcher) restore(ctx context.Context) {
	for _, rec := range d.state.all() {
		var rr *ruleRun
		for _, r := range d.rules {
			if r.rule.Queue == rec.Queue && r.rule.DAGName == rec.DAGName {
				rr = r
			}
		}
		lease, err := d.opts.Store.LeaseByToken(ctx, rec.Token)
		if errors.Is(err, queuestore.ErrLeaseLost) {
			d.logf("run %s: its batch was finished or taken over while the dispatcher was away; forgotten", rec.RunID)
			d.state.remove(rec.RunID)
			continue
		}
		if err != nil {
			// The database is busy or gone: keep the record for the next start.
			d.logf("run %s: look up lease %s: %v", rec.RunID, rec.Token, err)
			continue
		}
		if rr == nil {
			// The rule is gone: the batch stays leased until it expires.
			d.logf("run %s: no rule for queue %q and dag %q any more; its lease %s runs out at %s",
				rec.RunID, rec.Queue, rec.DAGName, rec.Token, lease.ExpiresAt.Format(time.RFC3339))
			continue
		}
		b := rr.newBatch(lease, time.Now())
		b.runID, b.recorded, b.startSent, b.phase = rec.RunID, true, true, phaseStarting
		b.since = rec.RecordedAt
		b.extendAt = time.Time{} // at once: the lease may be about to run out
		rr.batches = append(rr.batches, b)
		d.track(b)
		d.logf("run %s: resumed (lease %s, %d messages still held); looking it up", rec.RunID, rec.Token, len(b.held))
	}
}

func (d *Dispatcher) track(b *batch) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight[b.lease.Token] = BatchInfo{Queue: b.r.rule.Queue, DAG: b.r.rule.DAG, DAGName: b.r.rule.DAGName, RunID: b.runID,
		Token: b.lease.Token, Count: len(b.held), Phase: phaseNames[b.phase], Status: b.status, Since: b.since}
}

func (d *Dispatcher) untrack(b *batch) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inFlight, b.lease.Token)
}

// Phases of a batch.
const (
	phaseFilling   = iota // claimed, lingering for more messages (max_wait)
	phaseStarting         // recorded; its run is being started (or looked up)
	phaseRunning          // its run is active in Dagu
	phaseFinishing        // its run ended; ack or nack pending
)

var phaseNames = [...]string{"filling", "starting", "running", "finishing"}

type batch struct {
	r     *ruleRun
	lease *queuestore.Lease
	held  map[int64]int // message id -> attempt, of the messages the lease still holds
	runID string
	phase int

	fillUntil time.Time
	recorded  bool // in the state file
	startSent bool // a start was sent (or may have been): look the run up first
	tries     int  // failed start or lookup attempts in a row
	nextTry   time.Time
	extendAt  time.Time
	since     time.Time // when recorded: the list call's fromDate
	status    int       // Dagu's last known status
	success   bool      // phaseFinishing: ack (true) or nack
	reason    string    // phaseFinishing: the nack error
}

type ruleRun struct {
	d       *Dispatcher
	rule    Rule
	backoff func(attempt int) time.Duration
	batches []*batch

	claimPausedUntil time.Time
	nextWatch        time.Time
	down             bool // Dagu unreachable: said so once
	unfinished       int  // messages a stop could not give back by its deadline
}

func (r *ruleRun) newBatch(lease *queuestore.Lease, now time.Time) *batch {
	b := &batch{r: r, lease: lease, held: map[int64]int{}, extendAt: now.Add(r.rule.Lease / 3), since: now}
	for _, m := range lease.Messages {
		b.held[m.ID] = m.Attempt
	}
	return b
}

func (r *ruleRun) loop(ctx context.Context) {
	t := time.NewTicker(r.d.opts.Poll)
	defer t.Stop()
	for {
		r.tick(ctx)
		select {
		case <-ctx.Done():
			r.stop()
			return
		case <-t.C:
		}
	}
}

func (r *ruleRun) tick(ctx context.Context) {
	now := time.Now()
	for _, b := range r.batches {
		if ctx.Err() != nil {
			return
		}
		if !now.Before(b.extendAt) && len(b.held) > 0 {
			r.extend(ctx, b)
		}
		switch b.phase {
		case phaseFilling:
			r.fill(ctx, b, now)
		case phaseStarting:
			if !now.Before(b.nextTry) {
				r.start(ctx, b)
			}
		}
	}
	if !now.Before(r.nextWatch) {
		r.watch(ctx)
		r.nextWatch = time.Now().Add(r.d.opts.Watch)
	}
	kept := r.batches[:0]
	for _, b := range r.batches {
		if b.phase == phaseFinishing && r.finish(ctx, b) {
			continue
		}
		kept = append(kept, b)
	}
	clear(r.batches[len(kept):])
	r.batches = kept
	r.claim(ctx, now)
}

// claim takes new batches while the rule has room and Dagu answers.
func (r *ruleRun) claim(ctx context.Context, now time.Time) {
	if now.Before(r.claimPausedUntil) {
		return
	}
	for len(r.batches) < r.rule.Concurrency && ctx.Err() == nil && !r.waitingForDagu() {
		lease, err := r.d.opts.Store.Claim(ctx, r.claimOptions(r.rule.BatchSize, nil))
		if err != nil {
			if ctx.Err() == nil {
				r.d.logf("claim from %q: %v", r.rule.Queue, err)
				r.claimPausedUntil = now.Add(r.d.opts.RetryMin)
			}
			return
		}
		if lease == nil {
			return
		}
		b := r.newBatch(lease, now)
		b.fillUntil = now.Add(r.rule.MaxWait)
		r.batches = append(r.batches, b)
		r.fill(ctx, b, now)
	}
}

// waitingForDagu reports a batch whose start Dagu did not answer: claim
// nothing more until it does.
func (r *ruleRun) waitingForDagu() bool {
	for _, b := range r.batches {
		if b.phase == phaseStarting && b.tries > 0 {
			return true
		}
	}
	return false
}

func (r *ruleRun) claimOptions(max int, into *queuestore.Lease) queuestore.ClaimOptions {
	return queuestore.ClaimOptions{Queue: r.rule.Queue, Max: max, MaxBytes: r.rule.MaxBytes, Lease: r.rule.Lease,
		OneGroup: r.rule.GroupBy, MinPriority: r.rule.MinPriority, MaxPriority: r.rule.MaxPriority,
		Consumer: r.d.opts.Consumer, Into: into}
}

// fill lingers for more messages until the batch is full or max_wait
// passed, then records the batch and starts its run.
func (r *ruleRun) fill(ctx context.Context, b *batch, now time.Time) {
	full := len(b.lease.Messages) >= r.rule.BatchSize || b.lease.BytesFull
	if !full && r.rule.MaxWait > 0 {
		more, err := r.d.opts.Store.Claim(ctx, r.claimOptions(r.rule.BatchSize-len(b.lease.Messages), b.lease))
		switch {
		case errors.Is(err, queuestore.ErrLeaseLost):
			// The lease ran out before it filled: its messages are
			// ready again for anyone.
			r.d.logf("batch of %q: lease %s lost while lingering; dropped", r.rule.Queue, b.lease.Token)
			b.held = nil
			b.phase, b.success = phaseFinishing, true
			return
		case err != nil:
			if ctx.Err() == nil {
				r.d.logf("claim more into lease %s of %q: %v", b.lease.Token, r.rule.Queue, err)
			}
		case more != nil:
			for _, m := range more.Messages {
				if _, ok := b.held[m.ID]; !ok {
					b.lease.Messages = append(b.lease.Messages, m)
					b.held[m.ID] = m.Attempt
				}
			}
			b.lease.BytesFull = more.BytesFull
			b.lease.ExpiresAt = more.ExpiresAt
		}
		full = len(b.lease.Messages) >= r.rule.BatchSize || b.lease.BytesFull
		if !full && now.Before(b.fillUntil) {
			return
		}
	}
	b.runID = RunID(r.d.opts.Namespace, r.rule.Queue, b.lease.ID)
	b.since = time.Now()
	err := r.d.state.put(record{Queue: r.rule.Queue, DAG: r.rule.DAG, DAGName: r.rule.DAGName, Token: b.lease.Token,
		RunID: b.runID, Count: len(b.held), RecordedAt: b.since})
	if err != nil {
		// Without the record a restart could not find the run: no start.
		r.d.logf("run %s: %v; the batch is given back", b.runID, err)
		r.release(b)
		b.phase, b.held = phaseFinishing, nil
		r.claimPausedUntil = time.Now().Add(r.d.opts.RetryMax)
		return
	}
	b.recorded, b.phase = true, phaseStarting
	r.d.track(b)
	r.start(ctx, b)
}

// start looks the run up when a start may have been sent before, and
// starts it when Dagu has no run with its id.
func (r *ruleRun) start(ctx context.Context, b *batch) {
	if b.startSent {
		run, err := r.d.opts.Dagu.Run(ctx, r.rule.DAGName, b.runID)
		switch {
		case err == nil:
			r.reachable()
			r.running(b, run)
			return
		case !errors.Is(err, ErrRunNotFound):
			r.retryLater(ctx, b, err)
			return
		}
	}
	if len(b.held) == 0 {
		// Everything the batch held was finished elsewhere: no run needed.
		b.phase, b.success = phaseFinishing, true
		return
	}
	b.startSent = true
	req := StartRequest{DAGRunID: b.runID, Params: Params(r.rule.Queue, b.lease.Token, b.runID, len(b.held))}
	err := r.d.opts.Dagu.Start(ctx, r.rule.DAG, req, r.rule.Enqueue)
	switch {
	case err == nil:
		r.reachable()
		r.d.runs.Add(1)
		r.d.logf("run %s of %s started for %d messages of %q", b.runID, r.rule.DAG, len(b.held), r.rule.Queue)
		r.running(b, Run{DAGRunID: b.runID, Status: StatusQueued})
	case errors.Is(err, ErrRunExists):
		// Started before (a lost answer, or a restart): follow it.
		r.reachable()
		r.d.logf("run %s of %s exists already; following it, not starting it again", b.runID, r.rule.DAG)
		b.phase, b.tries = phaseRunning, 0
	case errors.Is(err, ErrRefused):
		r.d.logf("run %s: %v; the batch is given back, the rule pauses %s", b.runID, err, r.d.opts.RetryMax)
		r.release(b)
		b.phase, b.held = phaseFinishing, nil
		r.claimPausedUntil = time.Now().Add(r.d.opts.RetryMax)
	default:
		r.retryLater(ctx, b, err)
	}
}

// Params are the parameters of a dispatched run, in Dagu's KEY=value form:
// the queue, the lease token, the batch (run) id and the message count.
// Message bodies never travel here.
func Params(queue, token, batchID string, count int) string {
	return fmt.Sprintf("DAGUQ_QUEUE=%s DAGUQ_TOKEN=%s DAGUQ_BATCH_ID=%s DAGUQ_COUNT=%d", queue, token, batchID, count)
}

func (r *ruleRun) running(b *batch, run Run) {
	b.tries, b.status = 0, run.Status
	if run.Active() {
		b.phase = phaseRunning
		r.d.track(b)
		return
	}
	r.ended(b, run)
}

// ended decides a batch whose run reached a final status.
func (r *ruleRun) ended(b *batch, run Run) {
	b.status, b.phase = run.Status, phaseFinishing
	b.success = run.Succeeded()
	label := run.StatusLabel
	if label == "" {
		label = strconv.Itoa(run.Status)
	}
	if b.success {
		r.d.succeeded.Add(1)
	} else {
		r.d.failed.Add(1)
		b.reason = fmt.Sprintf("dagu run %s/%s ended %s", r.rule.DAGName, b.runID, label)
	}
}

func (r *ruleRun) retryLater(ctx context.Context, b *batch, err error) {
	if ctx.Err() != nil {
		return
	}
	b.tries++
	d := r.d.opts.RetryMin << min(b.tries-1, 16)
	d = min(d, r.d.opts.RetryMax)
	b.nextTry = time.Now().Add(d)
	r.unreachable(err, d)
}

func (r *ruleRun) unreachable(err error, wait time.Duration) {
	if !r.down {
		r.d.logf("Dagu at %v, for %q: %v; trying again in %s, leases kept (said once until it answers)",
			describeDagu(r.d.opts.Dagu), r.rule.DAG, err, wait)
	}
	r.down = true
}

func (r *ruleRun) reachable() {
	if r.down {
		r.d.logf("Dagu answers again for %q", r.rule.DAG)
	}
	r.down = false
}

func describeDagu(d Dagu) string {
	if s, ok := d.(fmt.Stringer); ok {
		return s.String()
	}
	return "the API"
}

// watch learns which runs ended: one list call for the rule's active runs,
// then a lookup of each of its runs missing from the list. When the list
// call fails, every run is looked up.
func (r *ruleRun) watch(ctx context.Context) {
	var watched []*batch
	since := time.Now()
	for _, b := range r.batches {
		if b.phase == phaseRunning {
			watched = append(watched, b)
			if b.since.Before(since) {
				since = b.since
			}
		}
	}
	if len(watched) == 0 {
		return
	}
	active := map[string]Run{}
	listed := false
	// A minute of margin for clocks that differ.
	if runs, err := r.d.opts.Dagu.ActiveRuns(ctx, r.rule.DAGName, since.Add(-time.Minute)); err == nil {
		r.reachable()
		listed = true
		for _, run := range runs {
			active[run.DAGRunID] = run
		}
	}
	for _, b := range watched {
		if ctx.Err() != nil {
			return
		}
		if run, ok := active[b.runID]; ok && listed {
			b.status = run.Status
			r.d.track(b)
			continue
		}
		run, err := r.d.opts.Dagu.Run(ctx, r.rule.DAGName, b.runID)
		switch {
		case errors.Is(err, ErrRunNotFound):
			// Gone (deleted, expired) or never created: start it again.
			r.d.logf("run %s: not found in Dagu; starting it again", b.runID)
			b.phase = phaseStarting
		case err != nil:
			r.unreachable(err, r.d.opts.Watch)
			return
		default:
			r.reachable()
			r.running(b, run)
		}
	}
}

// extend keeps the lease of a batch alive and learns which messages the
// run finished itself.
func (r *ruleRun) extend(ctx context.Context, b *batch) {
	err := r.d.opts.Store.Extend(ctx, b.lease, r.rule.Lease, heldIDs(b)...)
	var lost *queuestore.LostError
	switch {
	case err == nil:
	case errors.As(err, &lost):
		for _, id := range lost.IDs {
			delete(b.held, id)
		}
	default:
		if ctx.Err() == nil {
			r.d.logf("extend lease %s of run %s: %v", b.lease.Token, b.runID, err)
		}
		b.extendAt = time.Now().Add(r.d.opts.RetryMin)
		return
	}
	b.extendAt = time.Now().Add(r.rule.Lease / 3)
}

func heldIDs(b *batch) []int64 {
	ids := make([]int64, 0, len(b.held))
	for id := range b.held {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// finish acks or nacks what the lease still holds and forgets the batch.
// It reports false when the store failed; the next tick tries again.
func (r *ruleRun) finish(ctx context.Context, b *batch) bool {
	store := r.d.opts.Store
	ids := heldIDs(b)
	var lost *queuestore.LostError
	if len(ids) > 0 && b.success {
		err := store.Ack(ctx, b.lease, ids...)
		n := int64(len(ids))
		if errors.As(err, &lost) {
			n -= int64(len(lost.IDs))
			r.d.lost.Add(int64(len(lost.IDs)))
		} else if err != nil {
			r.d.logf("ack run %s: %v", b.runID, err)
			return false
		}
		r.d.acked.Add(n)
	}
	if len(ids) > 0 && !b.success {
		byAttempt := map[int][]int64{}
		for _, id := range ids {
			byAttempt[b.held[id]] = append(byAttempt[b.held[id]], id)
		}
		for attempt, group := range byAttempt {
			res, err := store.Nack(ctx, b.lease, queuestore.NackOptions{IDs: group, Error: b.reason,
				Delay: max(r.backoff(attempt), time.Millisecond), MaxAttempts: r.rule.MaxAttempts})
			if errors.As(err, &lost) {
				r.d.lost.Add(int64(len(lost.IDs)))
			} else if err != nil {
				r.d.logf("nack run %s: %v", b.runID, err)
				return false
			}
			for _, id := range append(res.Retried, res.Dead...) {
				delete(b.held, id)
			}
			r.d.retried.Add(int64(len(res.Retried)))
			r.d.dead.Add(int64(len(res.Dead)))
		}
		if b.runID != "" {
			r.d.logf("run %s: %s; %d messages nacked", b.runID, b.reason, len(ids))
		}
	}
	if b.recorded {
		if err := r.d.state.remove(b.runID); err != nil {
			r.d.logf("run %s: %v", b.runID, err)
			return false
		}
	}
	r.d.untrack(b)
	return true
}

// release gives a batch back unstarted, its attempt not spent. While
// stopping it gives up at the stop deadline, leaving the batch to its
// lease.
func (r *ruleRun) release(b *batch) {
	ids := heldIDs(b)
	if len(ids) == 0 {
		return
	}
	ctx, cancel := r.d.stop.Context(context.Background())
	defer cancel()
	err := r.d.opts.Store.Release(ctx, b.lease, ids...)
	var lost *queuestore.LostError
	switch {
	case err == nil || errors.As(err, &lost):
	case stopdeadline.Passed(ctx):
		r.unfinished += len(ids)
		r.d.unfinished.Add(int64(len(ids)))
		return
	default:
		r.d.logf("release lease %s: %v", b.lease.Token, err)
		return
	}
	n := int64(len(ids))
	if lost != nil {
		n -= int64(len(lost.IDs))
	}
	r.d.released.Add(n)
	if b.recorded {
		r.d.state.remove(b.runID)
		b.recorded = false
	}
}

// stop gives back the batches no run was asked for, until the stop
// deadline; the others stay recorded and leased for the next start.
func (r *ruleRun) stop() {
	for _, b := range r.batches {
		if b.phase == phaseFilling || (b.phase == phaseStarting && !b.startSent) {
			r.release(b)
		}
		r.d.untrack(b)
	}
	r.batches = nil
	if r.unfinished > 0 {
		r.d.logf("queue %q: %d messages could not be released within %s of the stop (the database did not answer): they stay leased until their lease (%s) runs out, then are delivered again",
			r.rule.Queue, r.unfinished, r.d.stop.Bound().Round(100*time.Millisecond), r.rule.Lease)
	}
}
