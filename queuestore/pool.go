package queuestore

import (
	"context"
	"crypto/rand"
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
	// LeaveContext, when set, is the context of leaving the line after the
	// context of Acquire ended (a stopping process's store context, which
	// ends at its stop deadline). Default: that context without its
	// cancellation.
	LeaveContext context.Context
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

// PoolBackend is the pools part of the store contract: both backends keep
// pools, with the same semantics, through a PoolKeeper.
type PoolBackend interface {
	SetPool(ctx context.Context, name string, capacity int) error
	RemovePool(ctx context.Context, name string, force bool) (holders, waiters int, err error)
	Pools(ctx context.Context) ([]PoolStatus, error)
	Pool(ctx context.Context, name string) (PoolStatus, error)
	Acquire(ctx context.Context, opts AcquireOptions) (*Grant, error)
	ExtendGrant(ctx context.Context, g *Grant, d time.Duration) error
	ReleaseGrant(ctx context.Context, g *Grant) error
}

// PoolKeeper keeps pools on a backend's tables (PoolRows): the rules of
// serving, waiting, leases and fencing live here once, the statements in
// each backend.
type PoolKeeper struct {
	rows PoolRows
}

// NewPoolKeeper keeps pools in rows.
func NewPoolKeeper(rows PoolRows) *PoolKeeper { return &PoolKeeper{rows: rows} }

var _ PoolBackend = (*PoolKeeper)(nil)

// PoolRows is what a backend gives a PoolKeeper: its clock, reads, and
// write transactions on one pool.
type PoolRows interface {
	// PoolNow is the store's clock, in ms since the Unix epoch.
	PoolNow() int64
	// WritePool runs fn in a write transaction that no other writer of
	// pool runs alongside, and commits it. When fn returns ErrPoolRollback
	// it rolls back and returns nil. It may run fn again (after a busy
	// database or a deadlock), so fn resets what it returns.
	WritePool(ctx context.Context, pool string, fn func(ctx context.Context, tx PoolTx) error) error
	// ReadPoolTurn is PoolTx.PoolTurn outside a write transaction.
	ReadPoolTurn(ctx context.Context, q PoolTurnQuery) (PoolTurn, error)
	// PoolNames lists the pools by name.
	PoolNames(ctx context.Context) ([]string, error)
	// ReadPool reads a pool's capacity, its grants live at now (by grant
	// time, then id) and its waiters live at now (by priority, highest
	// first, then id); ErrPoolNotFound when the pool is not set.
	ReadPool(ctx context.Context, name string, now int64) (PoolStatus, error)
}

// PoolTx runs the statements of pools inside a PoolRows.WritePool
// transaction. Rows are live while their expires_at is after now.
type PoolTx interface {
	// PoolTurn reads what decides a request (see PoolTurn);
	// ErrPoolNotFound when the pool is not set.
	PoolTurn(ctx context.Context, q PoolTurnQuery) (PoolTurn, error)
	// SweepPool deletes the pool's grants and waiters that are not live.
	SweepPool(ctx context.Context, pool string, now int64) error
	// InsertGrant adds a grant and returns its id.
	InsertGrant(ctx context.Context, r PoolRow) (int64, error)
	// InsertWaiter puts a waiter in line with id, or with the next arrival
	// number when id is 0, and returns its id.
	InsertWaiter(ctx context.Context, r PoolRow, id int64) (int64, error)
	// RefreshWaiter sets the registration end of the waiter with id and
	// secret; false when there is no such row.
	RefreshWaiter(ctx context.Context, id int64, secret string, expires int64) (bool, error)
	// DeleteWaiter takes the waiter with id and secret out of the line.
	DeleteWaiter(ctx context.Context, id int64, secret string) error
	// ExtendGrant sets the lease end of the grant with id and secret if it
	// is live at now; false when it is not.
	ExtendGrant(ctx context.Context, id int64, secret string, expires, now int64) (bool, error)
	// DeleteGrant deletes the grant with id and secret; false when there is
	// no such row.
	DeleteGrant(ctx context.Context, id int64, secret string) (bool, error)
	// UpsertPool creates the pool or sets its capacity.
	UpsertPool(ctx context.Context, name string, capacity int, now int64) error
	// PoolExists reports whether the pool is set.
	PoolExists(ctx context.Context, name string) (bool, error)
	// LivePoolRows counts the pool's live grants and waiters.
	LivePoolRows(ctx context.Context, name string, now int64) (grants, waiters int, err error)
	// DeletePool deletes the pool with its grants and waiters.
	DeletePool(ctx context.Context, name string) error
}

// ErrPoolRollback, returned by a WritePool function, ends the transaction
// without committing and without an error.
var ErrPoolRollback = errors.New("queuestore: pool transaction rolled back")

// PoolRow is a grant or a waiter as stored.
type PoolRow struct {
	Secret    string
	Pool      string
	Slots     int
	Priority  int64
	Holder    Holder
	ArrivedAt int64 // ms
	GrantedAt int64 // ms; grants only
	ExpiresAt int64 // ms: the lease (grants) or the registration (waiters)
}

// PoolTurnQuery asks for the turn of a request of Priority that is waiter
// Waiter (math.MaxInt64 while it is not in line: every waiter of its
// priority is ahead), at Now.
type PoolTurnQuery struct {
	Pool     string
	Now      int64
	Priority int64
	Waiter   int64
}

// PoolTurn is what decides a request: the pool's capacity, the slots its
// live grants hold, and how many live waiters are served before it.
type PoolTurn struct {
	Capacity, Used, Ahead int
}

// grantable: nobody ranked before is waiting and the slots are free.
func (t PoolTurn) grantable(slots int) bool { return t.Ahead == 0 && t.Used+slots <= t.Capacity }

// check reports a request that can never be granted.
func (t PoolTurn) check(r *request) error {
	if r.opts.Slots > t.Capacity {
		return fmt.Errorf("%w: slots %d is more than the capacity %d of pool %q", ErrInvalid, r.opts.Slots, t.Capacity, r.opts.Pool)
	}
	return nil
}

// SetPool creates pool name with capacity slots, or changes its capacity.
// Lowering it takes nothing back: grants run on, and no request is granted
// until the live grants fit again.
func (k *PoolKeeper) SetPool(ctx context.Context, name string, capacity int) error {
	if err := ValidatePoolName(name); err != nil {
		return err
	}
	if capacity < 1 || capacity > MaxPoolCapacity {
		return fmt.Errorf("%w: capacity must be 1..%d, got %d", ErrInvalid, MaxPoolCapacity, capacity)
	}
	err := k.rows.WritePool(ctx, name, func(ctx context.Context, tx PoolTx) error {
		return tx.UpsertPool(ctx, name, capacity, k.rows.PoolNow())
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
func (k *PoolKeeper) RemovePool(ctx context.Context, name string, force bool) (holders, waiters int, err error) {
	if err := ValidatePoolName(name); err != nil {
		return 0, 0, err
	}
	err = k.rows.WritePool(ctx, name, func(ctx context.Context, tx PoolTx) error {
		holders, waiters = 0, 0
		exists, err := tx.PoolExists(ctx, name)
		if err != nil {
			return err
		}
		if !exists {
			return ErrPoolNotFound
		}
		if holders, waiters, err = tx.LivePoolRows(ctx, name, k.rows.PoolNow()); err != nil {
			return err
		}
		if holders+waiters > 0 && !force {
			return fmt.Errorf("%w: %d holder(s) and %d waiter(s)", ErrPoolBusy, holders, waiters)
		}
		return tx.DeletePool(ctx, name)
	})
	if err != nil {
		return holders, waiters, fmt.Errorf("remove pool %q: %w", name, err)
	}
	return holders, waiters, nil
}

// Pools lists the state of every pool, by name.
func (k *PoolKeeper) Pools(ctx context.Context) ([]PoolStatus, error) {
	names, err := k.rows.PoolNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	out := make([]PoolStatus, 0, len(names))
	for _, n := range names {
		p, err := k.Pool(ctx, n)
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
func (k *PoolKeeper) Pool(ctx context.Context, name string) (PoolStatus, error) {
	if err := ValidatePoolName(name); err != nil {
		return PoolStatus{}, err
	}
	p, err := k.rows.ReadPool(ctx, name, k.rows.PoolNow())
	if err != nil {
		return PoolStatus{}, fmt.Errorf("pool %q: %w", name, err)
	}
	p.Name, p.Used = name, 0
	for _, h := range p.Holders {
		p.Used += h.Slots
	}
	if p.Holders == nil {
		p.Holders = []PoolHolder{}
	}
	if p.Waiters == nil {
		p.Waiters = []PoolWaiter{}
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

func (r *request) turnQuery(now int64) PoolTurnQuery {
	return PoolTurnQuery{Pool: r.opts.Pool, Now: now, Priority: r.opts.Priority, Waiter: r.id}
}

func (r *request) row(granted, expires int64) PoolRow {
	return PoolRow{Secret: r.secret, Pool: r.opts.Pool, Slots: r.opts.Slots, Priority: r.opts.Priority,
		Holder: r.opts.Holder, ArrivedAt: r.arrived, GrantedAt: granted, ExpiresAt: expires}
}

// Acquire takes opts.Slots slots of pool opts.Pool, waiting in line as
// long as it must, and returns the grant. A request for more slots than the
// pool's capacity fails with ErrInvalid; a pool that is not set, with
// ErrPoolNotFound. When ctx ends while it waits, the request leaves the
// line at once and Acquire returns an error wrapping context.Cause(ctx).
func (k *PoolKeeper) Acquire(ctx context.Context, opts AcquireOptions) (*Grant, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("acquire %d slot(s) of pool %q: %w", opts.Slots, opts.Pool, context.Cause(ctx))
	}
	r := &request{opts: opts, secret: poolSecret(), id: math.MaxInt64}
	g, err := k.enter(ctx, r)
	if err == nil && g == nil {
		if opts.OnWait != nil {
			opts.OnWait()
		}
		g, err = k.wait(ctx, r)
		if err != nil && ctx.Err() != nil {
			// A statement the end of ctx cut short (PostgreSQL's run on
			// ctx) fails with context.Canceled: say why ctx ended.
			err = context.Cause(ctx)
		}
		if err != nil {
			// Leave the line now: those behind need not wait for the
			// registration to run out.
			leaveCtx := opts.LeaveContext
			if leaveCtx == nil {
				leaveCtx = context.WithoutCancel(ctx)
			}
			if leaveErr := k.leave(leaveCtx, r); leaveErr != nil {
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
func (k *PoolKeeper) enter(ctx context.Context, r *request) (*Grant, error) {
	var g *Grant
	err := k.rows.WritePool(ctx, r.opts.Pool, func(ctx context.Context, tx PoolTx) error {
		g, r.id = nil, math.MaxInt64
		now := k.rows.PoolNow()
		t, err := sweepAndTurn(ctx, tx, r, now)
		if err != nil {
			return err
		}
		r.arrived = now
		if t.grantable(r.opts.Slots) {
			g, err = insertGrant(ctx, tx, r, now)
			return err
		}
		r.id, err = tx.InsertWaiter(ctx, r.row(0, now+r.opts.Registration.Milliseconds()), 0)
		return err
	})
	return g, err
}

// sweepAndTurn deletes the pool's expired rows and reads r's turn, inside a
// write transaction.
func sweepAndTurn(ctx context.Context, tx PoolTx, r *request, now int64) (PoolTurn, error) {
	if err := tx.SweepPool(ctx, r.opts.Pool, now); err != nil {
		return PoolTurn{}, err
	}
	t, err := tx.PoolTurn(ctx, r.turnQuery(now))
	if err != nil {
		return PoolTurn{}, err
	}
	return t, t.check(r)
}

func insertGrant(ctx context.Context, tx PoolTx, r *request, now int64) (*Grant, error) {
	expires := now + r.opts.Lease.Milliseconds()
	id, err := tx.InsertGrant(ctx, r.row(now, expires))
	if err != nil {
		return nil, err
	}
	return &Grant{ID: id, Pool: r.opts.Pool, Slots: r.opts.Slots, ExpiresAt: msTime(expires),
		Waited: time.Duration(now-r.arrived) * time.Millisecond, secret: r.secret}, nil
}

// wait polls r's turn with reads until it can be granted, then takes the
// slots in a write transaction. It refreshes r's registration every third
// of it.
func (k *PoolKeeper) wait(ctx context.Context, r *request) (*Grant, error) {
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
			if err := k.refresh(ctx, r); err != nil {
				return nil, err
			}
			nextRefresh = time.Now().Add(refreshEvery)
		}
		t, err := k.rows.ReadPoolTurn(ctx, r.turnQuery(k.rows.PoolNow()))
		if err == nil {
			err = t.check(r)
		}
		if err != nil {
			return nil, err
		}
		if t.grantable(r.opts.Slots) {
			g, err := k.take(ctx, r)
			if err != nil || g != nil {
				return g, err
			}
		}
		timer.Reset(jitter(pollInterval(r.opts.Poll, t.Ahead)))
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

// take grants r if its turn has come, checked again in a write
// transaction, and takes it out of the line. Nil and no error: not yet.
func (k *PoolKeeper) take(ctx context.Context, r *request) (*Grant, error) {
	var g *Grant
	err := k.rows.WritePool(ctx, r.opts.Pool, func(ctx context.Context, tx PoolTx) error {
		g = nil
		now := k.rows.PoolNow()
		t, err := sweepAndTurn(ctx, tx, r, now)
		if err != nil {
			return err
		}
		if !t.grantable(r.opts.Slots) {
			return ErrPoolRollback
		}
		if err := tx.DeleteWaiter(ctx, r.id, r.secret); err != nil {
			return err
		}
		g, err = insertGrant(ctx, tx, r, now)
		return err
	})
	return g, err
}

// refresh pushes r's registration forward. A row that is gone (its process
// stalled past the registration and another request swept it) comes back
// with its own arrival number.
func (k *PoolKeeper) refresh(ctx context.Context, r *request) error {
	return k.rows.WritePool(ctx, r.opts.Pool, func(ctx context.Context, tx PoolTx) error {
		expires := k.rows.PoolNow() + r.opts.Registration.Milliseconds()
		found, err := tx.RefreshWaiter(ctx, r.id, r.secret, expires)
		if err != nil || found {
			return err
		}
		_, err = tx.InsertWaiter(ctx, r.row(0, expires), r.id)
		return err
	})
}

// leave takes r out of the line.
func (k *PoolKeeper) leave(ctx context.Context, r *request) error {
	return k.rows.WritePool(ctx, r.opts.Pool, func(ctx context.Context, tx PoolTx) error {
		return tx.DeleteWaiter(ctx, r.id, r.secret)
	})
}

// ExtendGrant pushes the end of g's lease to d from now (a heartbeat). It
// fails with ErrLeaseLost when the grant has expired (its slots may belong
// to another request now) or was removed.
func (k *PoolKeeper) ExtendGrant(ctx context.Context, g *Grant, d time.Duration) error {
	if g == nil || d <= 0 {
		return fmt.Errorf("%w: extend needs a grant and a positive duration", ErrInvalid)
	}
	var expires int64
	err := k.rows.WritePool(ctx, g.Pool, func(ctx context.Context, tx PoolTx) error {
		now := k.rows.PoolNow()
		expires = now + d.Milliseconds()
		live, err := tx.ExtendGrant(ctx, g.ID, g.secret, expires, now)
		if err == nil && !live {
			err = ErrLeaseLost
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("extend grant %d of pool %q: %w", g.ID, g.Pool, err)
	}
	g.ExpiresAt = msTime(expires)
	return nil
}

// ReleaseGrant gives g's slots back at once. It fails with ErrLeaseLost
// when the grant is gone already (expired and swept, or its pool removed).
func (k *PoolKeeper) ReleaseGrant(ctx context.Context, g *Grant) error {
	if g == nil {
		return fmt.Errorf("%w: release needs a grant", ErrInvalid)
	}
	err := k.rows.WritePool(ctx, g.Pool, func(ctx context.Context, tx PoolTx) error {
		found, err := tx.DeleteGrant(ctx, g.ID, g.secret)
		if err == nil && !found {
			err = ErrLeaseLost
		}
		return err
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
