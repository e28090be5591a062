package queuestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"time"
)

// Pools cap how many slots the steps that use them hold at once, across
// every process that shares the database (docs/pools.md), like Airflow's
// pools: a pool has a capacity, a request asks for some slots (its weight)
// and holds them under a lease that its process extends while it works.
//
// Requests are served by priority (higher first), then in the order they
// arrived, strictly: a request is granted only when no request ranked before
// it is still waiting and enough slots are free, so a request for 4 slots is
// not starved by a stream of 1-slot requests. A waiting request is a row
// with a registration that its process refreshes; a request whose process
// died leaves the line when its registration runs out, a holder's slots
// return when its lease runs out.
//
// Waiting costs the database little: a waiter checks its turn with a read
// every Poll (less often when it is far back in line), and writes only to
// take its slots or to refresh its registration (every third of it).

var (
	// ErrPoolNotFound reports a pool that was never set (or was removed).
	ErrPoolNotFound = errors.New("queuestore: pool not set")
	// ErrPoolBusy reports a pool that has holders or waiters.
	ErrPoolBusy = errors.New("queuestore: pool in use")
)

// MaxPoolCapacity is the largest capacity of a pool, in slots.
const MaxPoolCapacity = 1_000_000

// ValidatePoolName reports whether name is a valid pool name: the same
// characters as a queue name.
func ValidatePoolName(name string) error {
	if !queueNamePattern.MatchString(name) {
		return fmt.Errorf("%w: pool name %q: want %s", ErrInvalid, name, QueueNameRule)
	}
	return nil
}

// Holder says who holds or waits for slots, for people reading a pool's
// state: the Dagu DAG, run and step, and the process.
type Holder struct {
	DAG   string `json:"dag,omitempty"`
	RunID string `json:"run_id,omitempty"`
	Step  string `json:"step,omitempty"`
	Host  string `json:"host,omitempty"`
	PID   int    `json:"pid,omitempty"`
}

// AcquireOptions say what Acquire asks for. Zero values mean the defaults.
type AcquireOptions struct {
	Pool string
	// Slots is the weight of the request: 1..the pool's capacity. Default 1.
	Slots int
	// Priority orders waiting requests: higher first, then by arrival.
	Priority int64
	// Lease is how long the grant counts unless extended (ExtendGrant).
	// Default 1m.
	Lease time.Duration
	// Holder is shown in the pool's state while the request waits or holds.
	Holder Holder
	// Poll is how often a waiting request reads whether its turn has come
	// while it is first or second in line; further back, up to 5 times less
	// often. Default 200ms (with jitter).
	Poll time.Duration
	// Registration is how long a waiting request stays in line without a
	// refresh; it is refreshed every third of it. Default 15s.
	Registration time.Duration
	// OnWait, when set, is called once if the request has to wait, after
	// it has joined the line.
	OnWait func()
}

func (o *AcquireOptions) validate() error {
	if err := ValidatePoolName(o.Pool); err != nil {
		return err
	}
	if o.Slots == 0 {
		o.Slots = 1
	}
	if o.Slots < 1 || o.Slots > MaxPoolCapacity {
		return fmt.Errorf("%w: slots must be 1..%d, got %d", ErrInvalid, MaxPoolCapacity, o.Slots)
	}
	if o.Lease == 0 {
		o.Lease = time.Minute
	}
	if o.Poll == 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Registration == 0 {
		o.Registration = 15 * time.Second
	}
	if o.Lease < time.Millisecond || o.Poll < time.Millisecond || o.Registration < 3*time.Millisecond {
		return fmt.Errorf("%w: lease, poll and registration must be positive, got %s, %s, %s", ErrInvalid, o.Lease, o.Poll, o.Registration)
	}
	return nil
}

// Grant is slots held in a pool. Its ID and a secret only this process
// knows fence ExtendGrant and ReleaseGrant: nobody else can end it.
type Grant struct {
	ID        int64
	Pool      string
	Slots     int
	ExpiresAt time.Time
	// Waited is how long the request waited in line (0: granted at once).
	Waited time.Duration

	secret string
}

// PoolStatus is a pool's state at one moment: live holders, and live
// waiters in serving order.
type PoolStatus struct {
	Name     string       `json:"pool"`
	Capacity int          `json:"capacity"`
	Used     int          `json:"used"` // slots of live grants; above Capacity after it was lowered
	Holders  []PoolHolder `json:"holders"`
	Waiters  []PoolWaiter `json:"waiters"`
}

// Free is how many slots a request could take now (ignoring waiters).
func (p PoolStatus) Free() int { return max(p.Capacity-p.Used, 0) }

// PoolHolder is one live grant.
type PoolHolder struct {
	Grant    int64 `json:"grant"`
	Slots    int   `json:"slots"`
	Priority int64 `json:"priority"`
	Holder
	ArrivedAt time.Time `json:"arrived_at"`
	GrantedAt time.Time `json:"granted_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PoolWaiter is one waiting request.
type PoolWaiter struct {
	Waiter   int64 `json:"waiter"`
	Slots    int   `json:"slots"`
	Priority int64 `json:"priority"`
	Holder
	ArrivedAt time.Time `json:"arrived_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SetPool creates pool name with capacity slots, or changes its capacity.
// Lowering it takes nothing back: grants run on, and no request is granted
// until the live grants fit again.
func (s *Store) SetPool(ctx context.Context, name string, capacity int) error {
	if err := ValidatePoolName(name); err != nil {
		return err
	}
	if capacity < 1 || capacity > MaxPoolCapacity {
		return fmt.Errorf("%w: capacity must be 1..%d, got %d", ErrInvalid, MaxPoolCapacity, capacity)
	}
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, sqlPoolUpsert, name, capacity, s.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("set pool %q: %w", name, err)
	}
	return nil
}

// RemovePool deletes pool name. While it has live holders or waiters it
// refuses with ErrPoolBusy, unless force: then their rows go too (holders'
// commands run on; their extends and releases find nothing; waiters get
// ErrPoolNotFound). It returns how many live holders and waiters it dropped,
// or, with ErrPoolBusy, how many there are.
func (s *Store) RemovePool(ctx context.Context, name string, force bool) (holders, waiters int, err error) {
	if err := ValidatePoolName(name); err != nil {
		return 0, 0, err
	}
	err = s.withTx(ctx, func(ctx context.Context, tx querier) error {
		holders, waiters = 0, 0
		var capacity int
		if err := tx.QueryRowContext(ctx, sqlPoolCapacity, name).Scan(&capacity); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrPoolNotFound
			}
			return err
		}
		if err := tx.QueryRowContext(ctx, sqlPoolLiveRows, name, s.now()).Scan(&holders, &waiters); err != nil {
			return err
		}
		if holders+waiters > 0 && !force {
			return fmt.Errorf("%w: %d holder(s) and %d waiter(s)", ErrPoolBusy, holders, waiters)
		}
		for _, stmt := range []string{sqlPoolDeleteWaiters, sqlPoolDeleteGrants, sqlPoolDelete} {
			if _, err := tx.ExecContext(ctx, stmt, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return holders, waiters, fmt.Errorf("remove pool %q: %w", name, err)
	}
	return holders, waiters, nil
}

// Pools lists the state of every pool, by name.
func (s *Store) Pools(ctx context.Context) ([]PoolStatus, error) {
	rows, err := s.query(ctx, sqlPoolNames)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list pools: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	out := make([]PoolStatus, 0, len(names))
	for _, n := range names {
		p, err := s.Pool(ctx, n)
		if errors.Is(err, ErrPoolNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Pool is the state of pool name: capacity, live holders, and live waiters
// in the order they will be served. ErrPoolNotFound when it is not set.
func (s *Store) Pool(ctx context.Context, name string) (PoolStatus, error) {
	if err := ValidatePoolName(name); err != nil {
		return PoolStatus{}, err
	}
	p := PoolStatus{Name: name, Holders: []PoolHolder{}, Waiters: []PoolWaiter{}}
	now := s.now()
	err := s.readRow(ctx, sqlPoolCapacity, []any{name}, &p.Capacity)
	if errors.Is(err, sql.ErrNoRows) {
		return PoolStatus{}, fmt.Errorf("pool %q: %w", name, ErrPoolNotFound)
	}
	if err != nil {
		return PoolStatus{}, fmt.Errorf("pool %q: %w", name, err)
	}
	rows, err := s.query(ctx, sqlPoolHolders, name, now)
	if err != nil {
		return PoolStatus{}, fmt.Errorf("pool %q: %w", name, err)
	}
	for rows.Next() {
		var h PoolHolder
		var arrived, granted, expires int64
		if err := rows.Scan(&h.Grant, &h.Slots, &h.Priority, &h.DAG, &h.RunID, &h.Step, &h.Host, &h.PID, &arrived, &granted, &expires); err != nil {
			rows.Close()
			return PoolStatus{}, fmt.Errorf("pool %q: %w", name, err)
		}
		h.ArrivedAt, h.GrantedAt, h.ExpiresAt = msTime(arrived), msTime(granted), msTime(expires)
		p.Used += h.Slots
		p.Holders = append(p.Holders, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return PoolStatus{}, fmt.Errorf("pool %q: %w", name, err)
	}
	rows, err = s.query(ctx, sqlPoolWaiters, name, now)
	if err != nil {
		return PoolStatus{}, fmt.Errorf("pool %q: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var w PoolWaiter
		var arrived, expires int64
		if err := rows.Scan(&w.Waiter, &w.Slots, &w.Priority, &w.DAG, &w.RunID, &w.Step, &w.Host, &w.PID, &arrived, &expires); err != nil {
			return PoolStatus{}, fmt.Errorf("pool %q: %w", name, err)
		}
		w.ArrivedAt, w.ExpiresAt = msTime(arrived), msTime(expires)
		p.Waiters = append(p.Waiters, w)
	}
	if err := rows.Err(); err != nil {
		return PoolStatus{}, fmt.Errorf("pool %q: %w", name, err)
	}
	return p, nil
}

// request is one Acquire: in line once it has a waiter id.
type request struct {
	opts    AcquireOptions
	secret  string
	id      int64 // waiter id; math.MaxInt64 until it joins the line
	arrived int64 // ms
}

// turn is what sqlPoolTurn reads.
type turn struct {
	capacity, used, ahead int
}

// grantable: nobody ranked before is waiting and the slots are free.
func (t turn) grantable(slots int) bool { return t.ahead == 0 && t.used+slots <= t.capacity }

// check reports a request that can never be granted.
func (t turn) check(r *request) error {
	if r.opts.Slots > t.capacity {
		return fmt.Errorf("%w: slots %d is more than the capacity %d of pool %q", ErrInvalid, r.opts.Slots, t.capacity, r.opts.Pool)
	}
	return nil
}

func scanTurn(row *sql.Row) (turn, error) {
	var t turn
	err := row.Scan(&t.capacity, &t.used, &t.ahead)
	if errors.Is(err, sql.ErrNoRows) {
		return turn{}, ErrPoolNotFound
	}
	return t, err
}

// Acquire takes opts.Slots slots of pool opts.Pool, waiting in line as
// long as it must, and returns the grant. A request for more slots than the
// pool's capacity fails with ErrInvalid; a pool that is not set, with
// ErrPoolNotFound. When ctx ends while it waits, the request leaves the
// line at once and Acquire returns an error wrapping context.Cause(ctx).
func (s *Store) Acquire(ctx context.Context, opts AcquireOptions) (*Grant, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("acquire %d slot(s) of pool %q: %w", opts.Slots, opts.Pool, context.Cause(ctx))
	}
	r := &request{opts: opts, secret: poolSecret(), id: math.MaxInt64}
	g, err := s.enter(ctx, r)
	if err == nil && g == nil {
		if opts.OnWait != nil {
			opts.OnWait()
		}
		g, err = s.wait(ctx, r)
		if err != nil {
			// Leave the line now: those behind need not wait for the
			// registration to run out.
			if leaveErr := s.leave(context.WithoutCancel(ctx), r); leaveErr != nil {
				err = errors.Join(err, leaveErr)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("acquire %d slot(s) of pool %q: %w", opts.Slots, opts.Pool, err)
	}
	return g, nil
}

// enter grants r at once when nobody ranked before it waits and the slots
// are free, and otherwise puts it in line: one write transaction.
func (s *Store) enter(ctx context.Context, r *request) (*Grant, error) {
	var g *Grant
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		g, r.id = nil, math.MaxInt64
		now := s.now()
		t, err := s.sweepAndTurn(ctx, tx, r, now)
		if err != nil {
			return err
		}
		r.arrived = now
		if t.grantable(r.opts.Slots) {
			g, err = s.insertGrant(ctx, tx, r, now)
			return err
		}
		return s.insertWaiter(ctx, tx, r, nil, now)
	})
	return g, err
}

// sweepAndTurn deletes the pool's expired rows and reads r's turn, inside a
// write transaction.
func (s *Store) sweepAndTurn(ctx context.Context, tx querier, r *request, now int64) (turn, error) {
	for _, stmt := range []string{sqlPoolSweepGrants, sqlPoolSweepWaiters} {
		if _, err := tx.ExecContext(ctx, stmt, r.opts.Pool, now); err != nil {
			return turn{}, err
		}
	}
	t, err := scanTurn(tx.QueryRowContext(ctx, sqlPoolTurn, r.opts.Pool, now, r.opts.Priority, r.id))
	if err != nil {
		return turn{}, err
	}
	return t, t.check(r)
}

func (s *Store) insertGrant(ctx context.Context, tx querier, r *request, now int64) (*Grant, error) {
	h := r.opts.Holder
	expires := now + r.opts.Lease.Milliseconds()
	res, err := tx.ExecContext(ctx, sqlPoolInsertGrant, r.secret, r.opts.Pool, r.opts.Slots, r.opts.Priority,
		h.DAG, h.RunID, h.Step, h.Host, h.PID, r.arrived, now, expires)
	if err != nil {
		return nil, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, err
	}
	return &Grant{ID: id, Pool: r.opts.Pool, Slots: r.opts.Slots, ExpiresAt: msTime(expires),
		Waited: time.Duration(now-r.arrived) * time.Millisecond, secret: r.secret}, nil
}

// insertWaiter puts r in line: with a new arrival number when id is nil.
func (s *Store) insertWaiter(ctx context.Context, tx querier, r *request, id any, now int64) error {
	h := r.opts.Holder
	res, err := tx.ExecContext(ctx, sqlPoolInsertWaiter, id, r.secret, r.opts.Pool, r.opts.Slots, r.opts.Priority,
		h.DAG, h.RunID, h.Step, h.Host, h.PID, r.arrived, now+r.opts.Registration.Milliseconds())
	if err != nil {
		return err
	}
	if id == nil {
		r.id, err = res.LastInsertId()
	}
	return err
}

// wait polls r's turn with reads until it can be granted, then takes the
// slots in a write transaction. It refreshes r's registration every third
// of it.
func (s *Store) wait(ctx context.Context, r *request) (*Grant, error) {
	refreshEvery := r.opts.Registration / 3
	nextRefresh := time.Now().Add(refreshEvery)
	timer := time.NewTimer(jitter(r.opts.Poll))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-timer.C:
		}
		if !time.Now().Before(nextRefresh) {
			if err := s.refresh(ctx, r); err != nil {
				return nil, err
			}
			nextRefresh = time.Now().Add(refreshEvery)
		}
		t, err := s.readTurn(ctx, r)
		if err == nil {
			err = t.check(r)
		}
		if err != nil {
			return nil, err
		}
		if t.grantable(r.opts.Slots) {
			g, err := s.take(ctx, r)
			if err != nil || g != nil {
				return g, err
			}
		}
		timer.Reset(jitter(pollInterval(r.opts.Poll, t.ahead)))
	}
}

// pollSlowdown is how much less often than Poll a request far back in line
// reads its turn.
const pollSlowdown = 5

// pollInterval is the pause before the next read of a request with ahead
// requests before it: Poll for the first two in line (the head, and the one
// that is head as soon as the head is served), then Poll times the number
// ahead, up to pollSlowdown times Poll. Only the head can be granted, so
// those further back lose nothing by reading less, and 50 waiters cost
// about a quarter of the reads.
func pollInterval(poll time.Duration, ahead int) time.Duration {
	return poll * time.Duration(min(max(ahead, 1), pollSlowdown))
}

// readTurn reads r's turn outside a transaction: no write lock.
func (s *Store) readTurn(ctx context.Context, r *request) (turn, error) {
	var t turn
	err := s.readRow(ctx, sqlPoolTurn, []any{r.opts.Pool, s.now(), r.opts.Priority, r.id}, &t.capacity, &t.used, &t.ahead)
	if errors.Is(err, sql.ErrNoRows) {
		return turn{}, ErrPoolNotFound
	}
	return t, err
}

// take grants r if its turn has come, checked again under the write lock,
// and takes it out of the line. Nil and no error: not yet.
func (s *Store) take(ctx context.Context, r *request) (*Grant, error) {
	var g *Grant
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		g = nil
		now := s.now()
		t, err := s.sweepAndTurn(ctx, tx, r, now)
		if err != nil {
			return err
		}
		if !t.grantable(r.opts.Slots) {
			return errRollback
		}
		if _, err := tx.ExecContext(ctx, sqlPoolDeleteWaiter, r.id, r.secret); err != nil {
			return err
		}
		g, err = s.insertGrant(ctx, tx, r, now)
		return err
	})
	return g, err
}

// refresh pushes r's registration forward. A row that is gone (its process
// stalled past the registration and another request swept it) comes back
// with its own arrival number.
func (s *Store) refresh(ctx context.Context, r *request) error {
	return s.withTx(ctx, func(ctx context.Context, tx querier) error {
		now := s.now()
		res, err := tx.ExecContext(ctx, sqlPoolRefreshWaiter, r.id, r.secret, now+r.opts.Registration.Milliseconds())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		return s.insertWaiter(ctx, tx, r, r.id, now)
	})
}

// leave takes r out of the line.
func (s *Store) leave(ctx context.Context, r *request) error {
	return s.withTx(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, sqlPoolDeleteWaiter, r.id, r.secret)
		return err
	})
}

// ExtendGrant pushes the end of g's lease to d from now (a heartbeat). It
// fails with ErrLeaseLost when the grant has expired (its slots may belong
// to another request now) or was removed.
func (s *Store) ExtendGrant(ctx context.Context, g *Grant, d time.Duration) error {
	if g == nil || d <= 0 {
		return fmt.Errorf("%w: extend needs a grant and a positive duration", ErrInvalid)
	}
	var expires int64
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		now := s.now()
		expires = now + d.Milliseconds()
		res, err := tx.ExecContext(ctx, sqlPoolExtendGrant, g.ID, g.secret, expires, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrLeaseLost
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("extend grant %d of pool %q: %w", g.ID, g.Pool, err)
	}
	g.ExpiresAt = msTime(expires)
	return nil
}

// ReleaseGrant gives g's slots back at once. It fails with ErrLeaseLost
// when the grant is gone already (expired and swept, or its pool removed).
func (s *Store) ReleaseGrant(ctx context.Context, g *Grant) error {
	if g == nil {
		return fmt.Errorf("%w: release needs a grant", ErrInvalid)
	}
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.ExecContext(ctx, sqlPoolReleaseGrant, g.ID, g.secret)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrLeaseLost
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release grant %d of pool %q: %w", g.ID, g.Pool, err)
	}
	return nil
}

func poolSecret() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// jitter spreads d over [0.75d, 1.25d), so that waiters started together
// do not poll in step.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + mathrand.N(d/2+1)
}
