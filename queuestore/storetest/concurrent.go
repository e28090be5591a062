package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// Claims, enqueues and finishes at once, from goroutines of one process on
// one store. (Claims from many OS processes are proven by each backend's
// own multi-process test.)

func init() {
	add("ConcurrentClaimsNeverShareAMessage", testConcurrentClaims)
	add("ConcurrentClaimsKeepTheInFlightLimit", testConcurrentLimit)
	add("ConcurrentEnqueuesOfOneDedupeKey", testConcurrentDedupe)
}

const concurrentWorkers = 8

func testConcurrentClaims(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	var msgs []nm
	for i := range 400 {
		msgs = append(msgs, nm{Queue: "q", Body: []byte(fmt.Sprint(i)), Priority: int64(i % 3)})
	}
	ids := b.enqueue(t, msgs...)
	var mu sync.Mutex
	got := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, concurrentWorkers)
	for range concurrentWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				l, err := b.store.Claim(b.ctx, co{Queue: "q", Max: 7})
				if err != nil {
					errs <- err
					return
				}
				if l == nil {
					return
				}
				if len(l.Messages) > 7 {
					errs <- fmt.Errorf("a claim of at most 7 took %d", len(l.Messages))
					return
				}
				mu.Lock()
				for _, id := range l.IDs() {
					got[id]++
				}
				mu.Unlock()
				if err := b.store.Ack(b.ctx, l); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("message %d claimed %d times, want once", id, got[id])
		}
	}
	if st := b.stats(t, "q"); st.Ready+st.InFlight+st.Delayed != 0 || st.Leases != 0 {
		t.Fatalf("stats %+v, want an empty queue", st)
	}
}

func testConcurrentLimit(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	const limit = 3
	if err := b.store.SetLimit(b.ctx, "q", limit); err != nil {
		t.Fatal(err)
	}
	var msgs []nm
	for range 200 {
		msgs = append(msgs, msg("q", "m"))
	}
	b.enqueue(t, msgs...)
	// held counts leases from after their claim returned to before their
	// ack is sent: never more than the store holds, so never more than the
	// limit.
	var held, most, acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, concurrentWorkers)
	for range concurrentWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for acked.Load() < 200 {
				l, err := b.store.Claim(b.ctx, co{Queue: "q", Max: 2})
				if err != nil {
					errs <- err
					return
				}
				if l == nil {
					time.Sleep(time.Millisecond) // every slot taken: poll
					continue
				}
				n := held.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(500 * time.Microsecond) // the handler runs
				held.Add(-1)
				if err := b.store.Ack(b.ctx, l); err != nil {
					errs <- err
					return
				}
				acked.Add(int64(len(l.Messages)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m := most.Load(); m > limit {
		t.Fatalf("%d leases held at once under a limit of %d", m, limit)
	}
	if m := b.metrics(t, "q"); m.Settled[queuestore.OutcomeAcked] != 200 {
		t.Fatalf("metrics %+v, want 200 acked", m)
	}
}

func testConcurrentDedupe(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	var wg sync.WaitGroup
	var enqueued, duplicates atomic.Int64
	errs := make(chan error, concurrentWorkers)
	for i := range concurrentWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.store.Enqueue(b.ctx, nm{Queue: "q", Body: []byte(fmt.Sprint(i)), DedupeKey: "once"}, msg("q", "always"))
			if err != nil {
				errs <- err
				return
			}
			enqueued.Add(int64(res.Enqueued))
			duplicates.Add(int64(res.Duplicates))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if enqueued.Load() != concurrentWorkers+1 || duplicates.Load() != concurrentWorkers-1 {
		t.Fatalf("%d enqueued, %d duplicates; want %d and %d", enqueued.Load(), duplicates.Load(), concurrentWorkers+1, concurrentWorkers-1)
	}
	if st := b.stats(t, "q"); st.Ready != concurrentWorkers+1 {
		t.Fatalf("stats %+v", st)
	}
}
