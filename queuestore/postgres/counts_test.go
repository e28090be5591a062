package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// Count changes are recorded as rows and rolled up every second: while
// claims, acks and enqueues run on several connections, and rollups with
// them, stats and counters stay exact.
func TestCountsRolledUpExactly(t *testing.T) {
	t.Parallel()
	s := open(t, postgres.Options{MaxConns: 6})
	ctx := context.Background()
	var enqueued, acked atomic.Int64
	var rolledUp atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !rolledUp.Load() {
				msgs := make([]queuestore.NewMessage, 20)
				for i := range msgs {
					msgs[i] = queuestore.NewMessage{Queue: "q", Body: []byte("x")}
				}
				if _, err := s.Enqueue(ctx, msgs...); err != nil {
					errs <- err
					return
				}
				enqueued.Add(20)
				l, err := s.Claim(ctx, queuestore.ClaimOptions{Queue: "q", Max: 15, Consumer: "c", Lease: time.Minute})
				if err != nil {
					errs <- err
					return
				}
				if l != nil && w%2 == 0 {
					if err := s.Ack(ctx, l); err != nil {
						errs <- err
						return
					}
					acked.Add(int64(len(l.Messages)))
				}
			}
		}()
	}
	deadline := time.Now().Add(time.Minute)
	for !rolledUp.Load() && time.Now().Before(deadline) {
		// Two rollups at least: rows of the first are in the counts table,
		// and changes recorded since are in the deltas again.
		var rolled, pending int64
		err := s.ConnPool().QueryRow(ctx, `SELECT (SELECT coalesce(sum(enqueued), 0) FROM daguq_queue_counts WHERE queue = 'q'),
		                                      (SELECT count(*) FROM daguq_count_deltas)`).Scan(&rolled, &pending)
		if err != nil {
			t.Fatal(err)
		}
		rolledUp.Store(rolled > 0 && rolled < enqueued.Load() && enqueued.Load() > 2000)
		time.Sleep(50 * time.Millisecond)
	}
	rolledUp.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	now := time.Now()
	st, err := s.Stats(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	rows := countRows(t, s, "q", now)
	if st.Ready != rows.Ready || st.InFlight != rows.InFlight || st.Delayed != rows.Delayed {
		t.Errorf("stats %+v, rows %+v", st, rows)
	}
	ms, err := s.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Enqueued != enqueued.Load() || ms[0].Settled[queuestore.OutcomeAcked] != acked.Load() {
		t.Errorf("metrics %+v, want %d enqueued and %d acked", ms, enqueued.Load(), acked.Load())
	}
}
