package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// Pools (docs/pools.md): capacity, strict serving order, leases of grants
// and registrations of waiters, fencing.

func init() {
	add("PoolSetListRemove", testPoolSetListRemove)
	add("AcquireRefusesWhatCanNeverBeGranted", testAcquireRefusesWhatCanNeverBeGranted)
	add("PoolHeadOfLineIsStrict", testPoolHeadOfLineIsStrict)
	add("PoolServesPriorityThenArrival", testPoolServesPriorityThenArrival)
	add("PoolExpiredGrantFreesSlots", testPoolExpiredGrantFreesSlots)
	add("PoolReleaseNeedsTheSecret", testPoolReleaseNeedsTheSecret)
	add("PoolDeadWaiterLeavesTheLine", testPoolDeadWaiterLeavesTheLine)
	add("PoolWaiterKeepsItsPlace", testPoolWaiterKeepsItsPlace)
	add("PoolCancelledWaiterLeavesAtOnce", testPoolCancelledWaiterLeavesAtOnce)
	add("PoolCapacityUnderConcurrentRequests", testPoolCapacityUnderConcurrentRequests)
}

// fastPoll makes waiters poll and refresh quickly in tests.
func fastPoll(opts queuestore.AcquireOptions) queuestore.AcquireOptions {
	if opts.Poll == 0 {
		opts.Poll = 2 * time.Millisecond
	}
	return opts
}

func (b *bundle) setPool(tb testing.TB, name string, capacity int) {
	tb.Helper()
	if err := b.store.SetPool(b.ctx, name, capacity); err != nil {
		tb.Fatal(err)
	}
}

func (b *bundle) acquire(tb testing.TB, opts queuestore.AcquireOptions) *queuestore.Grant {
	tb.Helper()
	g, err := b.store.Acquire(b.ctx, fastPoll(opts))
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func (b *bundle) pool(tb testing.TB, name string) queuestore.PoolStatus {
	tb.Helper()
	p, err := b.store.Pool(b.ctx, name)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// waiting is an Acquire running in a goroutine.
type waiting struct {
	name  string
	grant chan *queuestore.Grant
	err   chan error
}

// startWaiting starts an Acquire and returns once it waits in line (its
// waiter row is written), so that arrival order is the order of the calls.
func (b *bundle) startWaiting(tb testing.TB, ctx context.Context, name string, opts queuestore.AcquireOptions) *waiting {
	tb.Helper()
	w := &waiting{name: name, grant: make(chan *queuestore.Grant, 1), err: make(chan error, 1)}
	inLine := make(chan struct{})
	opts = fastPoll(opts)
	opts.Holder.Step = name
	opts.OnWait = func() { close(inLine) }
	go func() {
		g, err := b.store.Acquire(ctx, opts)
		if err != nil {
			w.err <- err
			return
		}
		w.grant <- g
	}()
	select {
	case <-inLine:
	case g := <-w.grant:
		tb.Fatalf("%s: granted at once (%+v), want it to wait", name, g)
	case err := <-w.err:
		tb.Fatalf("%s: %v", name, err)
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s: not in line after 10s", name)
	}
	return w
}

// granted waits for w's grant.
func (w *waiting) granted(tb testing.TB) *queuestore.Grant {
	tb.Helper()
	select {
	case g := <-w.grant:
		return g
	case err := <-w.err:
		tb.Fatalf("%s: %v", w.name, err)
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s: not granted after 10s", w.name)
	}
	return nil
}

// stillWaiting checks that w has not been granted after a few polls.
func (w *waiting) stillWaiting(tb testing.TB) {
	tb.Helper()
	select {
	case g := <-w.grant:
		tb.Fatalf("%s: granted %+v, want it still waiting", w.name, g)
	case err := <-w.err:
		tb.Fatalf("%s: %v", w.name, err)
	case <-time.After(50 * time.Millisecond):
	}
}

func (b *bundle) release(tb testing.TB, g *queuestore.Grant) {
	tb.Helper()
	if err := b.store.ReleaseGrant(b.ctx, g); err != nil {
		tb.Fatal(err)
	}
}

func testPoolSetListRemove(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.setPool(t, "db", 2)
	b.setPool(t, "api", 5)
	b.setPool(t, "db", 3) // change
	pools, err := b.store.Pools(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 2 || pools[0].Name != "api" || pools[0].Capacity != 5 || pools[1].Name != "db" || pools[1].Capacity != 3 {
		t.Fatalf("pools %+v", pools)
	}
	g := b.acquire(t, queuestore.AcquireOptions{Pool: "db", Slots: 2, Holder: queuestore.Holder{DAG: "etl", RunID: "r1", Step: "load", Host: "h", PID: 7}})
	p := b.pool(t, "db")
	if p.Used != 2 || p.Free() != 1 || len(p.Holders) != 1 || p.Holders[0].Grant != g.ID || p.Holders[0].DAG != "etl" ||
		p.Holders[0].RunID != "r1" || p.Holders[0].Step != "load" || p.Holders[0].PID != 7 || p.Holders[0].Slots != 2 {
		t.Fatalf("pool %+v", p)
	}
	if _, _, err := b.store.RemovePool(b.ctx, "db", false); !errors.Is(err, queuestore.ErrPoolBusy) || !strings.Contains(err.Error(), "1 holder(s)") {
		t.Fatalf("remove a pool in use: %v, want queuestore.ErrPoolBusy", err)
	}
	if h, w, err := b.store.RemovePool(b.ctx, "db", true); err != nil || h != 1 || w != 0 {
		t.Fatalf("remove --force: %d %d %v", h, w, err)
	}
	if err := b.store.ReleaseGrant(b.ctx, g); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Errorf("release after the pool went: %v, want queuestore.ErrLeaseLost", err)
	}
	if _, err := b.store.Pool(b.ctx, "db"); !errors.Is(err, queuestore.ErrPoolNotFound) {
		t.Errorf("pool after remove: %v", err)
	}
	if _, _, err := b.store.RemovePool(b.ctx, "db", false); !errors.Is(err, queuestore.ErrPoolNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	for _, c := range []int{0, -1, queuestore.MaxPoolCapacity + 1} {
		if err := b.store.SetPool(b.ctx, "x", c); !errors.Is(err, queuestore.ErrInvalid) {
			t.Errorf("capacity %d: %v", c, err)
		}
	}
	if err := b.store.SetPool(b.ctx, "bad name", 1); !errors.Is(err, queuestore.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
}

func testAcquireRefusesWhatCanNeverBeGranted(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	_, err := b.store.Acquire(b.ctx, queuestore.AcquireOptions{Pool: "nope"})
	if !errors.Is(err, queuestore.ErrPoolNotFound) {
		t.Errorf("unset pool: %v", err)
	}
	b.setPool(t, "db", 3)
	_, err = b.store.Acquire(b.ctx, queuestore.AcquireOptions{Pool: "db", Slots: 4})
	if !errors.Is(err, queuestore.ErrInvalid) || !strings.Contains(err.Error(), "slots 4 is more than the capacity 3") {
		t.Errorf("4 slots of 3: %v", err)
	}
	// A waiter whose request no longer fits after the capacity was lowered
	// fails rather than blocking the line for ever.
	hold := b.acquire(t, queuestore.AcquireOptions{Pool: "db", Slots: 3})
	w := b.startWaiting(t, b.ctx, "w", queuestore.AcquireOptions{Pool: "db", Slots: 3})
	b.setPool(t, "db", 2)
	select {
	case err := <-w.err:
		if !errors.Is(err, queuestore.ErrInvalid) {
			t.Errorf("after lowering the capacity: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not notice the lower capacity")
	}
	if p := b.pool(t, "db"); len(p.Waiters) != 0 || p.Used != 3 {
		t.Errorf("pool %+v: want the holder only", p)
	}
	b.release(t, hold)
}

// Strict head of line: a request for 4 slots is not passed by later
// requests for 1 slot, although a slot is free for them.
func testPoolHeadOfLineIsStrict(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.setPool(t, "db", 4)
	g1 := b.acquire(t, queuestore.AcquireOptions{Pool: "db", Slots: 3})
	big := b.startWaiting(t, b.ctx, "big", queuestore.AcquireOptions{Pool: "db", Slots: 4})
	small := b.startWaiting(t, b.ctx, "small", queuestore.AcquireOptions{Pool: "db", Slots: 1})
	small.stillWaiting(t)
	if p := b.pool(t, "db"); len(p.Waiters) != 2 || p.Waiters[0].Step != "big" || p.Waiters[1].Step != "small" {
		t.Fatalf("waiters %+v, want big then small", p.Waiters)
	}
	b.release(t, g1)
	gBig := big.granted(t)
	small.stillWaiting(t)
	b.release(t, gBig)
	small.granted(t)
}

// Waiters are served by priority, then arrival.
func testPoolServesPriorityThenArrival(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.setPool(t, "db", 1)
	hold := b.acquire(t, queuestore.AcquireOptions{Pool: "db"})
	var order []string
	ws := []*waiting{
		b.startWaiting(t, b.ctx, "a", queuestore.AcquireOptions{Pool: "db"}),
		b.startWaiting(t, b.ctx, "b", queuestore.AcquireOptions{Pool: "db", Priority: 5}),
		b.startWaiting(t, b.ctx, "c", queuestore.AcquireOptions{Pool: "db"}),
		b.startWaiting(t, b.ctx, "d", queuestore.AcquireOptions{Pool: "db", Priority: 5}),
		b.startWaiting(t, b.ctx, "e", queuestore.AcquireOptions{Pool: "db", Priority: -1}),
	}
	b.release(t, hold)
	for range ws {
		// Exactly one is granted at a time; find it, then release it.
		var g *queuestore.Grant
		var who string
		deadline := time.After(10 * time.Second)
		for g == nil {
			for _, w := range ws {
				select {
				case g = <-w.grant:
					who = w.name
				case err := <-w.err:
					t.Fatalf("%s: %v", w.name, err)
				default:
				}
				if g != nil {
					break
				}
			}
			select {
			case <-deadline:
				t.Fatalf("nobody granted after %v", order)
			case <-time.After(time.Millisecond):
			}
		}
		order = append(order, who)
		b.release(t, g)
	}
	if got := strings.Join(order, ""); got != "bdace" {
		t.Errorf("served %s, want bdace (priority, then arrival)", got)
	}
}

// A holder that stops extending its lease (its process died) stops
// counting when the lease ends; a late extend is refused.
func testPoolExpiredGrantFreesSlots(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.setPool(t, "db", 2)
	dead := b.acquire(t, queuestore.AcquireOptions{Pool: "db", Slots: 2, Lease: 10 * time.Second})
	alive := b.startWaiting(t, b.ctx, "next", queuestore.AcquireOptions{Pool: "db", Slots: 2, Lease: 10 * time.Second})
	b.clock.Advance(9 * time.Second)
	alive.stillWaiting(t)
	b.clock.Advance(time.Second) // the lease ends
	g := alive.granted(t)
	if err := b.store.ExtendGrant(b.ctx, dead, time.Minute); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Errorf("extend of an expired grant: %v, want queuestore.ErrLeaseLost", err)
	}
	// A live grant is extended, and then outlives its first lease.
	if err := b.store.ExtendGrant(b.ctx, g, time.Minute); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(30 * time.Second)
	if p := b.pool(t, "db"); p.Used != 2 || len(p.Holders) != 1 || p.Holders[0].Grant != g.ID {
		t.Errorf("pool %+v: want the extended grant", p)
	}
	b.release(t, g)
	if err := b.store.ReleaseGrant(b.ctx, g); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Errorf("second release: %v, want queuestore.ErrLeaseLost", err)
	}
	if p := b.pool(t, "db"); p.Used != 0 {
		t.Errorf("pool %+v: want it empty", p)
	}
}

// Release is fenced by the grant's secret: a grant with the right id but
// another secret releases nothing.
func testPoolReleaseNeedsTheSecret(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.setPool(t, "db", 1)
	g := b.acquire(t, queuestore.AcquireOptions{Pool: "db"})
	forged := queuestore.Grant{ID: g.ID, Pool: g.Pool, Slots: g.Slots} // without the secret
	if err := b.store.ReleaseGrant(b.ctx, &forged); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Errorf("release with another secret: %v", err)
	}
	if err := b.store.ExtendGrant(b.ctx, &forged, time.Minute); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Errorf("extend with another secret: %v", err)
	}
	if p := b.pool(t, "db"); p.Used != 1 {
		t.Errorf("pool %+v: the grant must still hold", p)
	}
}

// A waiter whose process died (its registration is never refreshed) leaves
// the line when the registration runs out; until then those behind wait.
func testPoolDeadWaiterLeavesTheLine(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.setPool(t, "db", 1)
	hold := b.acquire(t, queuestore.AcquireOptions{Pool: "db"})
	// The dead waiter: in line, and then neither polling nor refreshing
	// its registration (its next poll is an hour away).
	ghostCtx, stopGhost := context.WithCancel(b.ctx)
	defer stopGhost()
	b.startWaiting(t, ghostCtx, "ghost", queuestore.AcquireOptions{Pool: "db", Poll: time.Hour, Registration: 15 * time.Second})
	behind := b.startWaiting(t, b.ctx, "behind", queuestore.AcquireOptions{Pool: "db", Registration: time.Hour})
	b.release(t, hold)
	behind.stillWaiting(t)
	b.clock.Advance(15 * time.Second)
	behind.granted(t)
	if p := b.pool(t, "db"); len(p.Waiters) != 0 {
		t.Errorf("waiters %+v, want none", p.Waiters)
	}
}

// A waiter refreshes its registration while it waits, so a long wait keeps
// its place.
func testPoolWaiterKeepsItsPlace(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.setPool(t, "db", 1)
	hold := b.acquire(t, queuestore.AcquireOptions{Pool: "db"})
	first := b.startWaiting(t, b.ctx, "first", queuestore.AcquireOptions{Pool: "db", Registration: 30 * time.Millisecond})
	second := b.startWaiting(t, b.ctx, "second", queuestore.AcquireOptions{Pool: "db", Registration: time.Hour})
	for range 5 {
		// Each step is past a whole registration in the fake clock: only a
		// refresh (every 10ms of real time) keeps first in line.
		b.clock.Advance(20 * time.Millisecond)
		time.Sleep(25 * time.Millisecond)
	}
	// (A refresh may be late on a busy machine: give it a moment.)
	deadline := time.Now().Add(5 * time.Second)
	for p := b.pool(t, "db"); len(p.Waiters) != 2 || p.Waiters[0].Step != "first"; p = b.pool(t, "db") {
		if time.Now().After(deadline) {
			t.Fatalf("waiters %+v, want first still first", p.Waiters)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.release(t, hold)
	b.release(t, first.granted(t))
	second.granted(t)
}

// A waiter whose context ends leaves the line at once; the error carries
// the context's cause (a wait timeout or a stop).
func testPoolCancelledWaiterLeavesAtOnce(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.setPool(t, "db", 1)
	b.acquire(t, queuestore.AcquireOptions{Pool: "db"})
	stop := errors.New("stopped by a test")
	ctx, cancel := context.WithCancelCause(b.ctx)
	w := b.startWaiting(t, ctx, "w", queuestore.AcquireOptions{Pool: "db"})
	cancel(stop)
	select {
	case err := <-w.err:
		if !errors.Is(err, stop) {
			t.Errorf("err %v, want the cause", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting")
	}
	if p := b.pool(t, "db"); len(p.Waiters) != 0 {
		t.Errorf("waiters %+v, want none", p.Waiters)
	}

	// A newcomer that has to wait goes in line behind the others, even
	// when slots would be free for it.
	b.setPool(t, "db", 3)
	b.startWaiting(t, b.ctx, "big", queuestore.AcquireOptions{Pool: "db", Slots: 3})
	ctx, cancel = context.WithCancelCause(b.ctx)
	waited := false
	_, err := b.store.Acquire(ctx, fastPoll(queuestore.AcquireOptions{Pool: "db", Slots: 1, OnWait: func() { waited = true; cancel(stop) }}))
	if !waited || !errors.Is(err, stop) {
		t.Errorf("newcomer behind a waiter: waited %v, err %v", waited, err)
	}
}

// Many requests of mixed weights at once, from goroutines sharing the
// store (on PostgreSQL: its connections): the slots in use never exceed the
// capacity, and every request is served.
func testPoolCapacityUnderConcurrentRequests(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.setPool(t, "db", 3)
	PoolCapacityHolds(t, []queuestore.PoolBackend{b.store}, "db", 3)
}

// PoolCapacityHolds runs 8 goroutines, each taking and giving back slots
// of pool (set to capacity) 5 times with mixed weights, through stores in
// turn (one store shared, or a store each, as processes have), and fails t
// when the slots in use ever exceed capacity.
func PoolCapacityHolds(t *testing.T, stores []queuestore.PoolBackend, pool string, capacity int) {
	ctx := context.Background()
	var mu sync.Mutex
	inUse, most := 0, 0
	var wg sync.WaitGroup
	for i := range 8 {
		store := stores[i%len(stores)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				slots := 1 + (i+j)%capacity
				g, err := store.Acquire(ctx, queuestore.AcquireOptions{Pool: pool, Slots: slots, Priority: int64(j % 2), Poll: 2 * time.Millisecond})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inUse += slots
				most = max(most, inUse)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				mu.Lock()
				inUse -= slots
				mu.Unlock()
				if err := store.ReleaseGrant(ctx, g); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if most > capacity {
		t.Errorf("%d slots in use at once, capacity %d", most, capacity)
	}
	t.Logf("at most %d of %d slots in use at once", most, capacity)
}
