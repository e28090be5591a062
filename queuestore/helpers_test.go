package queuestore

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for time-dependent rules.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testBundle struct {
	store *Store
	clock *fakeClock
	ctx   context.Context
}

// setup opens a store on a fresh file with a fake clock and no backoff
// jitter: a nack retries after exactly one second per attempt.
func setup(tb testing.TB, opts Options) *testBundle {
	tb.Helper()
	clock := &fakeClock{now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	opts.Now = clock.Now
	if opts.Backoff == nil {
		opts.Backoff = func(attempt int) time.Duration { return time.Duration(attempt) * time.Second }
	}
	s, err := Open(filepath.Join(tb.TempDir(), "daguq.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return &testBundle{store: s, clock: clock, ctx: context.Background()}
}

func (b *testBundle) enqueue(tb testing.TB, msgs ...NewMessage) []int64 {
	tb.Helper()
	res, err := b.store.Enqueue(b.ctx, msgs...)
	if err != nil {
		tb.Fatal(err)
	}
	return res.IDs
}

func (b *testBundle) claim(tb testing.TB, opts ClaimOptions) *Lease {
	tb.Helper()
	if opts.Max == 0 {
		opts.Max = 100
	}
	lease, err := b.store.Claim(b.ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return lease
}

func bodies(l *Lease) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l.Messages))
	for i, m := range l.Messages {
		out[i] = string(m.Body)
	}
	return out
}

func msg(queue, body string) NewMessage { return NewMessage{Queue: queue, Body: []byte(body)} }

// bodiesLeft counts the stored bodies and, of them, those listed on their
// queue's counts row for being deleted together (dropBodies).
func bodiesLeft(tb testing.TB, s *Store) (left, listed int) {
	tb.Helper()
	err := s.DB().QueryRow(`
SELECT (SELECT count(*) FROM bodies),
       (SELECT count(*) FROM bodies WHERE id IN (SELECT t.value FROM queue_counts c, json_each(c.body_trash) t))`).
		Scan(&left, &listed)
	if err != nil {
		tb.Fatal(err)
	}
	return left, listed
}
