package postgres

// Every statement of the store. Values are always bound; id lists travel as
// arrays (= ANY($n), unnest).
//
// Locks, in the order a transaction takes them (a fixed order: no deadlock
// among the store's own transactions, except bulk purges, which withTx runs
// again):
//
//  1. the queue's advisory lock: shared by claims and enqueues (they compute
//     sort keys from the queue's aging), exclusive for a change of aging
//     (which re-keys the ready set);
//  2. the queue's settings row, by claims of a queue with an in-flight
//     limit (FOR NO KEY UPDATE);
//  3. the lease row, by claims into a lease and by finishes;
//  4. message rows: claims and promotions skip locked ones, finishes lock
//     theirs in id order;
//  5. the queue's floor row, last: FOR SHARE by every transaction that
//     makes messages ready (the ready floor, below), FOR NO KEY UPDATE SKIP
//     LOCKED by a claim that raises the floor. A claim waits on no message
//     row, so a writer that waits here for a claim holding the row is in no
//     cycle. Counts are recorded with inserts, which lock nothing.

const (
	// sqlMigrationLock serializes migrations of one database: a
	// transaction-level lock ("daguq" as a number), released at commit.
	sqlMigrationLock = `SELECT pg_advisory_xact_lock(431130899825)`

	// sqlSchemaTables says whether the tables exist in the schema tables
	// are created in. It reads pg_class under the statement's snapshot:
	// to_regclass may answer from a session's cache that has not yet seen
	// another session's commit (it takes no lock), and would make a second
	// migrating process run a migration the first one just committed.
	sqlSchemaTables = `
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname = 'daguq_schema_migrations' AND n.nspname = current_schema()),
       EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname = 'daguq_messages' AND n.nspname = current_schema())`
	sqlSchemaVersion    = `SELECT coalesce(max(version), 0) FROM daguq_schema_migrations`
	sqlCreateMigrations = `
CREATE TABLE IF NOT EXISTS daguq_schema_migrations (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)`
	sqlRecordMigration = `INSERT INTO daguq_schema_migrations (version) VALUES ($1)`

	// The per-queue advisory locks: the key pair (1684501873 ("dguq"),
	// hashtext(queue)). Transaction-level, released at commit or rollback.
	//
	// sqlClaimStart begins a claim: it takes the queue's advisory lock
	// shared until the transaction ends (the aging interval read next stays
	// the one the ready set is keyed with), and turns sorts off for the
	// transaction. The claim's walks must follow daguq_messages_ready in
	// order from the floor: from statistics that undercount the ready set (a
	// new table, a set grown since the last ANALYZE) the planner may rather
	// read the queue's whole ready set through daguq_messages_live and sort
	// it, dead entries and all, which is slow while vacuum is held back.
	// Plans are made in the transaction that first runs a statement on a
	// connection, and the claim's statements run only in claims. JIT off
	// too: a sort left in a plan (the CTE's rows put in order) costs as
	// much as a disabled one, far above jit_above_cost, and compiling took
	// longer than the claim. Generic plans always (plan_cache_mode): the
	// cost of a sort left in a plan (the claim's rows put in claim order)
	// made the server plan sqlClaim again for every call, which cost as
	// much as running it; its generic plan walks the same indexes
	// (TestClaimPlansUseTheirIndexes).
	sqlClaimStart = `
SELECT pg_advisory_xact_lock_shared(1684501873, hashtext($1)),
       set_config('enable_sort', 'off', true), set_config('jit', 'off', true),
       set_config('plan_cache_mode', 'force_generic_plan', true)`
	// sqlQueuesShared is sqlQueueShared for several queues.
	sqlQueuesShared = `SELECT pg_advisory_xact_lock_shared(1684501873, hashtext(q)) FROM unnest($1::text[]) AS q`
	// sqlQueueExclusive waits for every claim and enqueue of the queue to
	// end, and holds new ones off, while the ready set is re-keyed.
	sqlQueueExclusive = `SELECT pg_advisory_xact_lock(1684501873, hashtext($1))`

	sqlQueueSettings = `SELECT paused, max_in_flight, aging_ms FROM daguq_queues WHERE name = $1`
	// sqlClaimSettings is sqlQueueSettings, defaults when the queue has no
	// settings, with the ready floor.
	sqlClaimSettings = `
SELECT coalesce(q.paused, false), coalesce(q.max_in_flight, 0), coalesce(q.aging_ms, 0), f.floor
FROM (SELECT $1::text COLLATE "C" AS name) n
LEFT JOIN daguq_queues q ON q.name = n.name
LEFT JOIN daguq_ready_floors f ON f.queue = n.name`

	// The ready floor (migrations/0004_floor_and_count_deltas.sql): no
	// committed ready message of the queue has a smaller sort key. A writer
	// that makes messages ready holds the queue's floor row FOR SHARE from
	// sqlShareFloor until it commits, lowering the floor to its smallest key
	// when that is below (sqlLowerFloor). A claim raises it after taking
	// the row with sqlLockFloor (SKIP LOCKED: not while a writer holds it),
	// to the head of the ready set read in the next statement, whose
	// snapshot sees every writer that committed before: a writer not yet
	// committed then waits for the raise and lowers the floor after it.
	sqlShareFloor = `SELECT floor FROM daguq_ready_floors WHERE queue = $1 FOR SHARE`
	sqlFloorRow   = `INSERT INTO daguq_ready_floors (queue) VALUES ($1) ON CONFLICT (queue) DO NOTHING`
	sqlLowerFloor = `UPDATE daguq_ready_floors SET floor = $2 WHERE queue = $1 AND floor > $2`
	sqlLockFloor  = `SELECT floor FROM daguq_ready_floors WHERE queue = $1 FOR NO KEY UPDATE SKIP LOCKED`
	// sqlClearFloor drops the floor of a queue whose ready set is re-keyed.
	sqlClearFloor = `UPDATE daguq_ready_floors SET floor = NULL WHERE queue = $1`
	// sqlRaiseFloor raises the floor to the head of the ready set at or
	// above the floor ($2), or to $3 when the set is empty. Messages other
	// claims are taking count as ready until those commit.
	sqlRaiseFloor = `
UPDATE daguq_ready_floors SET floor = h.key
FROM (SELECT coalesce((SELECT sort_key FROM daguq_messages
                       WHERE queue = $1 AND state = 0 AND sort_key >= $2
                       ORDER BY sort_key, id LIMIT 1), $3::bigint) AS key) h
WHERE queue = $1 AND (floor IS NULL OR floor < h.key)`
	// sqlLockSettings locks the settings row of a queue with an in-flight
	// limit: claims that could take its last slot take turns. The count of
	// live leases is read in the next statement, which sees every lease
	// committed before the lock was granted.
	sqlLockSettings = `SELECT paused, max_in_flight FROM daguq_queues WHERE name = $1 FOR NO KEY UPDATE`
	sqlLiveLeases   = `SELECT count(*) FROM daguq_leases WHERE queue = $1 AND expires_at > $2`

	sqlAgingOf  = `SELECT name, aging_ms FROM daguq_queues WHERE name = ANY($1)`
	sqlSetAging = `
INSERT INTO daguq_queues (name, aging_ms) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET aging_ms = EXCLUDED.aging_ms`
	// sqlRekey gives the ready set the sort keys of a new aging step ($2).
	sqlRekey = `UPDATE daguq_messages SET sort_key = visible_at - priority * $2 WHERE queue = $1 AND state = 0`

	// sqlPromote moves due waiting messages, due from $5 on, into the ready
	// set with the sort key of the queue's step (its aging interval, else
	// $3), earliest first and at most $4 per claim. It reads the interval
	// itself, so that it can go with the claim's read of the settings. Rows another transaction holds (a claim's
	// promotion, an extend) are skipped, not waited for.
	sqlPromote = `
WITH due AS MATERIALIZED (
    SELECT id FROM daguq_messages
    WHERE queue = $1 AND state = 1 AND visible_at <= $2 AND visible_at >= $5
    ORDER BY visible_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED)
UPDATE daguq_messages m
SET state = 0, sort_key = m.visible_at - m.priority * coalesce((SELECT aging_ms FROM daguq_queues WHERE name = $1 AND aging_ms > 0), $3)
FROM due WHERE m.id = due.id
RETURNING m.lease_id IS NOT NULL, m.sort_key`

	// sqlPick is the claim's walk of the ready set, in claim order, through
	// daguq_messages_ready: $1 queue, $2/$3 sort key range, $4/$5 priority
	// band, $6 how many. It locks what it returns, skipping rows other
	// claims hold: the set is selected once, in a materialized CTE, and the
	// claim then leases those ids and no others (an UPDATE ... WHERE id IN
	// (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) may run its subquery more
	// than once and take more than n).
	sqlPick = `
WITH picked AS MATERIALIZED (
    SELECT id, size, group_key, sort_key FROM daguq_messages
    WHERE queue = $1 AND state = 0 AND sort_key >= $2 AND sort_key < $3 AND priority BETWEEN $4 AND $5
    ORDER BY sort_key, id
    LIMIT $6
    FOR UPDATE SKIP LOCKED)
SELECT id, size, group_key FROM picked ORDER BY sort_key, id`
	// sqlPickGroup is sqlPick for one group ($7; NULL: messages without one).
	sqlPickGroup = `
WITH picked AS MATERIALIZED (
    SELECT id, size, group_key, sort_key FROM daguq_messages
    WHERE queue = $1 AND state = 0 AND sort_key >= $2 AND sort_key < $3 AND priority BETWEEN $4 AND $5
      AND group_key IS NOT DISTINCT FROM $7::text
    ORDER BY sort_key, id
    LIMIT $6
    FOR UPDATE SKIP LOCKED)
SELECT id, size, group_key FROM picked ORDER BY sort_key, id`

	// sqlInsertLease takes the lease id, the fencing token, after the
	// claim has locked its messages: a later claim of any of them gets a
	// larger one. The low 8 bits are random (migrations/0001_init.sql).
	sqlInsertLease = `
INSERT INTO daguq_leases (id, queue, consumer, claimed_at, expires_at)
VALUES (nextval('daguq_lease_ids') << 8 | floor(random() * 256)::bigint, $1, $2, $3, $4)
RETURNING id`

	// sqlLiveLease checks, inside a claim that adds to a lease, that the
	// lease is still live, and pushes its end to $2 when that is later.
	sqlLiveLease = `
UPDATE daguq_leases SET expires_at = greatest(expires_at, $2)
WHERE id = $1 AND expires_at > $3
RETURNING expires_at`

	// sqlLeaseMessages leases the picked ids ($3, locked by this
	// transaction while ready) to lease $1 until $2, and returns them with
	// their bodies. By id only: with "AND state = 0" the planner may walk
	// the whole ready index for the ids.
	sqlLeaseMessages = `
WITH leased AS (
    UPDATE daguq_messages SET state = 1, lease_id = $1, visible_at = $2, attempts = attempts + 1, claimed_by = $4
    WHERE id = ANY($3)
    RETURNING id, priority, attempts, max_attempts, group_key, dedupe_key, enqueued_at)
SELECT l.id, l.priority, l.attempts, l.max_attempts, l.group_key, l.dedupe_key, l.enqueued_at,
       coalesce(b.body, ''::bytea)
FROM leased l LEFT JOIN daguq_bodies b ON b.id = l.id`

	// sqlClaim is a claim without a byte limit, a group or a lease to add
	// to, in one statement: the pick of sqlPick ($1-$6), the lease of
	// sqlInsertLease ($7 consumer, from $8 now for $9 ms) and the update of
	// sqlLeaseMessages ($10 claimed_by), returning the lease id and end with
	// each message in claim order. The ids are picked once, in the
	// materialized CTE, so the claim takes at most $6. The lease id is drawn
	// after every picked row is locked (the aggregate reads the whole pick),
	// as after a pick of its own; no lease when nothing was picked. $8 was
	// read before the statement ran: a claim that committed meanwhile may
	// have moved messages whose lease ended after it into the ready set, so
	// the lease begins at the latest of $8 and the picked messages'
	// visible_at, never before a previous lease of one of them ended.
	sqlClaim = `
WITH picked AS MATERIALIZED (
    SELECT id, visible_at FROM daguq_messages
    WHERE queue = $1 AND state = 0 AND sort_key >= $2 AND sort_key < $3 AND priority BETWEEN $4 AND $5
    ORDER BY sort_key, id
    LIMIT $6
    FOR UPDATE SKIP LOCKED),
lease AS (
    INSERT INTO daguq_leases (id, queue, consumer, claimed_at, expires_at)
    SELECT nextval('daguq_lease_ids') << 8 | floor(random() * 256)::bigint, $1, $7, p.start, p.start + $9
    FROM (SELECT greatest($8::bigint, max(visible_at)) AS start FROM picked HAVING count(*) > 0) p
    RETURNING id, expires_at),
leased AS (
    UPDATE daguq_messages SET state = 1, lease_id = (SELECT id FROM lease), visible_at = (SELECT expires_at FROM lease),
        attempts = attempts + 1, claimed_by = $10
    WHERE id = ANY (ARRAY(SELECT id FROM picked))
    RETURNING id, priority, attempts, max_attempts, group_key, dedupe_key, enqueued_at, lease_id, visible_at, sort_key)
SELECT l.lease_id, l.visible_at, l.id, l.priority, l.attempts, l.max_attempts, l.group_key, l.dedupe_key, l.enqueued_at,
       coalesce(b.body, ''::bytea)
FROM leased l LEFT JOIN daguq_bodies b ON b.id = l.id
ORDER BY l.sort_key, l.id`

	// sqlSweepLeases drops a queue's expired leases that hold nothing.
	sqlSweepLeases = `
DELETE FROM daguq_leases WHERE id IN (
    SELECT id FROM daguq_leases l WHERE queue = $1 AND expires_at <= $2
      AND NOT EXISTS (SELECT 1 FROM daguq_messages m WHERE m.lease_id = l.id)
    FOR UPDATE SKIP LOCKED)`

	// sqlLockLease locks a lease row for a finish: claims into the lease
	// and other finishes of it wait, so the finish's last statement
	// (sqlDropLeaseIfEmpty) sees what they added.
	sqlLockLease = `SELECT 1 FROM daguq_leases WHERE id = $1 FOR UPDATE`

	// sqlDropLeaseIfEmpty drops the lease when no message carries it: a
	// message dead or acked carries none (sqlNack, sqlAckRetain). By lease
	// id only: with "AND state < 2" the planner may walk the whole of
	// daguq_messages_live for it.
	sqlDropLeaseIfEmpty = `
DELETE FROM daguq_leases WHERE id = $1
  AND NOT EXISTS (SELECT 1 FROM daguq_messages WHERE lease_id = $1)`

	// Finishing statements act on the messages among the ids given ($2)
	// that lease $1 still holds, and return the ids they changed with the
	// state each had: the caller names the rest as lost. A message still
	// carries the lease after the lease expired, until another claim takes
	// it: finishing it then is still correct. Rows are locked in id order.
	sqlAckDelete = `
WITH gone AS (
    DELETE FROM daguq_messages WHERE id = ANY($2) AND lease_id = $1 AND state < 2
    RETURNING id, state, enqueued_at),
bodies AS (DELETE FROM daguq_bodies b USING gone WHERE b.id = gone.id)
SELECT id, state, enqueued_at FROM gone`
	sqlAckRetain = `
WITH old AS MATERIALIZED (
    SELECT id, state FROM daguq_messages WHERE id = ANY($2) AND lease_id = $1 AND state < 2
    ORDER BY id FOR UPDATE)
UPDATE daguq_messages m SET state = 3, lease_id = NULL, finished_at = $3
FROM old WHERE m.id = old.id
RETURNING m.id, old.state, m.enqueued_at`

	sqlPurgeAcked = `
WITH gone AS (
    DELETE FROM daguq_messages WHERE queue = $1 AND state = 3 AND finished_at < $2 RETURNING id),
bodies AS (DELETE FROM daguq_bodies b USING gone WHERE b.id = gone.id)
SELECT count(*) FROM gone`

	// sqlNack: $3 error, $4 max attempts override (0: the message's own; it
	// is recorded as the limit that applied), $5 now, $6 each id's retry
	// time (in the order of $2).
	sqlNack = `
WITH old AS MATERIALIZED (
    SELECT id, state FROM daguq_messages WHERE id = ANY($2) AND lease_id = $1 AND state < 2
    ORDER BY id FOR UPDATE)
UPDATE daguq_messages m SET
    lease_id = NULL, last_error = $3,
    max_attempts = CASE WHEN $4::integer > 0 THEN $4::integer ELSE m.max_attempts END,
    state = CASE WHEN m.attempts >= (CASE WHEN $4::integer > 0 THEN $4::integer ELSE m.max_attempts END) THEN 2 ELSE 1 END,
    finished_at = CASE WHEN m.attempts >= (CASE WHEN $4::integer > 0 THEN $4::integer ELSE m.max_attempts END) THEN $5::bigint END,
    visible_at = r.retry_at
FROM old JOIN unnest($2::bigint[], $6::bigint[]) AS r (id, retry_at) ON r.id = old.id
WHERE m.id = old.id
RETURNING m.id, old.state, m.state`

	// sqlExtendMessages keeps the lease's messages until $2, also ones
	// whose lease ran out and that a claim moved into the ready set but no
	// other claim took (old state 0).
	sqlExtendMessages = `
WITH old AS MATERIALIZED (
    SELECT id, state FROM daguq_messages WHERE id = ANY($3) AND lease_id = $1 AND state < 2
    ORDER BY id FOR UPDATE)
UPDATE daguq_messages m SET state = 1, visible_at = $2
FROM old WHERE m.id = old.id
RETURNING m.id, old.state`
	sqlExtendLease = `UPDATE daguq_leases SET expires_at = $2 WHERE id = $1`

	// sqlRelease gives messages back, ready at $3, with the attempt the
	// claim counted given back.
	sqlRelease = `
WITH old AS MATERIALIZED (
    SELECT id, state FROM daguq_messages WHERE id = ANY($2) AND lease_id = $1 AND state < 2
    ORDER BY id FOR UPDATE)
UPDATE daguq_messages m SET state = 1, lease_id = NULL, visible_at = $3, attempts = greatest(m.attempts - 1, 0)
FROM old WHERE m.id = old.id
RETURNING m.id, old.state`

	sqlLeaseByID = `SELECT queue, consumer, expires_at FROM daguq_leases WHERE id = $1`
	sqlLeaseHeld = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, coalesce(b.body, ''::bytea)
FROM daguq_messages m LEFT JOIN daguq_bodies b ON b.id = m.id
WHERE m.lease_id = $1 AND m.state < 2
ORDER BY m.sort_key, m.id`

	// Enqueue: ids first (nextval in input order), then one INSERT of all
	// the rows from arrays. Only the dedupe index may skip a row.
	sqlNextMessageIDs = `SELECT nextval('daguq_message_ids') FROM generate_series(1, $1)`
	sqlInsertMessages = `
INSERT INTO daguq_messages (id, queue, state, priority, sort_key, visible_at, max_attempts, group_key, dedupe_key, enqueued_at, size, enqueued_by)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::bigint[], $5::bigint[], $6::bigint[],
                     $7::integer[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::text[])
ORDER BY 1
ON CONFLICT (queue, dedupe_key) WHERE dedupe_key IS NOT NULL AND state <> 3 DO NOTHING
RETURNING id`
	sqlInsertBodies = `INSERT INTO daguq_bodies (id, body) SELECT * FROM unnest($1::bigint[], $2::bytea[])`

	// sqlVacuumHot is the store's own vacuum of the tables every message
	// passes through (vacuum.go); SKIP_LOCKED: it does not wait for
	// autovacuum or another process's vacuum of the same table.
	sqlVacuumHot = `VACUUM (SKIP_LOCKED) daguq_messages, daguq_bodies, daguq_leases, daguq_queue_counts, daguq_count_deltas`

	// sqlOldestRunning is the id of the oldest transaction running, as text.
	sqlOldestRunning = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`

	// sqlNotify wakes the listeners of queues ($2) on channel $1
	// (notify.go).
	sqlNotify = `SELECT pg_notify($1, q) FROM unnest($2::text[]) AS q`

	sqlUpsertPaused = `
INSERT INTO daguq_queues (name, paused) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused`
	sqlUpsertLimit = `
INSERT INTO daguq_queues (name, max_in_flight) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET max_in_flight = EXCLUDED.max_in_flight`

	sqlQueueNames  = `SELECT DISTINCT queue FROM daguq_queue_totals UNION SELECT name FROM daguq_queues ORDER BY 1`
	sqlQueueExists = `
SELECT EXISTS (SELECT 1 FROM daguq_queue_totals WHERE queue = $1) OR EXISTS (SELECT 1 FROM daguq_queues WHERE name = $1)`

	// sqlAddCounts records one transaction's changes to a queue's counts:
	// a row of its own, which sqlRollupCounts adds to daguq_queue_counts
	// later (migrations/0004_floor_and_count_deltas.sql). An insert takes
	// no lock and, unlike an update of a counts row, leaves no old version
	// for the next transaction to walk past.
	sqlAddCounts = `
INSERT INTO daguq_count_deltas (queue, ready_set, waiting, waiting_leased, dead, acked, enqueued, claimed,
    settled_acked, settled_retried, settled_dead, settled_expired, settled_released, redriven, purged,
    wait_count, wait_sum_ms, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
    $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)`

	// sqlRollupCounts moves the recorded changes into daguq_queue_counts
	// (shard 0; readers add up every shard) in one statement: readers see
	// a change either recorded or rolled up, never both nor neither. Under
	// a transaction-level advisory lock ("daguqr" as a number), so that one
	// rollup runs at a time; the others skip.
	sqlRollupCounts = `
WITH turn AS (SELECT pg_try_advisory_xact_lock(431130899826) AS mine),
gone AS (
    DELETE FROM daguq_count_deltas WHERE (SELECT mine FROM turn)
    RETURNING *),
sums AS (
    SELECT queue, sum(ready_set) AS ready_set, sum(waiting) AS waiting, sum(waiting_leased) AS waiting_leased,
        sum(dead) AS dead, sum(acked) AS acked, sum(enqueued) AS enqueued, sum(claimed) AS claimed,
        sum(settled_acked) AS settled_acked, sum(settled_retried) AS settled_retried, sum(settled_dead) AS settled_dead,
        sum(settled_expired) AS settled_expired, sum(settled_released) AS settled_released,
        sum(redriven) AS redriven, sum(purged) AS purged, sum(wait_count) AS wait_count, sum(wait_sum_ms) AS wait_sum_ms,
        sum(w0) AS w0, sum(w1) AS w1, sum(w2) AS w2, sum(w3) AS w3, sum(w4) AS w4, sum(w5) AS w5,
        sum(w6) AS w6, sum(w7) AS w7, sum(w8) AS w8, sum(w9) AS w9, sum(w10) AS w10, sum(w11) AS w11
    FROM gone GROUP BY queue)
INSERT INTO daguq_queue_counts AS c (queue, shard, ready_set, waiting, waiting_leased, dead, acked, enqueued, claimed,
    settled_acked, settled_retried, settled_dead, settled_expired, settled_released, redriven, purged,
    wait_count, wait_sum_ms, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11)
SELECT queue, 0, ready_set, waiting, waiting_leased, dead, acked, enqueued, claimed,
    settled_acked, settled_retried, settled_dead, settled_expired, settled_released, redriven, purged,
    wait_count, wait_sum_ms, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11
FROM sums ORDER BY queue
ON CONFLICT (queue, shard) DO UPDATE SET
    ready_set = c.ready_set + EXCLUDED.ready_set, waiting = c.waiting + EXCLUDED.waiting,
    waiting_leased = c.waiting_leased + EXCLUDED.waiting_leased, dead = c.dead + EXCLUDED.dead,
    acked = c.acked + EXCLUDED.acked, enqueued = c.enqueued + EXCLUDED.enqueued, claimed = c.claimed + EXCLUDED.claimed,
    settled_acked = c.settled_acked + EXCLUDED.settled_acked, settled_retried = c.settled_retried + EXCLUDED.settled_retried,
    settled_dead = c.settled_dead + EXCLUDED.settled_dead, settled_expired = c.settled_expired + EXCLUDED.settled_expired,
    settled_released = c.settled_released + EXCLUDED.settled_released, redriven = c.redriven + EXCLUDED.redriven,
    purged = c.purged + EXCLUDED.purged, wait_count = c.wait_count + EXCLUDED.wait_count,
    wait_sum_ms = c.wait_sum_ms + EXCLUDED.wait_sum_ms,
    w0 = c.w0 + EXCLUDED.w0, w1 = c.w1 + EXCLUDED.w1, w2 = c.w2 + EXCLUDED.w2, w3 = c.w3 + EXCLUDED.w3,
    w4 = c.w4 + EXCLUDED.w4, w5 = c.w5 + EXCLUDED.w5, w6 = c.w6 + EXCLUDED.w6, w7 = c.w7 + EXCLUDED.w7,
    w8 = c.w8 + EXCLUDED.w8, w9 = c.w9 + EXCLUDED.w9, w10 = c.w10 + EXCLUDED.w10, w11 = c.w11 + EXCLUDED.w11`

	sqlCounters = `
SELECT coalesce(sum(enqueued), 0), coalesce(sum(claimed), 0), coalesce(sum(settled_acked), 0),
       coalesce(sum(settled_retried), 0), coalesce(sum(settled_dead), 0), coalesce(sum(settled_expired), 0),
       coalesce(sum(settled_released), 0), coalesce(sum(redriven), 0), coalesce(sum(purged), 0),
       coalesce(sum(wait_count), 0), coalesce(sum(wait_sum_ms), 0),
       coalesce(sum(w0), 0), coalesce(sum(w1), 0), coalesce(sum(w2), 0), coalesce(sum(w3), 0),
       coalesce(sum(w4), 0), coalesce(sum(w5), 0), coalesce(sum(w6), 0), coalesce(sum(w7), 0),
       coalesce(sum(w8), 0), coalesce(sum(w9), 0), coalesce(sum(w10), 0), coalesce(sum(w11), 0)
FROM daguq_queue_totals WHERE queue = $1`

	// sqlStats reads the kept counts and adds what the clock changed since:
	// waiting messages that are due (delayed ones whose time came, leases
	// that ran out) count as ready until a claim moves them. One statement:
	// one snapshot. The due counts and the oldest times read
	// daguq_messages_live.
	sqlStats = `
SELECT c.ready_set, c.waiting, c.waiting_leased, c.dead, c.acked,
    (SELECT count(*) FROM daguq_messages
     WHERE queue = $1 AND state = 1 AND visible_at <= $2 AND lease_id IS NULL),
    (SELECT count(*) FROM daguq_messages
     WHERE queue = $1 AND state = 1 AND visible_at <= $2 AND lease_id IS NOT NULL),
    (SELECT min(visible_at) FROM daguq_messages WHERE queue = $1 AND state = 0),
    (SELECT min(visible_at) FROM daguq_messages WHERE queue = $1 AND state = 1 AND visible_at <= $2),
    coalesce((SELECT paused FROM daguq_queues WHERE name = $1), false),
    coalesce((SELECT max_in_flight FROM daguq_queues WHERE name = $1), 0),
    (SELECT count(*) FROM daguq_leases WHERE queue = $1 AND expires_at > $2)
FROM (SELECT coalesce(sum(ready_set), 0) AS ready_set, coalesce(sum(waiting), 0) AS waiting,
             coalesce(sum(waiting_leased), 0) AS waiting_leased, coalesce(sum(dead), 0) AS dead,
             coalesce(sum(acked), 0) AS acked
      FROM daguq_queue_totals WHERE queue = $1) c`

	// Peek statements list in the order a claim (or a look at history) takes.
	sqlPeekReady = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.visible_at, m.last_error,
       m.enqueued_by, m.claimed_by, coalesce(b.body, ''::bytea)
FROM daguq_messages m LEFT JOIN daguq_bodies b ON b.id = m.id
WHERE m.queue = $1 AND (m.state = 0 OR (m.state = 1 AND m.visible_at <= $2))
ORDER BY CASE WHEN m.state = 0 THEN m.sort_key ELSE m.visible_at - m.priority * $4 END, m.id LIMIT $3`
	sqlPeekPending = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.visible_at, m.last_error,
       m.enqueued_by, m.claimed_by, coalesce(b.body, ''::bytea)
FROM daguq_messages m LEFT JOIN daguq_bodies b ON b.id = m.id
WHERE m.queue = $1 AND m.state = 1 AND m.visible_at > $2
ORDER BY m.visible_at, m.id LIMIT $3`
	sqlPeekFinished = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.finished_at, m.last_error,
       m.enqueued_by, m.claimed_by, coalesce(b.body, ''::bytea)
FROM daguq_messages m LEFT JOIN daguq_bodies b ON b.id = m.id
WHERE m.queue = $1 AND m.state = $3
ORDER BY m.finished_at DESC, m.id DESC LIMIT $2`

	sqlRedriveAll = `
UPDATE daguq_messages SET state = 1, attempts = 0, visible_at = $2, finished_at = NULL
WHERE queue = $1 AND state = 2`
	sqlRedriveIDs = sqlRedriveAll + ` AND id = ANY($3)`

	sqlPurgeDead = `
WITH gone AS (DELETE FROM daguq_messages WHERE queue = $1 AND state = 2 RETURNING id),
bodies AS (DELETE FROM daguq_bodies b USING gone WHERE b.id = gone.id)
SELECT count(*) FROM gone`
	sqlPurgeDeadIDs = `
WITH gone AS (DELETE FROM daguq_messages WHERE queue = $1 AND state = 2 AND id = ANY($2) RETURNING id),
bodies AS (DELETE FROM daguq_bodies b USING gone WHERE b.id = gone.id)
SELECT count(*) FROM gone`

	// sqlPurgeQueue deletes a queue's messages and says how many went from
	// each state, for the counts: the exact rows this statement deleted,
	// whatever other transactions commit meanwhile.
	sqlPurgeQueue = `
WITH gone AS (DELETE FROM daguq_messages WHERE queue = $1 RETURNING id, state, lease_id IS NOT NULL AS leased),
bodies AS (DELETE FROM daguq_bodies b USING gone WHERE b.id = gone.id)
SELECT state, leased, count(*) FROM gone GROUP BY state, leased`
	sqlPurgeQueueLeases = `DELETE FROM daguq_leases WHERE queue = $1`

	sqlInsertHistory = `
INSERT INTO daguq_history (queue, at, ready, delayed, in_flight, dead, enqueued, acked, oldest_ready)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (queue, at) DO NOTHING`
	sqlPruneHistory = `DELETE FROM daguq_history WHERE at < $1`
	sqlHistory      = `
SELECT at, ready, delayed, in_flight, dead, enqueued, acked, oldest_ready
FROM daguq_history WHERE queue = $1 AND at >= $2 ORDER BY at`
)
