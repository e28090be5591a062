// Package storetest is the behavioural suite of the store contract
// (queuestore.Backend, docs/lifecycle.md): one set of tests that every
// backend runs, SQLite and PostgreSQL alike.
//
// A backend's test calls Run with a function that opens a fresh, empty
// store for one test:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, opts queuestore.Options) queuestore.Backend {
//			s, err := mybackend.Open(..., opts...)
//			...
//			t.Cleanup(func() { s.Close() })
//			return s
//		}, storetest.RowCounter(countRows))
//	}
//
// The suite passes a fake clock in Options.Now (every time the store uses
// comes from it) and a backoff without jitter (attempt n waits n seconds)
// unless a test sets its own. Tests that look past the contract at stored
// rows need a RowCounter; without one they skip and say why.
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// Opener opens a fresh, empty store for one test, with these options
// (MaxAttempts, AckRetention, Backoff and Now apply to every backend), and
// closes it when the test ends.
type Opener func(t *testing.T, opts queuestore.Options) queuestore.Backend

// Rows are counts taken from a queue's stored rows, not from the counts the
// store keeps.
type Rows struct {
	ReadySet int64 // in the ready set that claims walk (not due waiting ones)
	// As Stats defines them at the time given.
	Ready, Delayed, InFlight, Dead, Acked int64
	Bodies                                int64 // stored bodies of every queue
}

// CountRows counts a queue's stored rows at time now.
type CountRows func(tb testing.TB, store queuestore.Backend, queue string, now time.Time) Rows

// Option tunes Run.
type Option func(*config)

type config struct {
	countRows CountRows
	skip      map[string]string
}

// RowCounter gives the suite a way to count stored rows, for the tests that
// check the ready set and the kept counts against the rows.
func RowCounter(count CountRows) Option { return func(c *config) { c.countRows = count } }

// Skip skips the named test (a subtest name of Run) for the reason given.
func Skip(name, reason string) Option { return func(c *config) { c.skip[name] = reason } }

// suite is one run of the tests against one backend.
type suite struct {
	open Opener
	config
}

// Run runs every test of the contract, each as a parallel subtest on a
// store of its own.
func Run(t *testing.T, open Opener, options ...Option) {
	s := &suite{open: open, config: config{skip: map[string]string{}}}
	for _, o := range options {
		o(&s.config)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if reason, ok := s.skip[tc.name]; ok {
				t.Skip(reason)
			}
			t.Parallel()
			tc.run(t, s)
		})
	}
}

// test is one test of the suite.
type test struct {
	name string
	run  func(t *testing.T, s *suite)
}

// tests lists the suite; each file of the package adds its own.
var tests []test

func add(name string, run func(t *testing.T, s *suite)) { tests = append(tests, test{name, run}) }

// Clock is a settable clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock is a clock standing at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// bundle is one test's store and clock.
type bundle struct {
	suite *suite
	store queuestore.Backend
	clock *Clock
	ctx   context.Context
}

// setup opens a store with a fake clock and, unless opts has one, a backoff
// without jitter: a nack retries after exactly one second per attempt.
func (s *suite) setup(t *testing.T, opts queuestore.Options) *bundle {
	t.Helper()
	clock := NewClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	opts.Now = clock.Now
	if opts.Backoff == nil {
		opts.Backoff = func(attempt int) time.Duration { return time.Duration(attempt) * time.Second }
	}
	return &bundle{suite: s, store: s.open(t, opts), clock: clock, ctx: context.Background()}
}

// rows counts the stored rows of queue, or skips the test when the backend
// gave no way to.
func (b *bundle) rows(t *testing.T, queue string) Rows {
	t.Helper()
	if b.suite.countRows == nil {
		t.Skip("the backend gave the suite no row counter (storetest.RowCounter)")
	}
	return b.suite.countRows(t, b.store, queue, b.clock.Now())
}

func (b *bundle) enqueue(t testing.TB, msgs ...queuestore.NewMessage) []int64 {
	t.Helper()
	res, err := b.store.Enqueue(b.ctx, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	return res.IDs
}

func (b *bundle) claim(t testing.TB, opts queuestore.ClaimOptions) *queuestore.Lease {
	t.Helper()
	if opts.Max == 0 {
		opts.Max = 100
	}
	lease, err := b.store.Claim(b.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return lease
}

func (b *bundle) stats(t testing.TB, queue string) queuestore.Stats {
	t.Helper()
	st, err := b.store.Stats(b.ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (b *bundle) metrics(t testing.TB, queue string) queuestore.QueueMetrics {
	t.Helper()
	all, err := b.store.Metrics(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.Queue == queue {
			return m
		}
	}
	t.Fatalf("no metrics of queue %q in %+v", queue, all)
	return queuestore.QueueMetrics{}
}

func bodies(l *queuestore.Lease) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l.Messages))
	for i, m := range l.Messages {
		out[i] = string(m.Body)
	}
	return out
}

func msg(queue, body string) queuestore.NewMessage {
	return queuestore.NewMessage{Queue: queue, Body: []byte(body)}
}

func ptr[T any](v T) *T { return &v }
