package queuestore

import "strings"

// Every statement of the store. Values are always bound; id lists travel as
// one JSON array read with json_each.

const (
	// Write transactions take the write lock at BEGIN (deferred ones in two
	// processes fail with SQLITE_BUSY at once, bypassing any wait).
	sqlBegin = `BEGIN IMMEDIATE`
	// sqlBeginNoWait fails at once while another process holds the write
	// lock (retryBusy waits instead); sqlBusyTimeoutFormat sets the wait back.
	sqlBeginNoWait       = `PRAGMA busy_timeout = 0; BEGIN IMMEDIATE`
	sqlBusyTimeoutFormat = `PRAGMA busy_timeout = %d`
	sqlCommit            = `COMMIT`
	sqlRollback          = `ROLLBACK`

	sqlAutoCheckpoint = `PRAGMA wal_autocheckpoint = 4000`

	// sqlNextMessageID is the id before the next message's: enqueue numbers
	// its rows itself, inside the write transaction, so a bulk insert needs
	// no RETURNING to tie ids to its input.
	sqlNextMessageID = `
SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),
           coalesce((SELECT max(id) FROM messages), 0))`

	sqlQueueSettings = `
SELECT paused, max_in_flight, aged_at,
       CASE WHEN max_in_flight > 0 -- count live leases only for a limited queue
            THEN (SELECT count(*) FROM leases WHERE queue = ?1 AND expires_at > ?2) ELSE 0 END
FROM queues WHERE name = ?1`

	sqlInsertLease = `
INSERT INTO leases (secret, queue, consumer, claimed_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5)`

	// sqlAnyReady is the claim's WHERE as a read: a claim that would find
	// nothing answers without taking the write lock.
	sqlAnyReady = `
SELECT EXISTS (SELECT 1 FROM messages
    WHERE queue = ?1 AND state = 0 AND visible_at <= ?2 AND rank >= ?3 AND priority BETWEEN ?3 AND ?4)`
	sqlAnyReadyGroup = `
SELECT EXISTS (SELECT 1 FROM messages
    WHERE queue = ?1 AND state = 0 AND visible_at <= ?2 AND rank >= ?3 AND priority BETWEEN ?3 AND ?4
      AND group_key IS ?5)`

	// The claim: one UPDATE ... RETURNING whose subquery walks messages_claim
	// in its own order. ?1 lease, ?2 lease end, ?3 queue, ?4 now,
	// ?5 min priority, ?6 max priority, ?7 limit. The bodies are read after
	// the commit (sqlClaimedBodies), outside the write lock.
	sqlClaim = `
UPDATE messages SET lease_id = ?1, visible_at = ?2, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM messages
    WHERE queue = ?3 AND state = 0 AND visible_at <= ?4
      AND rank >= ?5 AND priority BETWEEN ?5 AND ?6
    ORDER BY rank DESC, visible_at, id
    LIMIT ?7)
RETURNING id, priority, rank, attempts, max_attempts, group_key, dedupe_key, enqueued_at`

	// sqlClaimGroup is sqlClaim for one group (?8; NULL: messages without one).
	sqlClaimGroup = `
UPDATE messages SET lease_id = ?1, visible_at = ?2, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM messages
    WHERE queue = ?3 AND state = 0 AND visible_at <= ?4
      AND rank >= ?5 AND priority BETWEEN ?5 AND ?6 AND group_key IS ?8
    ORDER BY rank DESC, visible_at, id
    LIMIT ?7)
RETURNING id, priority, rank, attempts, max_attempts, group_key, dedupe_key, enqueued_at`

	// sqlHeadGroup is the group of the message the next claim would take first.
	sqlHeadGroup = `
SELECT group_key FROM messages
WHERE queue = ?1 AND state = 0 AND visible_at <= ?2 AND rank >= ?3 AND priority BETWEEN ?3 AND ?4
ORDER BY rank DESC, visible_at, id
LIMIT 1`

	// sqlAge raises the rank of every message that has waited ready for a
	// whole aging interval (?2 = now - interval).
	sqlAge       = `UPDATE messages SET rank = rank + 1 WHERE queue = ?1 AND state = 0 AND visible_at <= ?2`
	sqlSetAgedAt = `
INSERT INTO queues (name, aged_at) VALUES (?1, ?2)
ON CONFLICT (name) DO UPDATE SET aged_at = excluded.aged_at`

	sqlSweepLeases = `
DELETE FROM leases WHERE queue = ?1 AND expires_at <= ?2
  AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.lease_id = leases.id)`

	sqlDropLeaseIfEmpty = `
DELETE FROM leases WHERE id = ?1
  AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.lease_id = ?1)`

	sqlAckDelete = `DELETE FROM messages WHERE lease_id = ?1 AND id IN (SELECT value FROM json_each(?2))`
	sqlAckBodies = `DELETE FROM bodies WHERE id IN (SELECT value FROM json_each(?1))`
	sqlAckRetain = `
UPDATE messages SET state = 3, lease_id = NULL, finished_at = ?3
WHERE lease_id = ?1 AND id IN (SELECT value FROM json_each(?2))`

	sqlPurgeAckedBodies = `
DELETE FROM bodies WHERE id IN (
    SELECT id FROM messages WHERE queue = ?1 AND state = 3 AND finished_at < ?2)`
	sqlPurgeAcked = `DELETE FROM messages WHERE queue = ?1 AND state = 3 AND finished_at < ?2`

	// sqlNack: ?3 error, ?4 max attempts override (0: the message's own),
	// ?5 now, ?6 retry time. An override is recorded as the message's limit,
	// so a dead letter shows the limit it died under.
	sqlNack = `
UPDATE messages SET
    lease_id = NULL, rank = priority, last_error = ?3,
    state = CASE WHEN attempts >= (CASE WHEN ?4 > 0 THEN ?4 ELSE max_attempts END) THEN 2 ELSE 0 END,
    finished_at = CASE WHEN attempts >= (CASE WHEN ?4 > 0 THEN ?4 ELSE max_attempts END) THEN ?5 END,
    max_attempts = CASE WHEN ?4 > 0 THEN ?4 ELSE max_attempts END,
    visible_at = ?6
WHERE id = ?1 AND lease_id = ?2
RETURNING state`

	sqlExtendLease    = `UPDATE leases SET expires_at = ?2 WHERE id = ?1`
	sqlExtendMessages = `UPDATE messages SET visible_at = ?2 WHERE lease_id = ?1 AND state = 0`

	sqlRelease = `
UPDATE messages SET lease_id = NULL, visible_at = ?3, attempts = max(attempts - 1, 0)
WHERE lease_id = ?1 AND id IN (SELECT value FROM json_each(?2))`

	sqlClaimedBodies = `SELECT id, body FROM bodies WHERE id IN (SELECT value FROM json_each(?1))`

	sqlLeaseByID = `SELECT secret, queue, consumer, expires_at FROM leases WHERE id = ?1`

	sqlLeaseMessages = `
SELECT m.id, m.priority, m.rank, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, b.body
FROM messages m JOIN bodies b ON b.id = m.id
WHERE m.lease_id = ?1 AND m.state = 0
ORDER BY m.rank DESC, m.id`

	sqlUpsertPaused = `
INSERT INTO queues (name, paused) VALUES (?1, ?2)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused`
	sqlUpsertLimit = `
INSERT INTO queues (name, max_in_flight) VALUES (?1, ?2)
ON CONFLICT (name) DO UPDATE SET max_in_flight = excluded.max_in_flight`

	sqlQueueNames = `SELECT DISTINCT queue FROM messages UNION SELECT name FROM queues ORDER BY 1`

	// In flight: held by a lease that has not ended (visible_at is the lease end).
	sqlStats = `
SELECT
    coalesce(sum(state = 0 AND visible_at <= ?2), 0),
    coalesce(sum(state = 0 AND visible_at > ?2 AND lease_id IS NULL), 0),
    coalesce(sum(state = 0 AND visible_at > ?2 AND lease_id IS NOT NULL), 0),
    coalesce(sum(state = 2), 0),
    coalesce(sum(state = 3), 0),
    min(CASE WHEN state = 0 AND visible_at <= ?2 THEN visible_at END)
FROM messages WHERE queue = ?1`

	sqlQueueRow = `
SELECT coalesce(q.paused, 0), coalesce(q.max_in_flight, 0),
       (SELECT count(*) FROM leases WHERE queue = ?1 AND expires_at > ?2)
FROM (SELECT 1) LEFT JOIN queues q ON q.name = ?1`

	// Peek statements list in the order a claim (or a look at history) takes.
	sqlPeekReady = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.visible_at, m.last_error, b.body
FROM messages m JOIN bodies b ON b.id = m.id
WHERE m.queue = ?1 AND m.state = 0 AND m.visible_at <= ?2
ORDER BY m.rank DESC, m.visible_at, m.id LIMIT ?3`
	sqlPeekPending = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.visible_at, m.last_error, b.body
FROM messages m JOIN bodies b ON b.id = m.id
WHERE m.queue = ?1 AND m.state = 0 AND m.visible_at > ?2
ORDER BY m.visible_at, m.id LIMIT ?3`
	sqlPeekFinished = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.finished_at, m.last_error, b.body
FROM messages m JOIN bodies b ON b.id = m.id
WHERE m.queue = ?1 AND m.state = ?3
ORDER BY m.finished_at DESC, m.id DESC LIMIT ?2`

	sqlRedriveAll = `
UPDATE messages SET state = 0, attempts = 0, rank = priority, visible_at = ?2, finished_at = NULL
WHERE queue = ?1 AND state = 2`
	sqlRedriveIDs = sqlRedriveAll + ` AND id IN (SELECT value FROM json_each(?3))`

	sqlPurgeDeadBodies    = `DELETE FROM bodies WHERE id IN (SELECT id FROM messages WHERE queue = ?1 AND state = 2)`
	sqlPurgeDead          = `DELETE FROM messages WHERE queue = ?1 AND state = 2`
	sqlPurgeDeadIDsBodies = `
DELETE FROM bodies WHERE id IN (
    SELECT id FROM messages WHERE queue = ?1 AND state = 2 AND id IN (SELECT value FROM json_each(?2)))`
	sqlPurgeDeadIDs = sqlPurgeDead + ` AND id IN (SELECT value FROM json_each(?2))`

	sqlPurgeQueueBodies = `DELETE FROM bodies WHERE id IN (SELECT id FROM messages WHERE queue = ?1)`
	sqlPurgeQueue       = `DELETE FROM messages WHERE queue = ?1`
	sqlPurgeQueueLeases = `DELETE FROM leases WHERE queue = ?1`
)

// Bulk enqueue inserts its rows with multi-row INSERTs of these sizes,
// largest first (a batch of 100 runs as 64 + 32 + 4), so any batch runs as a
// few statements from a fixed set that the connection prepares once. The
// statements are built once from the constant parts below; every value is
// bound.
var bulkSizes = [...]int{64, 32, 16, 8, 4, 2, 1}

const (
	sqlInsertMessagesHead = `
INSERT INTO messages (id, queue, priority, rank, visible_at, max_attempts, group_key, dedupe_key, enqueued_at)
VALUES `
	sqlInsertMessagesRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// Only the dedupe index may skip a row: a clash on id is an error.
	sqlInsertMessagesConflict = `
ON CONFLICT (queue, dedupe_key) WHERE dedupe_key IS NOT NULL AND state <> 3 DO NOTHING`
	sqlInsertMessagesReturning = ` RETURNING id`

	sqlInsertBodiesHead = `INSERT INTO bodies (id, body) VALUES `
	sqlInsertBodiesRow  = `(?, ?)`
)

// Statements for bulkSizes[i] rows.
var sqlInsertMessages, sqlInsertMessagesDedupe, sqlInsertBodies [len(bulkSizes)]string

func init() {
	for i, n := range bulkSizes {
		rows := strings.TrimSuffix(strings.Repeat(sqlInsertMessagesRow+", ", n), ", ")
		sqlInsertMessages[i] = sqlInsertMessagesHead + rows + sqlInsertMessagesConflict
		sqlInsertMessagesDedupe[i] = sqlInsertMessages[i] + sqlInsertMessagesReturning
		sqlInsertBodies[i] = sqlInsertBodiesHead + strings.TrimSuffix(strings.Repeat(sqlInsertBodiesRow+", ", n), ", ")
	}
}
