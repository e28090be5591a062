package queuestore

import (
	"math/rand/v2"
	"testing"
	"time"
)

// countRows is Stats the slow way: by counting rows.
func countRows(tb testing.TB, b *testBundle, queue string) Stats {
	tb.Helper()
	st := Stats{Queue: queue}
	now := b.clock.Now().UnixMilli()
	var oldest int64
	err := b.store.DB().QueryRow(`
SELECT coalesce(?2 - min(CASE WHEN state = 0 OR (state = 1 AND visible_at <= ?2) THEN visible_at END), 0),
       coalesce(sum(state = 0 OR (state = 1 AND visible_at <= ?2)), 0),
       coalesce(sum(state = 1 AND visible_at > ?2 AND lease_id IS NULL), 0),
       coalesce(sum(state = 1 AND visible_at > ?2 AND lease_id IS NOT NULL), 0),
       coalesce(sum(state = 2), 0), coalesce(sum(state = 3), 0)
FROM messages WHERE queue = ?1`, queue, now).Scan(&oldest, &st.Ready, &st.Delayed, &st.InFlight, &st.Dead, &st.Acked)
	if err != nil {
		tb.Fatal(err)
	}
	st.OldestReadyAge = time.Duration(oldest) * time.Millisecond
	return st
}

// The kept counts equal a count of the rows after any mix of operations,
// with and without ack retention, and the counters add up.
func TestKeptCountsMatchTheRows(t *testing.T) {
	t.Parallel()
	for _, retention := range []time.Duration{0, time.Hour} {
		t.Run(retention.String(), func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{AckRetention: retention, MaxAttempts: 2})
			rng := rand.New(rand.NewPCG(1, uint64(retention)))
			var leases []*Lease
			var enqueued int64
			for step := range 600 {
				switch op := rng.IntN(10); {
				case op < 3:
					var msgs []NewMessage
					for range 1 + rng.IntN(5) {
						m := NewMessage{Queue: "q", Body: []byte("m"), Priority: int64(rng.IntN(3))}
						if rng.IntN(3) == 0 {
							m.NotBefore = b.clock.Now().Add(time.Duration(rng.IntN(5)) * time.Second)
						}
						msgs = append(msgs, m)
					}
					res := b.enqueue(t, msgs...)
					enqueued += int64(len(res))
				case op < 5:
					if l := b.claim(t, ClaimOptions{Queue: "q", Max: 1 + rng.IntN(4), Lease: time.Duration(1+rng.IntN(3)) * time.Second}); l != nil {
						leases = append(leases, l)
					}
				case op < 8 && len(leases) > 0:
					i := rng.IntN(len(leases))
					l := leases[i]
					leases = append(leases[:i], leases[i+1:]...)
					switch rng.IntN(4) {
					case 0:
						b.store.Ack(b.ctx, l)
					case 1:
						b.store.Nack(b.ctx, l, NackOptions{Delay: time.Duration(rng.IntN(3)) * time.Second})
					case 2:
						b.store.Release(b.ctx, l)
					case 3:
						b.store.Extend(b.ctx, l, 2*time.Second)
						leases = append(leases, l)
					}
				case op == 8:
					b.clock.Advance(time.Duration(rng.IntN(2000)) * time.Millisecond)
				case op == 9 && rng.IntN(10) == 0:
					if rng.IntN(2) == 0 {
						b.store.Redrive(b.ctx, "q")
					} else {
						b.store.PurgeDead(b.ctx, "q")
					}
				}
				kept, rows := b.stats(t, "q"), countRows(t, b, "q")
				if kept.Ready != rows.Ready || kept.Delayed != rows.Delayed || kept.InFlight != rows.InFlight ||
					kept.Dead != rows.Dead || kept.Acked != rows.Acked || kept.OldestReadyAge != rows.OldestReadyAge {
					t.Fatalf("step %d: kept counts %+v, rows say %+v", step, kept, rows)
				}
			}
			m, err := b.store.Metrics(b.ctx)
			if err != nil || len(m) != 1 {
				t.Fatal(m, err)
			}
			if m[0].Enqueued != enqueued || m[0].Claimed == 0 || m[0].Settled[OutcomeAcked] == 0 ||
				m[0].WaitCount != m[0].Settled[OutcomeAcked] {
				t.Fatalf("metrics %+v, want %d enqueued, claims and acks counted", m[0], enqueued)
			}
			if _, err := b.store.Purge(b.ctx, "q"); err != nil {
				t.Fatal(err)
			}
			if kept := b.stats(t, "q"); kept.Ready+kept.Delayed+kept.InFlight+kept.Dead+kept.Acked != 0 {
				t.Fatalf("after purge: %+v", kept)
			}
		})
	}
}
