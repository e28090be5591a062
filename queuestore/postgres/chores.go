package postgres

import (
	"context"
	"sync"
	"time"
)

// A store's background chores, each run in a goroutine of its own, one at a
// time per kind, until the store closes:
//
//   - Vacuum after acks (docs/postgres.md#vacuum-and-bloat). Every message a
//     queue handles leaves dead row versions behind (its claim's update, its
//     ack's delete), which only VACUUM makes room of. Autovacuum looks at
//     each database once a minute (autovacuum_naptime): a burst of a few
//     hundred thousand messages would grow the tables and their indexes by a
//     whole burst before it comes. So a store that has acked VacuumEvery
//     messages since its last vacuum runs one itself: VACUUM (SKIP_LOCKED)
//     of the hot tables, skipped when autovacuum or another process holds a
//     table. Skipped too while the oldest running transaction is the one
//     that was oldest when the last vacuum began: vacuum may not remove
//     what died since, and would read the tables and indexes, which grow
//     while that transaction stays open, for nothing.
//   - Count rollup: transactions record their count changes as rows of
//     daguq_count_deltas; a store that recorded some runs sqlRollupCounts at
//     most once per rollupEvery, which adds them to daguq_queue_counts.

// defaultVacuumEvery is Options.VacuumEvery's default.
const defaultVacuumEvery = 20_000

// rollupEvery is how often a store that records count changes rolls them up.
const rollupEvery = time.Second

type chores struct {
	mu         sync.Mutex
	since      int    // messages finished since the last vacuum began
	vacuumXmin string // the oldest running transaction when the last vacuum began
	vacuuming  bool   // a vacuum of this store is running
	rollingUp  bool   // a rollup of this store is running
	nextRollup time.Time
	closed     bool
	wg         sync.WaitGroup
	ctx        context.Context
	cancel     context.CancelFunc
}

// run runs fn in a goroutine and clears *running when it returns. Called
// with c.mu held, after setting *running.
func (c *chores) run(running *bool, fn func(context.Context)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn(c.ctx)
		c.mu.Lock()
		*running = false
		c.mu.Unlock()
	}()
}

// noteFinished counts n messages deleted or rewritten for good, and starts
// a vacuum when enough have been since the last.
func (s *Store) noteFinished(n int) {
	if s.opts.VacuumEvery <= 0 || n <= 0 {
		return
	}
	c := &s.chores
	c.mu.Lock()
	defer c.mu.Unlock()
	c.since += n
	if c.since < s.opts.VacuumEvery || c.vacuuming || c.closed {
		return
	}
	c.since, c.vacuuming = 0, true
	c.run(&c.vacuuming, func(ctx context.Context) {
		var xmin string
		if err := s.pool.QueryRow(ctx, sqlOldestRunning).Scan(&xmin); err != nil {
			return // autovacuum makes up for it
		}
		c.mu.Lock()
		stuck := xmin == c.vacuumXmin
		c.vacuumXmin = xmin
		c.mu.Unlock()
		if !stuck {
			s.pool.Exec(ctx, sqlVacuumHot) // a failure is autovacuum's to make up for
		}
	})
}

// noteCounted starts a rollup of the recorded count changes unless one ran
// in the last rollupEvery. Readers add up what is not rolled up yet, so a
// rollup that fails or comes late changes no count.
func (s *Store) noteCounted() {
	c := &s.chores
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.rollingUp || c.closed || now.Before(c.nextRollup) {
		return
	}
	c.rollingUp, c.nextRollup = true, now.Add(rollupEvery)
	c.run(&c.rollingUp, func(ctx context.Context) {
		s.pool.Exec(ctx, sqlRollupCounts) // a failure leaves the rows for the next
	})
}

// closeChores cancels running chores and waits for them.
func (s *Store) closeChores() {
	c := &s.chores
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}
