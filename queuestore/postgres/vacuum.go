package postgres

import (
	"context"
	"sync"
)

// Vacuum after acks (docs/postgres.md#vacuum-and-bloat). Every message a
// queue handles leaves dead row versions behind (its claim's update, its
// ack's delete), which only VACUUM makes room of. Autovacuum looks at each
// database once a minute (autovacuum_naptime): a burst of a few hundred
// thousand messages would grow the tables and their indexes by a whole
// burst before it comes. So a store that has acked VacuumEvery messages
// since its last vacuum runs one itself, in the background: VACUUM
// (SKIP_LOCKED) of the hot tables, one at a time per store, skipped when
// autovacuum or another process holds a table.

// defaultVacuumEvery is Options.VacuumEvery's default.
const defaultVacuumEvery = 20_000

type vacuumer struct {
	mu      sync.Mutex
	since   int  // messages finished since the last vacuum began
	running bool // a vacuum of this store is running
	closed  bool
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

// noteFinished counts n messages deleted or rewritten for good, and starts
// a vacuum when enough have been since the last.
func (s *Store) noteFinished(n int) {
	if s.opts.VacuumEvery <= 0 || n <= 0 {
		return
	}
	v := &s.vacuumer
	v.mu.Lock()
	defer v.mu.Unlock()
	v.since += n
	if v.since < s.opts.VacuumEvery || v.running || v.closed {
		return
	}
	v.since, v.running = 0, true
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		s.pool.Exec(v.ctx, sqlVacuumHot) // a failure is autovacuum's to make up for
		v.mu.Lock()
		v.running = false
		v.mu.Unlock()
	}()
}

// closeVacuum cancels a running vacuum and waits for it.
func (s *Store) closeVacuum() {
	v := &s.vacuumer
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	v.cancel()
	v.wg.Wait()
}
