package queuestore

import (
	"context"
	"database/sql"
	"errors"
)

// sqlitePoolRows keeps pools in the SQLite tables of migrations/0003_pools.sql,
// with the statements of pool_sql.go. Every write transaction holds the
// database's write lock, so writers of one pool never overlap.
type sqlitePoolRows struct{ s *Store }

var _ PoolRows = sqlitePoolRows{}

func (r sqlitePoolRows) PoolNow() int64 { return r.s.now() }

func (r sqlitePoolRows) WritePool(ctx context.Context, _ string, fn func(context.Context, PoolTx) error) error {
	return r.s.withTx(ctx, func(ctx context.Context, q querier) error {
		err := fn(ctx, sqlitePoolTx{q})
		if errors.Is(err, ErrPoolRollback) {
			return errRollback
		}
		return err
	})
}

func (r sqlitePoolRows) ReadPoolTurn(ctx context.Context, q PoolTurnQuery) (PoolTurn, error) {
	var t PoolTurn
	err := r.s.readRow(ctx, sqlPoolTurn, []any{q.Pool, q.Now, q.Priority, q.Waiter}, &t.Capacity, &t.Used, &t.Ahead)
	if errors.Is(err, sql.ErrNoRows) {
		return PoolTurn{}, ErrPoolNotFound
	}
	return t, err
}

func (r sqlitePoolRows) PoolNames(ctx context.Context) ([]string, error) {
	return r.s.readNames(ctx, sqlPoolNames)
}

func (r sqlitePoolRows) ReadPool(ctx context.Context, name string, now int64) (PoolStatus, error) {
	var p PoolStatus
	err := r.s.readRow(ctx, sqlPoolCapacity, []any{name}, &p.Capacity)
	if errors.Is(err, sql.ErrNoRows) {
		return PoolStatus{}, ErrPoolNotFound
	}
	if err != nil {
		return PoolStatus{}, err
	}
	rows, err := r.s.query(ctx, sqlPoolHolders, name, now)
	if err != nil {
		return PoolStatus{}, err
	}
	for rows.Next() {
		var h PoolHolder
		var arrived, granted, expires int64
		if err := rows.Scan(&h.Grant, &h.Slots, &h.Priority, &h.DAG, &h.RunID, &h.Step, &h.Host, &h.PID, &arrived, &granted, &expires); err != nil {
			rows.Close()
			return PoolStatus{}, err
		}
		h.ArrivedAt, h.GrantedAt, h.ExpiresAt = msTime(arrived), msTime(granted), msTime(expires)
		p.Holders = append(p.Holders, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return PoolStatus{}, err
	}
	rows, err = r.s.query(ctx, sqlPoolWaiters, name, now)
	if err != nil {
		return PoolStatus{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var w PoolWaiter
		var arrived, expires int64
		if err := rows.Scan(&w.Waiter, &w.Slots, &w.Priority, &w.DAG, &w.RunID, &w.Step, &w.Host, &w.PID, &arrived, &expires); err != nil {
			return PoolStatus{}, err
		}
		w.ArrivedAt, w.ExpiresAt = msTime(arrived), msTime(expires)
		p.Waiters = append(p.Waiters, w)
	}
	return p, rows.Err()
}

// sqlitePoolTx runs the statements of pools in a write transaction.
type sqlitePoolTx struct{ q querier }

func (t sqlitePoolTx) PoolTurn(ctx context.Context, q PoolTurnQuery) (PoolTurn, error) {
	var turn PoolTurn
	err := t.q.QueryRowContext(ctx, sqlPoolTurn, q.Pool, q.Now, q.Priority, q.Waiter).Scan(&turn.Capacity, &turn.Used, &turn.Ahead)
	if errors.Is(err, sql.ErrNoRows) {
		return PoolTurn{}, ErrPoolNotFound
	}
	return turn, err
}

func (t sqlitePoolTx) SweepPool(ctx context.Context, pool string, now int64) error {
	for _, stmt := range []string{sqlPoolSweepGrants, sqlPoolSweepWaiters} {
		if _, err := t.q.ExecContext(ctx, stmt, pool, now); err != nil {
			return err
		}
	}
	return nil
}

func (t sqlitePoolTx) InsertGrant(ctx context.Context, r PoolRow) (int64, error) {
	h := r.Holder
	res, err := t.q.ExecContext(ctx, sqlPoolInsertGrant, r.Secret, r.Pool, r.Slots, r.Priority,
		h.DAG, h.RunID, h.Step, h.Host, h.PID, r.ArrivedAt, r.GrantedAt, r.ExpiresAt)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func (t sqlitePoolTx) InsertWaiter(ctx context.Context, r PoolRow, id int64) (int64, error) {
	var idArg any // NULL takes the next arrival number
	if id != 0 {
		idArg = id
	}
	h := r.Holder
	res, err := t.q.ExecContext(ctx, sqlPoolInsertWaiter, idArg, r.Secret, r.Pool, r.Slots, r.Priority,
		h.DAG, h.RunID, h.Step, h.Host, h.PID, r.ArrivedAt, r.ExpiresAt)
	if err != nil {
		return 0, err
	}
	if id != 0 {
		return id, nil
	}
	return res.LastInsertId()
}

func (t sqlitePoolTx) RefreshWaiter(ctx context.Context, id int64, secret string, expires int64) (bool, error) {
	return t.changed(t.q.ExecContext(ctx, sqlPoolRefreshWaiter, id, secret, expires))
}

func (t sqlitePoolTx) DeleteWaiter(ctx context.Context, id int64, secret string) error {
	_, err := t.q.ExecContext(ctx, sqlPoolDeleteWaiter, id, secret)
	return err
}

func (t sqlitePoolTx) ExtendGrant(ctx context.Context, id int64, secret string, expires, now int64) (bool, error) {
	return t.changed(t.q.ExecContext(ctx, sqlPoolExtendGrant, id, secret, expires, now))
}

func (t sqlitePoolTx) DeleteGrant(ctx context.Context, id int64, secret string) (bool, error) {
	return t.changed(t.q.ExecContext(ctx, sqlPoolReleaseGrant, id, secret))
}

func (t sqlitePoolTx) UpsertPool(ctx context.Context, name string, capacity int, now int64) error {
	_, err := t.q.ExecContext(ctx, sqlPoolUpsert, name, capacity, now)
	return err
}

func (t sqlitePoolTx) PoolExists(ctx context.Context, name string) (bool, error) {
	var capacity int
	err := t.q.QueryRowContext(ctx, sqlPoolCapacity, name).Scan(&capacity)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (t sqlitePoolTx) LivePoolRows(ctx context.Context, name string, now int64) (grants, waiters int, err error) {
	err = t.q.QueryRowContext(ctx, sqlPoolLiveRows, name, now).Scan(&grants, &waiters)
	return grants, waiters, err
}

func (t sqlitePoolTx) DeletePool(ctx context.Context, name string) error {
	for _, stmt := range []string{sqlPoolDeleteWaiters, sqlPoolDeleteGrants, sqlPoolDelete} {
		if _, err := t.q.ExecContext(ctx, stmt, name); err != nil {
			return err
		}
	}
	return nil
}

// changed reports whether a statement changed a row.
func (sqlitePoolTx) changed(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
