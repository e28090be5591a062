package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/daguq/daguq/queuestore"
)

// Pools: the rules are queuestore.PoolKeeper's, the same as the SQLite
// store's; the tables are migrations/0002_pools.sql's.

const (
	// sqlPoolLock makes the writers of one pool take turns: every write
	// transaction of a pool locks its row first. No row (a pool not set
	// yet): nothing to lock, and the statements that follow find no pool.
	sqlPoolLock = `SELECT 1 FROM daguq_pools WHERE name = $1 FOR UPDATE`

	// sqlPoolTurn: the capacity, the slots of live grants, and how many
	// live waiters are served before a request of priority $3 that is
	// waiter $4, at $2.
	sqlPoolTurn = `
SELECT p.capacity,
       (SELECT coalesce(sum(g.slots), 0) FROM daguq_pool_grants g WHERE g.pool = $1 AND g.expires_at > $2),
       (SELECT count(*) FROM daguq_pool_waiters w
         WHERE w.pool = $1 AND w.expires_at > $2 AND (w.priority > $3 OR (w.priority = $3 AND w.id < $4)))
FROM daguq_pools p WHERE p.name = $1`

	sqlPoolSweepGrants  = `DELETE FROM daguq_pool_grants WHERE pool = $1 AND expires_at <= $2`
	sqlPoolSweepWaiters = `DELETE FROM daguq_pool_waiters WHERE pool = $1 AND expires_at <= $2`

	sqlPoolInsertGrant = `
INSERT INTO daguq_pool_grants (secret, pool, slots, priority, dag, run_id, step, host, pid, arrived_at, granted_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`
	sqlPoolInsertWaiter = `
INSERT INTO daguq_pool_waiters (secret, pool, slots, priority, dag, run_id, step, host, pid, arrived_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`
	// sqlPoolReinsertWaiter: a waiter whose row was swept while its process
	// stalled comes back with its own arrival number.
	sqlPoolReinsertWaiter = `
INSERT INTO daguq_pool_waiters (id, secret, pool, slots, priority, dag, run_id, step, host, pid, arrived_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`

	sqlPoolRefreshWaiter = `UPDATE daguq_pool_waiters SET expires_at = $3 WHERE id = $1 AND secret = $2`
	sqlPoolDeleteWaiter  = `DELETE FROM daguq_pool_waiters WHERE id = $1 AND secret = $2`
	// A grant is extended only while it is live: once it has expired its
	// slots may have gone to another request.
	sqlPoolExtendGrant = `UPDATE daguq_pool_grants SET expires_at = $3 WHERE id = $1 AND secret = $2 AND expires_at > $4`
	sqlPoolDeleteGrant = `DELETE FROM daguq_pool_grants WHERE id = $1 AND secret = $2`

	sqlPoolUpsert = `
INSERT INTO daguq_pools (name, capacity, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity, updated_at = excluded.updated_at`
	sqlPoolNames    = `SELECT name FROM daguq_pools ORDER BY name`
	sqlPoolCapacity = `SELECT capacity FROM daguq_pools WHERE name = $1`
	sqlPoolHolders  = `
SELECT id, slots, priority, dag, run_id, step, host, pid, arrived_at, granted_at, expires_at
FROM daguq_pool_grants WHERE pool = $1 AND expires_at > $2
ORDER BY granted_at, id`
	sqlPoolWaiters = `
SELECT id, slots, priority, dag, run_id, step, host, pid, arrived_at, expires_at
FROM daguq_pool_waiters WHERE pool = $1 AND expires_at > $2
ORDER BY priority DESC, id`
	sqlPoolLiveRows = `
SELECT (SELECT count(*) FROM daguq_pool_grants WHERE pool = $1 AND expires_at > $2),
       (SELECT count(*) FROM daguq_pool_waiters WHERE pool = $1 AND expires_at > $2)`
	sqlPoolDeleteWaiters = `DELETE FROM daguq_pool_waiters WHERE pool = $1`
	sqlPoolDeleteGrants  = `DELETE FROM daguq_pool_grants WHERE pool = $1`
	sqlPoolDelete        = `DELETE FROM daguq_pools WHERE name = $1`
)

// poolRows keeps pools in the store's tables.
type poolRows struct{ s *Store }

var _ queuestore.PoolRows = poolRows{}

func (r poolRows) PoolNow() int64 { return r.s.now() }

func (r poolRows) WritePool(ctx context.Context, pool string, fn func(context.Context, queuestore.PoolTx) error) error {
	err := r.s.withTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlPoolLock, pool); err != nil {
			return err
		}
		err := fn(ctx, poolTx{tx})
		if errors.Is(err, queuestore.ErrPoolRollback) {
			return errRollback
		}
		return err
	})
	return r.s.err(err)
}

func (r poolRows) ReadPoolTurn(ctx context.Context, q queuestore.PoolTurnQuery) (queuestore.PoolTurn, error) {
	t, err := readTurn(ctx, r.s.pool, q)
	return t, r.s.err(err)
}

func (r poolRows) PoolNames(ctx context.Context) ([]string, error) {
	rows, err := r.s.pool.Query(ctx, sqlPoolNames)
	if err != nil {
		return nil, r.s.err(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, r.s.err(err)
}

func (r poolRows) ReadPool(ctx context.Context, name string, now int64) (queuestore.PoolStatus, error) {
	var p queuestore.PoolStatus
	err := r.s.pool.QueryRow(ctx, sqlPoolCapacity, name).Scan(&p.Capacity)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, queuestore.ErrPoolNotFound
	}
	if err != nil {
		return p, r.s.err(err)
	}
	rows, err := r.s.pool.Query(ctx, sqlPoolHolders, name, now)
	if err != nil {
		return p, r.s.err(err)
	}
	p.Holders, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (queuestore.PoolHolder, error) {
		var h queuestore.PoolHolder
		var arrived, granted, expires int64
		err := row.Scan(&h.Grant, &h.Slots, &h.Priority, &h.DAG, &h.RunID, &h.Step, &h.Host, &h.PID, &arrived, &granted, &expires)
		h.ArrivedAt, h.GrantedAt, h.ExpiresAt = msTime(arrived), msTime(granted), msTime(expires)
		return h, err
	})
	if err != nil {
		return p, r.s.err(err)
	}
	rows, err = r.s.pool.Query(ctx, sqlPoolWaiters, name, now)
	if err != nil {
		return p, r.s.err(err)
	}
	p.Waiters, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (queuestore.PoolWaiter, error) {
		var w queuestore.PoolWaiter
		var arrived, expires int64
		err := row.Scan(&w.Waiter, &w.Slots, &w.Priority, &w.DAG, &w.RunID, &w.Step, &w.Host, &w.PID, &arrived, &expires)
		w.ArrivedAt, w.ExpiresAt = msTime(arrived), msTime(expires)
		return w, err
	})
	return p, r.s.err(err)
}

func readTurn(ctx context.Context, q querier, tq queuestore.PoolTurnQuery) (queuestore.PoolTurn, error) {
	var t queuestore.PoolTurn
	err := q.QueryRow(ctx, sqlPoolTurn, tq.Pool, tq.Now, tq.Priority, tq.Waiter).Scan(&t.Capacity, &t.Used, &t.Ahead)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, queuestore.ErrPoolNotFound
	}
	return t, err
}

// poolTx runs the statements of pools in a transaction that holds the
// pool's row lock.
type poolTx struct{ tx pgx.Tx }

func (t poolTx) PoolTurn(ctx context.Context, q queuestore.PoolTurnQuery) (queuestore.PoolTurn, error) {
	return readTurn(ctx, t.tx, q)
}

func (t poolTx) SweepPool(ctx context.Context, pool string, now int64) error {
	for _, stmt := range []string{sqlPoolSweepGrants, sqlPoolSweepWaiters} {
		if _, err := t.tx.Exec(ctx, stmt, pool, now); err != nil {
			return err
		}
	}
	return nil
}

func (t poolTx) InsertGrant(ctx context.Context, r queuestore.PoolRow) (int64, error) {
	h := r.Holder
	var id int64
	err := t.tx.QueryRow(ctx, sqlPoolInsertGrant, r.Secret, r.Pool, r.Slots, r.Priority,
		h.DAG, h.RunID, h.Step, h.Host, h.PID, r.ArrivedAt, r.GrantedAt, r.ExpiresAt).Scan(&id)
	return id, err
}

func (t poolTx) InsertWaiter(ctx context.Context, r queuestore.PoolRow, id int64) (int64, error) {
	h := r.Holder
	if id != 0 {
		_, err := t.tx.Exec(ctx, sqlPoolReinsertWaiter, id, r.Secret, r.Pool, r.Slots, r.Priority,
			h.DAG, h.RunID, h.Step, h.Host, h.PID, r.ArrivedAt, r.ExpiresAt)
		return id, err
	}
	err := t.tx.QueryRow(ctx, sqlPoolInsertWaiter, r.Secret, r.Pool, r.Slots, r.Priority,
		h.DAG, h.RunID, h.Step, h.Host, h.PID, r.ArrivedAt, r.ExpiresAt).Scan(&id)
	return id, err
}

func (t poolTx) RefreshWaiter(ctx context.Context, id int64, secret string, expires int64) (bool, error) {
	return changed(t.tx.Exec(ctx, sqlPoolRefreshWaiter, id, secret, expires))
}

func (t poolTx) DeleteWaiter(ctx context.Context, id int64, secret string) error {
	_, err := t.tx.Exec(ctx, sqlPoolDeleteWaiter, id, secret)
	return err
}

func (t poolTx) ExtendGrant(ctx context.Context, id int64, secret string, expires, now int64) (bool, error) {
	return changed(t.tx.Exec(ctx, sqlPoolExtendGrant, id, secret, expires, now))
}

func (t poolTx) DeleteGrant(ctx context.Context, id int64, secret string) (bool, error) {
	return changed(t.tx.Exec(ctx, sqlPoolDeleteGrant, id, secret))
}

func (t poolTx) UpsertPool(ctx context.Context, name string, capacity int, now int64) error {
	_, err := t.tx.Exec(ctx, sqlPoolUpsert, name, capacity, now)
	return err
}

func (t poolTx) PoolExists(ctx context.Context, name string) (bool, error) {
	var capacity int
	err := t.tx.QueryRow(ctx, sqlPoolCapacity, name).Scan(&capacity)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t poolTx) LivePoolRows(ctx context.Context, name string, now int64) (grants, waiters int, err error) {
	err = t.tx.QueryRow(ctx, sqlPoolLiveRows, name, now).Scan(&grants, &waiters)
	return grants, waiters, err
}

func (t poolTx) DeletePool(ctx context.Context, name string) error {
	for _, stmt := range []string{sqlPoolDeleteWaiters, sqlPoolDeleteGrants, sqlPoolDelete} {
		if _, err := t.tx.Exec(ctx, stmt, name); err != nil {
			return err
		}
	}
	return nil
}

// changed reports whether a statement changed a row.
func changed(tag pgconn.CommandTag, err error) (bool, error) {
	return err == nil && tag.RowsAffected() > 0, err
}
