package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/daguq/daguq/batching"
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
	// SkippedReason is "empty", "paused" or "limit" when no batch ran.
	SkippedReason string `json:"skipped_reason,omitempty"`
	Stopped       bool   `json:"stopped,omitempty"` // ended by Kill or a cancelled context
	Duration      string `json:"duration"`
}

// claimed is one leased message waiting in, or taken from, the accumulator.
type claimed struct {
	msg   queuestore.Message
	lease *queuestore.Lease
	at    time.Time // when it was claimed: the start of its linger
}

type leaseState struct {
	lease *queuestore.Lease
	open  int // messages not yet finished
}

// consumer runs the consume action: one claiming loop feeding up to
// concurrency handler processes.
type consumer struct {
	e       *queueExecutor
	cfg     *queueConfig
	store   Store
	stderr  io.Writer // shared by handlers: writes are serialised
	acc     *batching.Accumulator[claimed]
	tmpDir  string
	cleanup func() // removes tmpDir
	script  string // handler script file, for `script`

	slots    chan struct{} // one token per running or assembling batch
	finished chan struct{} // a handler finished
	halt     chan struct{} // closed on a fatal store error
	wg       sync.WaitGroup

	mu        sync.Mutex
	leases    map[int64]*leaseState
	sum       ConsumeSummary
	fatal     error
	busy      int
	claimed   int // messages claimed so far
	lastClaim time.Time
	seq       int
}

func newConsumer(e *queueExecutor, store Store) *consumer {
	c := &consumer{
		e:        e,
		cfg:      &e.cfg,
		store:    store,
		stderr:   &lockedWriter{w: e.stderr},
		slots:    make(chan struct{}, e.cfg.Concurrency),
		finished: make(chan struct{}, e.cfg.Concurrency),
		halt:     make(chan struct{}),
		leases:   map[int64]*leaseState{},
		sum:      ConsumeSummary{Queue: e.cfg.Queue},
	}
	policy := batching.Policy{
		MaxSize:    e.cfg.BatchSize,
		MaxBytes:   e.cfg.MaxBytes,
		MaxWait:    e.cfg.MaxWait,
		GroupByKey: e.cfg.GroupBy,
	}
	acc, err := batching.NewAccumulator(policy, func(m claimed) batching.Item {
		return batching.Item{Key: m.msg.Group, Size: int64(len(m.msg.Body)), ReadyAt: m.at}
	})
	if err != nil {
		panic(fmt.Sprintf("executor: batching policy out of the validated range: %v", err))
	}
	c.acc = acc
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
		if held := c.acc.Drain(); len(held) > 0 {
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
	sum.Duration = time.Since(start).Round(time.Millisecond).String()
	if sum.Batches == 0 && !stopped && fatal == nil {
		sum.SkippedReason = skippedReason(ctx, c.store, c.cfg.Queue)
	}
	werr := writeJSON(c.e.stdout, sum)
	switch {
	case fatal != nil:
		return storeError(fatal)
	case stopped:
		return stoppedError(fmt.Errorf("stopped by %s: %d batches handled, %d messages released", c.e.signal(), sum.Batches, sum.Released))
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
// fatal error ends it.
func (c *consumer) loop(ctx context.Context) {
	for {
		select {
		case c.slots <- struct{}{}:
		case <-c.e.stopped:
			return
		case <-c.halt:
			return
		}
		batch := c.nextBatch(ctx)
		if batch == nil {
			<-c.slots
			return
		}
		c.dispatch(ctx, batch)
		if c.cfg.Mode == ModeOnce {
			return
		}
	}
}

// nextBatch claims and lingers until a batch is ready; nil means the loop
// should end.
func (c *consumer) nextBatch(ctx context.Context) []claimed {
	for {
		if c.ending() {
			return nil
		}
		c.mu.Lock()
		room := c.cfg.BatchSize - c.acc.Len()
		capped := false
		if c.cfg.MaxMessages > 0 && c.cfg.MaxMessages-c.claimed < room {
			room, capped = c.cfg.MaxMessages-c.claimed, true
		}
		if c.cfg.MaxBatches > 0 && c.sum.Batches >= c.cfg.MaxBatches {
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()

		got := 0
		if room > 0 {
			lease, err := c.store.Claim(ctx, c.e.claimOptions(room))
			if err != nil {
				c.setFatal(err)
				return nil
			}
			if lease != nil {
				got = len(lease.Messages)
				c.track(lease)
			}
		}
		now := time.Now()
		if batch := c.acc.Take(now); batch != nil {
			return batch
		}
		if c.acc.Len() > 0 { // lingering on a partial batch
			if got > 0 && got == room {
				continue // the queue may have more
			}
			wait := c.acc.Ready(now).Wait
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
			c.sleep(c.cfg.PollInterval, nil)
		}
	}
}

func (c *consumer) ending() bool {
	select {
	case <-c.e.stopped:
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
	case <-c.e.stopped:
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

// track registers a new lease and holds its messages for batching.
func (c *consumer) track(lease *queuestore.Lease) {
	now := time.Now()
	c.mu.Lock()
	c.leases[lease.ID] = &leaseState{lease: lease, open: len(lease.Messages)}
	c.claimed += len(lease.Messages)
	c.lastClaim = now
	c.mu.Unlock()
	for _, m := range lease.Messages {
		c.acc.Add(claimed{msg: m, lease: lease, at: now})
	}
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
		c.mu.Unlock()
		<-c.slots
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

// finish acks, nacks or releases messages, lease by lease. failed, for
// finishNack, maps some ids to their own error text.
func (c *consumer) finish(ctx context.Context, msgs []claimed, kind finishKind, errText string, failed map[int64]string) {
	type part struct {
		lease *queuestore.Lease
		ids   []int64
	}
	var parts []*part
	byLease := map[int64]*part{}
	for _, m := range msgs {
		p := byLease[m.lease.ID]
		if p == nil {
			p = &part{lease: m.lease}
			byLease[m.lease.ID] = p
			parts = append(parts, p)
		}
		p.ids = append(p.ids, m.msg.ID)
	}
	for _, p := range parts {
		var acked, retried, dead, released int
		var err error
		switch kind {
		case finishAck:
			if err = c.store.Ack(ctx, p.lease, p.ids...); err == nil {
				acked = len(p.ids)
			}
		case finishRelease:
			if err = c.store.Release(ctx, p.lease, p.ids...); err == nil {
				released = len(p.ids)
			}
		case finishNack:
			// One nack per distinct error text.
			texts := map[string][]int64{}
			var order []string
			for _, id := range p.ids {
				t := errText
				if own, ok := failed[id]; ok && own != "" {
					t = own
				}
				if _, seen := texts[t]; !seen {
					order = append(order, t)
				}
				texts[t] = append(texts[t], id)
			}
			for _, t := range order {
				res, nerr := c.store.Nack(ctx, p.lease, queuestore.NackOptions{IDs: texts[t], Error: t, MaxAttempts: c.cfg.MaxAttempts})
				if nerr != nil {
					err = errors.Join(err, nerr)
					continue
				}
				retried += len(res.Retried)
				dead += len(res.Dead)
			}
		}
		lost := 0
		if err != nil {
			if leaseLost(err) {
				lost = len(p.ids) - acked - retried - dead - released
				fmt.Fprintf(c.stderr, "daguq: lease %s of queue %s was lost before it was finished: %d messages may be delivered again\n", p.lease.Token, c.cfg.Queue, lost)
			} else {
				c.setFatal(err)
			}
		}
		c.mu.Lock()
		c.sum.Acked += acked
		c.sum.Retried += retried
		c.sum.Dead += dead
		c.sum.Released += released
		c.sum.Lost += lost
		if st := c.leases[p.lease.ID]; st != nil {
			st.open -= len(p.ids)
			if st.open <= 0 {
				delete(c.leases, p.lease.ID)
			}
		}
		c.mu.Unlock()
	}
}

// heartbeat extends every held lease every lease/3 until stop closes.
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
		leases := make([]*queuestore.Lease, 0, len(c.leases))
		for _, st := range c.leases {
			leases = append(leases, st.lease)
		}
		c.mu.Unlock()
		for _, l := range leases {
			err := c.store.Extend(ctx, l, c.cfg.Lease)
			if err == nil {
				continue
			}
			c.mu.Lock()
			_, held := c.leases[l.ID]
			c.mu.Unlock()
			if held { // not merely finished in the meantime
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
