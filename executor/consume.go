package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/daguq/daguq/batching"
	"github.com/daguq/daguq/internal/stopdeadline"
	"github.com/daguq/daguq/queuestore"
)

// ConsumeSummary is what a consume step prints on stdout.
type ConsumeSummary struct {
	Queue    string `json:"queue"`
	Batches  int    `json:"batches"`  // handler runs
	Messages int    `json:"messages"` // messages handed to handlers
	Acked    int    `json:"acked"`
	Retried  int    `json:"retried"`  // nacked, to be delivered again after backoff
	Dead     int    `json:"dead"`     // nacked with no attempt left: in the dead letters
	Released int    `json:"released"` // given back unhandled on stop: ready again, attempt not spent
	Lost     int    `json:"lost"`     // lease expired and taken by another claim before finishing
	// Unfinished counts messages a stopping step could not ack, nack or
	// release by the stop deadline (the database did not answer): they
	// stay leased, and are delivered again after their lease.
	Unfinished int `json:"unfinished,omitempty"`
	// SkippedReason is "empty", "paused" or "limit" when no batch ran.
	SkippedReason string `json:"skipped_reason,omitempty"`
	Stopped       bool   `json:"stopped,omitempty"` // ended by Kill or a cancelled context
	Duration      string `json:"duration"`
}

// claimed is one leased message of a batch.
type claimed struct {
	msg   queuestore.Message
	lease *queuestore.Lease // the batch's lease: its ID, Token and Queue only
	at    time.Time         // when it was claimed: the start of its linger
}

// leaseState is one batch's lease as the consumer tracks it. A batch is
// exactly one lease (claims that fill a lingering batch add to it), so a
// queue's in-flight limit counts handler runs.
type leaseState struct {
	lease     *queuestore.Lease // ID, Token and Queue; never changed after the claim
	ids       []int64           // every message claimed into it
	open      int               // messages not yet finished
	finishing bool              // the handler ended: the heartbeat leaves it alone
	lost      map[int64]bool    // taken over by another claim, as the heartbeat saw
}

// batchLease is a private Lease value over ids of st, for one store call:
// the store may set its ExpiresAt, and nothing else reads it.
func batchLease(st *leaseState, ids []int64) *queuestore.Lease {
	l := &queuestore.Lease{ID: st.lease.ID, Token: st.lease.Token, Queue: st.lease.Queue,
		ExpiresAt: st.lease.ExpiresAt, Messages: make([]queuestore.Message, len(ids))}
	for i, id := range ids {
		l.Messages[i].ID = id
	}
	return l
}

// consumer runs the consume action: one claiming loop feeding up to
// concurrency handler processes.
type consumer struct {
	e       *queueExecutor
	cfg     *queueConfig
	store   Store
	stderr  io.Writer // shared by handlers: writes are serialised
	policy  batching.Policy
	tmpDir  string
	cleanup func() // removes tmpDir
	script  string // handler script file, for `script`
	runs    *handlerRuns

	leased   chan struct{}  // one token per batch leased: assembling, waiting or running
	handover chan *handover // a finished batch's ack, slot and leased token, for the next claim
	slots    chan struct{}  // one token per running batch
	finished chan struct{}  // a handler finished
	halt     chan struct{}  // closed on a fatal store error
	wg       sync.WaitGroup
	// outcomes is held shared by the acks and nacks under way (a handler's
	// finished work) and taken by each release: a release waits for them,
	// so that while stopping the acks go first and get the time there is.
	outcomes sync.RWMutex

	mu        sync.Mutex
	leases    map[int64]*leaseState
	pending   []claimed // the batch being assembled: messages of one lease
	bytesFull bool      // its last claim stopped at max_bytes
	sum       ConsumeSummary
	fatal     error
	busy      int
	claimed   int // messages claimed so far
	lastClaim time.Time
	seq       int
	handed    map[int64]bool // leases whose batch handed its slot and leased token to the loop
	nextAck   *handover      // handed over, for the next claim; the loop's alone
}

func newConsumer(e *queueExecutor, store Store) *consumer {
	c := &consumer{
		e:        e,
		cfg:      &e.cfg,
		store:    store,
		stderr:   e.stderr, // a lockedWriter (queueExecutor.run)
		leased:   make(chan struct{}, e.cfg.Concurrency+1),
		handover: make(chan *handover),
		handed:   map[int64]bool{},
		slots:    make(chan struct{}, e.cfg.Concurrency),
		finished: make(chan struct{}, e.cfg.Concurrency),
		halt:     make(chan struct{}),
		leases:   map[int64]*leaseState{},
		sum:      ConsumeSummary{Queue: e.cfg.Queue},
	}
	c.policy = batching.Policy{
		MaxSize:    e.cfg.BatchSize,
		MaxBytes:   e.cfg.MaxBytes,
		MaxWait:    e.cfg.MaxWait,
		GroupByKey: e.cfg.GroupBy,
	}
	if err := c.policy.Validate(); err != nil {
		panic(fmt.Sprintf("executor: batching policy out of the validated range: %v", err))
	}
	return c
}

func (c *consumer) run(ctx context.Context) error {
	start := time.Now()
	c.lastClaim = start
	if !c.e.isStopped() {
		if err := c.prepare(); err != nil {
			return usageError(err)
		}
		defer c.cleanup()

		stopTickers := make(chan struct{})
		var tickers sync.WaitGroup
		tickers.Add(2)
		go func() { defer tickers.Done(); c.heartbeat(ctx, stopTickers) }()
		go func() { defer tickers.Done(); c.progress(start, stopTickers) }()

		c.loop(ctx)
		if held := c.takePending(); len(held) > 0 {
			c.finish(ctx, held, finishRelease, "", nil)
		}
		c.wg.Wait()
		close(stopTickers)
		tickers.Wait()
	}

	c.mu.Lock()
	sum := c.sum
	fatal := c.fatal
	c.mu.Unlock()
	stopped := c.e.isStopped()
	sum.Stopped = stopped
	if sum.Unfinished > 0 {
		fmt.Fprintf(c.stderr, "daguq: queue %s: %d messages could not be acked, nacked or released within %s of the stop (the database was unreachable or busy): they stay leased until their lease (%s) runs out, then are delivered again\n",
			c.cfg.Queue, sum.Unfinished, c.e.stop.Bound().Round(100*time.Millisecond), c.cfg.Lease)
	}
	sum.Duration = time.Since(start).Round(time.Millisecond).String()
	if sum.Batches == 0 && !stopped && fatal == nil {
		sum.SkippedReason = skippedReason(ctx, c.store, c.cfg.Queue)
	}
	werr := writeJSON(c.e.stdout, sum)
	switch {
	case fatal != nil:
		return storeError(fatal)
	case stopped:
		left := ""
		if sum.Unfinished > 0 {
			left = fmt.Sprintf(", %d left to their lease", sum.Unfinished)
		}
		return stoppedError(fmt.Errorf("stopped by %s: %d batches handled, %d messages released%s", c.e.signal(), sum.Batches, sum.Released, left))
	case c.cfg.FailOn == FailOnDead && sum.Dead > 0:
		return &ExitError{Code: ExitHandlerFailed, Err: fmt.Errorf("%d messages went to the dead letters (fail_on: dead)", sum.Dead)}
	case c.cfg.FailOn == FailOnNack && sum.Dead+sum.Retried > 0:
		return &ExitError{Code: ExitHandlerFailed, Err: fmt.Errorf("%d messages failed: %d retried, %d dead (fail_on: nack)", sum.Dead+sum.Retried, sum.Retried, sum.Dead)}
	case werr != nil:
		return storeError(fmt.Errorf("print summary: %w", werr))
	}
	return nil
}

// loop claims and dispatches batches until the mode, a limit, Kill or a
// fatal error ends it. While every handler slot is busy it claims the next
// batch ahead (at most concurrency+1 batches leased), so a handler that ends
// finds its next batch waiting instead of waiting for a claim. A batch
// whose handler ends while the loop waits for a slot or a leased token
// hands both over with its ack (handover), and the next claim makes the ack
// in its own transaction.
func (c *consumer) loop(ctx context.Context) {
	spareSlot := false // a handed-over slot not used yet
	defer func() {
		if c.nextAck != nil { // with its leased token, not used either
			c.ackAlone(ctx)
			<-c.leased
		}
		if spareSlot {
			<-c.slots
		}
	}()
	for {
		if c.nextAck == nil {
			select {
			case c.leased <- struct{}{}:
			case c.nextAck = <-c.handover:
				spareSlot = true
			case <-c.e.stop.Stopped():
				return
			case <-c.halt:
				return
			}
		}
		batch := c.nextBatch(ctx)
		if batch == nil {
			<-c.leased
			return
		}
		if spareSlot {
			spareSlot = false
		} else {
			select {
			case c.slots <- struct{}{}:
			case c.nextAck = <-c.handover: // its slot runs this batch; its token claims the next
			case <-c.e.stop.Stopped():
				c.finish(ctx, batch, finishRelease, "", nil)
				<-c.leased
				return
			case <-c.halt:
				c.finish(ctx, batch, finishRelease, "", nil)
				<-c.leased
				return
			}
		}
		c.dispatch(ctx, batch)
		if c.cfg.Mode == ModeOnce {
			return
		}
	}
}

// nextBatch claims and lingers until a batch is ready; nil means the loop
// should end. The batch is one lease: the first claim takes it, and claims
// while the batch lingers add to it, within batch_size and max_bytes and,
// with group_by, of its group. A handed-over ack (c.nextAck) goes with the
// first claim, or is made alone before nextBatch returns.
func (c *consumer) nextBatch(ctx context.Context) []claimed {
	defer c.ackAlone(ctx)
	for {
		if c.ending() {
			return nil
		}
		c.mu.Lock()
		room := c.cfg.BatchSize - len(c.pending)
		capped := false
		if c.cfg.MaxMessages > 0 && c.cfg.MaxMessages-c.claimed < room {
			room, capped = c.cfg.MaxMessages-c.claimed, true
		}
		if c.cfg.MaxBatches > 0 && c.sum.Batches >= c.cfg.MaxBatches {
			c.mu.Unlock()
			return nil
		}
		into := c.pendingLease()
		c.mu.Unlock()

		got := 0
		// A claim while batches of ours run may find nothing only because
		// they hold the queue's in-flight limit.
		busyAtClaim := c.running() > 0
		if room > 0 && !c.bytesFull {
			opts := c.e.claimOptions(room)
			opts.MaxBytes = c.cfg.MaxBytes
			opts.Into = into
			var lease *queuestore.Lease
			var err error
			var ackLost *queuestore.LostError
			if ack := c.nextAck; ack != nil && into == nil {
				c.outcomes.RLock()
				lease, err = c.store.AckClaim(ctx, ack.lease, nil, opts)
				c.outcomes.RUnlock()
				if err == nil || errors.As(err, &ackLost) { // the claim happened
					c.nextAck = nil
					ack.done <- err
					err = nil
				}
			} else {
				lease, err = c.store.Claim(ctx, opts)
			}
			switch {
			case err != nil && into != nil && errors.Is(err, queuestore.ErrLeaseLost):
				// The lingering batch's lease ran out (a heartbeat could not
				// reach the database in time): hand on what it holds; its
				// finish names what was taken over.
				c.bytesFull = true
			case err != nil && stopdeadline.Passed(ctx):
				// Given up while stopping: a claim that committed all the
				// same leaves its messages to their lease.
				return nil
			case err != nil:
				c.setFatal(err)
				return nil
			case lease != nil:
				got = len(lease.Messages)
				c.bytesFull = lease.BytesFull
				c.track(lease)
			}
		}
		now := time.Now()
		if c.batchReady(now) {
			return c.takePending()
		}
		if len(c.pending) > 0 { // lingering on a partial batch
			if got > 0 && got == room {
				continue // the queue may have more
			}
			wait := c.policy.Decide(len(c.pending), c.pendingBytes(), c.pending[0].at, now).Wait
			if !capped || room > 0 {
				wait = min(wait, c.cfg.PollInterval)
			}
			c.sleep(max(wait, time.Millisecond), nil)
			continue
		}
		if capped && room <= 0 {
			return nil // max_messages reached
		}
		switch c.cfg.Mode {
		case ModeOnce:
			return nil
		case ModeDrain:
			if c.running() > 0 {
				// A running batch may be retried at once: look again when it ends.
				c.sleep(c.cfg.PollInterval, c.finished)
				continue
			}
			if busyAtClaim {
				continue // our batches have ended since: claim again before calling it drained
			}
			if skippedReason(ctx, c.store, c.cfg.Queue) == "limit" {
				c.sleep(c.cfg.PollInterval, c.finished) // other consumers hold the limit
				continue
			}
			return nil
		case ModeWatch:
			if c.cfg.IdleTimeout > 0 {
				c.mu.Lock()
				if c.busy > 0 {
					c.lastClaim = now
				}
				idle := now.Sub(c.lastClaim)
				c.mu.Unlock()
				if idle >= c.cfg.IdleTimeout {
					return nil
				}
			}
			c.idle(ctx)
		}
	}
}

// batchReady says whether the pending batch goes to a handler now: full by
// size or bytes, lingered long enough, or capped by max_messages or the
// mode.
func (c *consumer) batchReady(now time.Time) bool {
	if len(c.pending) == 0 {
		return false
	}
	if c.bytesFull || c.policy.Decide(len(c.pending), c.pendingBytes(), c.pending[0].at, now).Ready() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.MaxMessages > 0 && c.claimed >= c.cfg.MaxMessages
}

func (c *consumer) pendingBytes() int64 {
	var n int64
	for _, m := range c.pending {
		n += int64(len(m.msg.Body))
	}
	return n
}

// pendingLease is the pending batch's lease with its messages (bodies for
// the byte count, groups for group_by), for a claim into it; nil when no
// batch is pending. c.mu is held.
func (c *consumer) pendingLease() *queuestore.Lease {
	if len(c.pending) == 0 {
		return nil
	}
	first := c.pending[0].lease
	l := &queuestore.Lease{ID: first.ID, Token: first.Token, Queue: first.Queue, Consumer: first.Consumer}
	for _, m := range c.pending {
		l.Messages = append(l.Messages, m.msg)
	}
	return l
}

// takePending hands the pending batch on and starts a new one.
func (c *consumer) takePending() []claimed {
	batch := c.pending
	c.pending, c.bytesFull = nil, false
	return batch
}

func (c *consumer) ending() bool {
	select {
	case <-c.e.stop.Stopped():
		return true
	case <-c.halt:
		return true
	default:
		return false
	}
}

// sleep waits for d, or until Kill, a fatal error, or a signal on wake.
func (c *consumer) sleep(d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-c.e.stop.Stopped():
	case <-c.halt:
	}
}

func (c *consumer) running() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy
}

func (c *consumer) setFatal(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fatal == nil {
		c.fatal = err
		close(c.halt)
	}
}

// track registers a claim (a new lease, or more messages for the pending
// batch's lease) and adds its messages to the pending batch.
func (c *consumer) track(lease *queuestore.Lease) {
	now := time.Now()
	c.mu.Lock()
	st := c.leases[lease.ID]
	if st == nil {
		own := &queuestore.Lease{ID: lease.ID, Token: lease.Token, Queue: lease.Queue, Consumer: lease.Consumer, ExpiresAt: lease.ExpiresAt}
		st = &leaseState{lease: own}
		c.leases[lease.ID] = st
	}
	for _, m := range lease.Messages {
		st.ids = append(st.ids, m.ID)
		st.open++
		c.pending = append(c.pending, claimed{msg: m, lease: st.lease, at: now})
	}
	c.claimed += len(lease.Messages)
	c.lastClaim = now
	c.mu.Unlock()
}

func (c *consumer) dispatch(ctx context.Context, batch []claimed) {
	c.mu.Lock()
	c.busy++
	c.seq++
	c.sum.Batches++
	c.sum.Messages += len(batch)
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.handle(ctx, batch)
		c.mu.Lock()
		c.busy--
		handed := c.handed[batch[0].lease.ID]
		delete(c.handed, batch[0].lease.ID)
		c.mu.Unlock()
		if !handed { // else the loop took its slot and leased token
			<-c.slots
			<-c.leased
		}
		select {
		case c.finished <- struct{}{}:
		default:
		}
	}()
}

type finishKind int

const (
	finishAck finishKind = iota
	finishNack
	finishRelease
)

// finish acks, nacks or releases the messages of one batch (one lease).
// failed, for finishNack, maps some ids to their own error text. Messages
// that another claim took over are counted lost and named on stderr.
func (c *consumer) finish(ctx context.Context, msgs []claimed, kind finishKind, errText string, failed map[int64]string) {
	if len(msgs) == 0 {
		return
	}
	leaseID := msgs[0].lease.ID
	ids := make([]int64, len(msgs))
	attempts := map[int64]int{}
	for i, m := range msgs {
		ids[i] = m.msg.ID
		attempts[m.msg.ID] = m.msg.Attempt
	}
	c.mu.Lock()
	st := c.leases[leaseID]
	st.finishing = true
	lease := batchLease(st, ids)
	c.mu.Unlock()
	for i := range lease.Messages {
		lease.Messages[i].Attempt = attempts[lease.Messages[i].ID]
	}

	var acked, retried, dead, released, unfinished int
	// givenUp drops the error of a call for n messages that the stop
	// deadline ended: they are left to their lease, counted unfinished.
	givenUp := func(err error, n int) error {
		if err != nil && !isLost(err) && stopdeadline.Passed(ctx) {
			unfinished += n
			return nil
		}
		return err
	}
	var err error
	switch kind {
	case finishAck:
		err = givenUp(c.ack(ctx, st, lease), len(ids))
		acked = len(ids) - unfinished
	case finishRelease:
		c.outcomes.Lock() // the acks and nacks under way go first
		c.outcomes.Unlock()
		err = givenUp(c.store.Release(ctx, lease), len(ids))
		released = len(ids) - unfinished
	case finishNack:
		// One nack per distinct error text.
		texts := map[string][]int64{}
		var order []string
		for _, id := range ids {
			t := errText
			if own, ok := failed[id]; ok && own != "" {
				t = own
			}
			if _, seen := texts[t]; !seen {
				order = append(order, t)
			}
			texts[t] = append(texts[t], id)
		}
		c.outcomes.RLock()
		for _, t := range order {
			res, nerr := c.store.Nack(ctx, lease, queuestore.NackOptions{IDs: texts[t], Error: t, MaxAttempts: c.cfg.MaxAttempts})
			retried += len(res.Retried)
			dead += len(res.Dead)
			err = errors.Join(err, givenUp(nerr, len(texts[t])))
		}
		c.outcomes.RUnlock()
	}
	lost := 0
	switch {
	case err == nil:
	case isLost(err):
		lost = lostCount(err, len(ids))
		if kind == finishAck {
			acked -= lost
		} else if kind == finishRelease {
			released -= lost
		}
		fmt.Fprintf(c.stderr, "daguq: batch of queue %s: %d of its %d messages were taken over by another claim after lease %s ran out: they were not finished here and may be delivered again (%v)\n",
			c.cfg.Queue, lost, len(ids), lease.Token, err)
	default:
		c.setFatal(err)
		acked, released = 0, 0
	}
	c.mu.Lock()
	c.sum.Acked += acked
	c.sum.Retried += retried
	c.sum.Dead += dead
	c.sum.Released += released
	c.sum.Lost += lost
	c.sum.Unfinished += unfinished
	if st.open -= len(ids); st.open <= 0 {
		delete(c.leases, leaseID)
	}
	c.mu.Unlock()
}

// handover is the ack of a batch whose handler has ended, handed to the
// claiming loop with the batch's slot and leased token: the loop's next
// claim makes the ack in its own transaction (AckClaim) and sends the ack's
// error on done.
type handover struct {
	lease *queuestore.Lease
	done  chan error
}

// ack acks the messages of lease, the rest of st. When they are all that
// st holds and the claiming loop is waiting right now for a slot or a
// leased token (claim-ahead: concurrency+1 batches leased), the ack goes
// with the loop's next claim, in one transaction, which the loop makes at
// once; otherwise it is made alone: an ack never waits for a claim that may
// not come.
func (c *consumer) ack(ctx context.Context, st *leaseState, lease *queuestore.Lease) error {
	c.mu.Lock()
	whole := st.open == len(lease.Messages)
	c.mu.Unlock()
	if whole {
		h := &handover{lease: lease, done: make(chan error, 1)}
		select {
		case c.handover <- h:
			c.mu.Lock()
			c.handed[st.lease.ID] = true
			c.mu.Unlock()
			return <-h.done
		default:
		}
	}
	return c.ackNow(ctx, lease)
}

// ackAlone makes a handed-over ack that no claim took.
func (c *consumer) ackAlone(ctx context.Context) {
	if ack := c.nextAck; ack != nil {
		c.nextAck = nil
		ack.done <- c.ackNow(ctx, ack.lease)
	}
}

// ackNow acks lease in a transaction of its own.
func (c *consumer) ackNow(ctx context.Context, lease *queuestore.Lease) error {
	c.outcomes.RLock()
	defer c.outcomes.RUnlock()
	return c.store.Ack(ctx, lease)
}

// isLost reports a finish error that names messages another claim took
// over.
func isLost(err error) bool {
	var lost *queuestore.LostError
	return errors.As(err, &lost) || errors.Is(err, queuestore.ErrLeaseLost)
}

// lostCount is how many messages a finish error says were taken over: the
// ids of every *LostError it joins, or all of them for a lease lost whole.
func lostCount(err error, all int) int {
	var n int
	var found bool
	var walk func(error)
	walk = func(err error) {
		var lost *queuestore.LostError
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				walk(e)
			}
			return
		}
		if errors.As(err, &lost) {
			n += len(lost.IDs)
			found = true
		}
	}
	walk(err)
	if !found {
		return all
	}
	return min(n, all)
}

// heartbeat extends the lease of every batch, pending or running, every
// lease/3 until stop closes. A lease that another claim took over in part
// is said on stderr at once; the batch's finish counts it.
func (c *consumer) heartbeat(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(max(c.cfg.Lease/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		var leases []*queuestore.Lease
		for _, st := range c.leases {
			if st.finishing {
				continue
			}
			var ids []int64
			for _, id := range st.ids {
				if !st.lost[id] {
					ids = append(ids, id)
				}
			}
			if len(ids) > 0 {
				leases = append(leases, batchLease(st, ids))
			}
		}
		c.mu.Unlock()
		for _, l := range leases {
			err := c.store.Extend(ctx, l, c.cfg.Lease)
			var lost *queuestore.LostError
			c.mu.Lock()
			st, held := c.leases[l.ID]
			if held && !st.finishing && err == nil {
				st.lease.ExpiresAt = l.ExpiresAt
			}
			newly := 0
			if held && !st.finishing && errors.As(err, &lost) {
				if st.lost == nil {
					st.lost = map[int64]bool{}
				}
				for _, id := range lost.IDs {
					if !st.lost[id] {
						st.lost[id] = true
						newly++
					}
				}
			}
			c.mu.Unlock()
			switch {
			case err == nil || !held || stopdeadline.Passed(ctx):
			case newly > 0:
				fmt.Fprintf(c.stderr, "daguq: lease %s of queue %s: %d messages were taken over by another claim after the lease ran out; the batch goes on, and they will not be finished by it\n", l.Token, c.cfg.Queue, newly)
			case lost == nil:
				fmt.Fprintf(c.stderr, "daguq: extend lease %s of queue %s: %v\n", l.Token, c.cfg.Queue, err)
			}
		}
	}
}

// progress prints counts and rate on stderr every progress_interval.
func (c *consumer) progress(start time.Time, stop <-chan struct{}) {
	if c.cfg.ProgressInterval <= 0 {
		return
	}
	if c.e.progress != nil {
		c.progressBar(c.e.progress, stop)
		return
	}
	t := time.NewTicker(c.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		s := c.sum
		c.mu.Unlock()
		elapsed := time.Since(start)
		done := s.Acked + s.Retried + s.Dead
		fmt.Fprintf(c.stderr, "daguq: queue %s: %d batches, %d messages (%d acked, %d retried, %d dead) in %s, %.0f messages/s\n",
			c.cfg.Queue, s.Batches, s.Messages, s.Acked, s.Retried, s.Dead, elapsed.Round(time.Second), float64(done)/elapsed.Seconds())
	}
}

// lockedWriter serialises writes of concurrent handlers and the consumer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
