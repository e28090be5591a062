package queuestore

// The statements of pools (pool.go); the tables are in
// migrations/0003_pools.sql. Values are always bound.

const (
	// sqlPoolTurn is what decides a request: the pool's capacity, the slots
	// its live grants hold, and how many live waiters are served before a
	// request of priority ?3 that arrived as waiter ?4 (a request not yet
	// in line passes the largest id: every waiter of its priority is ahead).
	// ?2 is now. No row: the pool is not set.
	sqlPoolTurn = `
SELECT p.capacity,
       (SELECT coalesce(sum(g.slots), 0) FROM pool_grants g WHERE g.pool = ?1 AND g.expires_at > ?2),
       (SELECT count(*) FROM pool_waiters w
         WHERE w.pool = ?1 AND w.expires_at > ?2 AND (w.priority > ?3 OR (w.priority = ?3 AND w.id < ?4)))
FROM pools p WHERE p.name = ?1`

	// Rows whose process stopped refreshing them: they count no more from
	// their end time, and the next write of the pool deletes them.
	sqlPoolSweepGrants  = `DELETE FROM pool_grants WHERE pool = ?1 AND expires_at <= ?2`
	sqlPoolSweepWaiters = `DELETE FROM pool_waiters WHERE pool = ?1 AND expires_at <= ?2`

	sqlPoolInsertGrant = `
INSERT INTO pool_grants (secret, pool, slots, priority, dag, run_id, step, host, pid, arrived_at, granted_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)`

	// sqlPoolInsertWaiter: ?1 NULL takes the next arrival number; a waiter
	// whose row was swept while its process stalled comes back with its own.
	sqlPoolInsertWaiter = `
INSERT INTO pool_waiters (id, secret, pool, slots, priority, dag, run_id, step, host, pid, arrived_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)`

	sqlPoolRefreshWaiter = `UPDATE pool_waiters SET expires_at = ?3 WHERE id = ?1 AND secret = ?2`
	sqlPoolDeleteWaiter  = `DELETE FROM pool_waiters WHERE id = ?1 AND secret = ?2`

	// A grant is extended only while it is live: once it has expired its
	// slots may have gone to another request, and extending it would put
	// the pool over its capacity.
	sqlPoolExtendGrant  = `UPDATE pool_grants SET expires_at = ?3 WHERE id = ?1 AND secret = ?2 AND expires_at > ?4`
	sqlPoolReleaseGrant = `DELETE FROM pool_grants WHERE id = ?1 AND secret = ?2`

	sqlPoolUpsert = `
INSERT INTO pools (name, capacity, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity, updated_at = excluded.updated_at`

	sqlPoolNames    = `SELECT name FROM pools ORDER BY name`
	sqlPoolCapacity = `SELECT capacity FROM pools WHERE name = ?1`

	sqlPoolHolders = `
SELECT id, slots, priority, dag, run_id, step, host, pid, arrived_at, granted_at, expires_at
FROM pool_grants WHERE pool = ?1 AND expires_at > ?2
ORDER BY granted_at, id`

	sqlPoolWaiters = `
SELECT id, slots, priority, dag, run_id, step, host, pid, arrived_at, expires_at
FROM pool_waiters WHERE pool = ?1 AND expires_at > ?2
ORDER BY priority DESC, id`

	sqlPoolLiveRows = `
SELECT (SELECT count(*) FROM pool_grants WHERE pool = ?1 AND expires_at > ?2),
       (SELECT count(*) FROM pool_waiters WHERE pool = ?1 AND expires_at > ?2)`

	sqlPoolDelete        = `DELETE FROM pools WHERE name = ?1`
	sqlPoolDeleteGrants  = `DELETE FROM pool_grants WHERE pool = ?1`
	sqlPoolDeleteWaiters = `DELETE FROM pool_waiters WHERE pool = ?1`
)
