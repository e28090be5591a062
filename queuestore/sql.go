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
	// sqlAutoCheckpointLowDisk: checkpoint often while the disk is nearly
	// full, so the WAL cannot take the space that acks free (space.go).
	sqlAutoCheckpointLowDisk = `PRAGMA wal_autocheckpoint = 100`
	// sqlCheckpointTruncate moves the WAL into the database file and cuts
	// the WAL file to nothing, when no reader needs its old pages.
	sqlCheckpointTruncate = `PRAGMA wal_checkpoint(TRUNCATE)`

	// sqlNextMessageID is the id before the next message's: enqueue numbers
	// its rows itself, inside the write transaction, so a bulk insert needs
	// no RETURNING to tie ids to its input.
	sqlNextMessageID = `
SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),
           coalesce((SELECT max(id) FROM messages), 0))`

	sqlQueueSettings = `
SELECT paused, max_in_flight, aging_ms,
       CASE WHEN max_in_flight > 0 -- count live leases only for a limited queue
            THEN (SELECT count(*) FROM leases WHERE queue = ?1 AND expires_at > ?2) ELSE 0 END
FROM queues WHERE name = ?1`

	// sqlAnyDue says whether a waiting message of the queue is due: only
	// then does a claim run sqlPromote. Waiting messages are in two indexes,
	// messages_delayed (no lease) and messages_leased: every statement that
	// reads them by time reads both.
	sqlAnyDue = `
SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND state = 1 AND lease_id IS NULL AND visible_at <= ?2)
    OR EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND state = 1 AND lease_id IS NOT NULL AND visible_at <= ?2)`

	// sqlAgingOf is the queue's aging interval in ms (no row: none).
	sqlAgingOf = `SELECT aging_ms FROM queues WHERE name = ?1`

	// sqlInsertLease keeps a lease as a row, for a queue with an in-flight
	// limit (which counts the rows).
	sqlInsertLease = `
INSERT INTO leases (id, queue, consumer, claimed_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5)`

	// sqlLeaseLive checks, inside a claim that adds to a lease, that the
	// lease still holds one of the caller's messages (?3, their ids) and
	// its time has not run out.
	sqlLeaseLive = `
SELECT EXISTS (SELECT 1 FROM messages
               WHERE id IN (SELECT value FROM json_each(?3)) AND lease_id = ?1 AND state = 1 AND visible_at > ?2)`
	// sqlStretchLease pushes a lease row's end to ?2 when that is later: a
	// row's end is never before the lease end of any of its messages.
	sqlStretchLease = `UPDATE leases SET expires_at = max(expires_at, ?2) WHERE id = ?1`

	// sqlAnyReady is the claim's question as a read: a claim that would find
	// nothing answers without taking the write lock. A due waiting message
	// counts: the claim moves it into the ready set first.
	sqlAnyReady = `
SELECT EXISTS (SELECT 1 FROM messages INDEXED BY messages_ready
               WHERE queue = ?1 AND state = 0 AND sort_key >= ?3 AND sort_key < ?4 AND priority BETWEEN ?5 AND ?6)
    OR EXISTS (SELECT 1 FROM messages
               WHERE queue = ?1 AND state = 1 AND lease_id IS NULL AND visible_at <= ?2 AND priority BETWEEN ?5 AND ?6)
    OR EXISTS (SELECT 1 FROM messages
               WHERE queue = ?1 AND state = 1 AND lease_id IS NOT NULL AND visible_at <= ?2
                 AND priority BETWEEN ?5 AND ?6)`

	// sqlPromote moves waiting messages that are due into the ready set, with
	// the sort key of the queue's step (?3), earliest first (a merge of the
	// two waiting indexes) and at most ?4 per claim so that a burst of due
	// messages cannot make one claim long.
	sqlPromote = `
UPDATE messages SET state = 0, sort_key = visible_at - priority * ?3
WHERE id IN (SELECT id FROM (
    SELECT id, visible_at FROM messages WHERE queue = ?1 AND state = 1 AND lease_id IS NULL AND visible_at <= ?2
    UNION ALL
    SELECT id, visible_at FROM messages WHERE queue = ?1 AND state = 1 AND lease_id IS NOT NULL AND visible_at <= ?2
    ORDER BY visible_at LIMIT ?4))
RETURNING lease_id IS NOT NULL`

	// sqlRekey gives the ready set the sort keys of a new aging step (?2).
	sqlRekey    = `UPDATE messages SET sort_key = visible_at - priority * ?2 WHERE queue = ?1 AND state = 0`
	sqlSetAging = `
INSERT INTO queues (name, aging_ms) VALUES (?1, ?2)
ON CONFLICT (name) DO UPDATE SET aging_ms = excluded.aging_ms`

	// sqlCandidates is the claim's walk of the ready set, in claim order:
	// ?1 queue, ?2/?3 sort key range, ?4/?5 priority band, ?6 how many. The
	// claim cuts the list by bytes and group in Go, then leases what it keeps
	// (sqlLeaseMessage), all inside one write transaction.
	sqlCandidates = `
SELECT id, size, group_key FROM messages
WHERE queue = ?1 AND state = 0 AND sort_key >= ?2 AND sort_key < ?3 AND priority BETWEEN ?4 AND ?5
ORDER BY sort_key, id
LIMIT ?6`
	// sqlCandidatesGroup is sqlCandidates for one group (?7; NULL: messages
	// without one).
	sqlCandidatesGroup = `
SELECT id, size, group_key FROM messages
WHERE queue = ?1 AND state = 0 AND sort_key >= ?2 AND sort_key < ?3 AND priority BETWEEN ?4 AND ?5
  AND group_key IS ?7
ORDER BY sort_key, id
LIMIT ?6`

	// sqlLeaseMessages leases the chosen ids (?3, a JSON array) to lease ?1
	// until ?2, for the DAG run ?4.
	sqlLeaseMessages = `
UPDATE messages SET state = 1, lease_id = ?1, visible_at = ?2, attempts = attempts + 1, claimed_by = ?4
WHERE id IN (SELECT value FROM json_each(?3)) AND state = 0
RETURNING id, priority, attempts, max_attempts, group_key, dedupe_key, enqueued_at, size`

	// sqlSweepLeases deletes lease rows that ran out: they no longer count
	// against the limit, and an Extend that takes their messages back writes
	// the row again (sqlExtendLease).
	sqlSweepLeases = `DELETE FROM leases WHERE queue = ?1 AND expires_at <= ?2`

	// sqlDropLeaseIfEmpty deletes lease ?1's row once none of its messages
	// is in flight at ?2: the walk covers the queue's messages in flight
	// until the row's end.
	sqlDropLeaseIfEmpty = `
DELETE FROM leases WHERE id = ?1
  AND NOT EXISTS (SELECT 1 FROM messages INDEXED BY messages_leased
                  WHERE queue = leases.queue AND state = 1 AND lease_id IS NOT NULL
                    AND visible_at > ?2 AND visible_at <= leases.expires_at AND lease_id = ?1)`

	// Finishing statements act on the messages of the lease among the ids
	// given and return the ids they changed: the caller names the rest as
	// lost. A message still carries the lease after the lease expired, until
	// another claim takes it: finishing it then is still correct.
	sqlAckDelete = `
DELETE FROM messages WHERE lease_id = ?1 AND state < 2 AND id IN (SELECT value FROM json_each(?2))
RETURNING id, state, enqueued_at`
	sqlAckBodies = `DELETE FROM bodies WHERE id IN (SELECT value FROM json_each(?1))`
	// sqlTrashBodies adds acked ids (?2, a JSON array) to the queue's list
	// of bodies to delete (bodyTrash) and returns the list.
	sqlTrashBodies = `
UPDATE queue_counts SET body_trash = CASE WHEN body_trash IS NULL THEN ?2
                                          ELSE substr(body_trash, 1, length(body_trash) - 1) || ',' || substr(?2, 2) END
WHERE queue = ?1
RETURNING body_trash`
	sqlEmptyBodyTrash = `UPDATE queue_counts SET body_trash = NULL WHERE queue = ?1`
	// sqlDeleteBodyTrash deletes the bodies on the queue's list.
	sqlDeleteBodyTrash = `
DELETE FROM bodies WHERE id IN (
    SELECT value FROM json_each((SELECT body_trash FROM queue_counts WHERE queue = ?1)))`
	// sqlDeleteAllBodyTrash and sqlEmptyAllBodyTrash do the same for every
	// queue's list.
	sqlDeleteAllBodyTrash = `
DELETE FROM bodies WHERE id IN (SELECT t.value FROM queue_counts c, json_each(c.body_trash) t)`
	sqlEmptyAllBodyTrash = `UPDATE queue_counts SET body_trash = NULL WHERE body_trash IS NOT NULL`

	sqlAckRetain = `
UPDATE messages SET state = 3, lease_id = NULL, finished_at = ?3
WHERE lease_id = ?1 AND state = ?4 AND id IN (SELECT value FROM json_each(?2))
RETURNING id, ?4, enqueued_at`

	// sqlLeaseStates is the state of each message among ids (?2) that lease
	// ?1 holds, read before a change whose RETURNING shows only the new one.
	sqlLeaseStates = `
SELECT id, state FROM messages WHERE lease_id = ?1 AND state < 2 AND id IN (SELECT value FROM json_each(?2))`

	sqlPurgeAckedBodies = `
DELETE FROM bodies WHERE id IN (
    SELECT id FROM messages WHERE queue = ?1 AND state = 3 AND finished_at < ?2)`
	sqlPurgeAcked = `DELETE FROM messages WHERE queue = ?1 AND state = 3 AND finished_at < ?2`

	// sqlNack: ?3 error, ?4 max attempts override (0: the message's own; it
	// is recorded as the limit that applied), ?5 now, ?6 retry time.
	sqlNack = `
UPDATE messages SET
    lease_id = NULL, last_error = ?3,
    max_attempts = CASE WHEN ?4 > 0 THEN ?4 ELSE max_attempts END,
    state = CASE WHEN attempts >= (CASE WHEN ?4 > 0 THEN ?4 ELSE max_attempts END) THEN 2 ELSE 1 END,
    finished_at = CASE WHEN attempts >= (CASE WHEN ?4 > 0 THEN ?4 ELSE max_attempts END) THEN ?5 END,
    visible_at = ?6
WHERE id = ?1 AND lease_id = ?2 AND state < 2
RETURNING state`

	// sqlExtendLease pushes the end of lease ?1's row to ?2 when that is
	// later, or writes the row again when a sweep or a finish deleted it
	// after the lease ran out, if queue ?3 has an in-flight limit (a queue
	// without one keeps no rows): the messages the Extend took back count
	// against the limit again. Extend skips it for a lease claimed without
	// a limit, which keeps no row even when a limit came since.
	sqlExtendLease = `
INSERT INTO leases (id, queue, consumer, claimed_at, expires_at)
SELECT ?1, ?3, ?4, ?5, ?2 WHERE EXISTS (SELECT 1 FROM queues WHERE name = ?3 AND max_in_flight > 0)
ON CONFLICT (id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`
	// sqlExtendMessages keeps the lease's messages, also ones whose lease
	// ran out and that no other claim has taken yet.
	sqlExtendMessages = `
UPDATE messages SET state = 1, visible_at = ?2
WHERE lease_id = ?1 AND state = ?4 AND id IN (SELECT value FROM json_each(?3))
RETURNING id`

	sqlRelease = `
UPDATE messages SET state = 1, lease_id = NULL, visible_at = ?3, attempts = max(attempts - 1, 0)
WHERE lease_id = ?1 AND state < 2 AND id IN (SELECT value FROM json_each(?2))
RETURNING id`

	sqlClaimedBodies = `SELECT id, body FROM bodies WHERE id IN (SELECT value FROM json_each(?1))`

	// sqlLeaseHeld is the messages lease ?1 holds, with their queue and
	// lease end: in flight (or ran out, not yet moved) in messages_leased,
	// which the walk reads alone for the lease's queue (the id carries the
	// low 16 bits of its counts row: newLeaseID), and ran out and moved into
	// the ready set in messages_lapsed.
	sqlLeaseHeld = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.size, b.body,
       m.queue, m.visible_at
FROM messages m JOIN bodies b ON b.id = m.id
WHERE m.id IN (SELECT id FROM messages INDEXED BY messages_leased
               WHERE queue IN (SELECT queue FROM queue_counts WHERE (rowid & 65535) = ((?1 >> 8) & 65535))
                 AND state = 1 AND lease_id IS NOT NULL AND lease_id = ?1
               UNION ALL
               SELECT id FROM messages INDEXED BY messages_lapsed WHERE state = 0 AND lease_id = ?1)
ORDER BY m.sort_key, m.id`

	sqlLeaseHasRow = `SELECT EXISTS (SELECT 1 FROM leases WHERE id = ?1)`

	sqlUpsertPaused = `
INSERT INTO queues (name, paused) VALUES (?1, ?2)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused`
	sqlUpsertLimit = `
INSERT INTO queues (name, max_in_flight) VALUES (?1, ?2)
ON CONFLICT (name) DO UPDATE SET max_in_flight = excluded.max_in_flight`

	sqlQueueNames  = `SELECT queue FROM queue_counts UNION SELECT name FROM queues ORDER BY 1`
	sqlQueueExists = `
SELECT EXISTS (SELECT 1 FROM queue_counts WHERE queue = ?1) OR EXISTS (SELECT 1 FROM queues WHERE name = ?1)`

	// sqlAddCounts adds one transaction's changes to a queue's counts.
	sqlAddCounts = `
INSERT INTO queue_counts (queue, ready_set, waiting, waiting_leased, dead, acked, enqueued, claimed,
    settled_acked, settled_retried, settled_dead, settled_expired, settled_released, redriven, purged,
    wait_count, wait_sum_ms, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
    ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)
ON CONFLICT (queue) DO UPDATE SET
    ready_set = ready_set + ?2, waiting = waiting + ?3, waiting_leased = waiting_leased + ?4,
    dead = dead + ?5, acked = acked + ?6, enqueued = enqueued + ?7, claimed = claimed + ?8,
    settled_acked = settled_acked + ?9, settled_retried = settled_retried + ?10,
    settled_dead = settled_dead + ?11, settled_expired = settled_expired + ?12,
    settled_released = settled_released + ?13, redriven = redriven + ?14, purged = purged + ?15,
    wait_count = wait_count + ?16, wait_sum_ms = wait_sum_ms + ?17,
    w0 = w0 + ?18, w1 = w1 + ?19, w2 = w2 + ?20, w3 = w3 + ?21, w4 = w4 + ?22, w5 = w5 + ?23,
    w6 = w6 + ?24, w7 = w7 + ?25, w8 = w8 + ?26, w9 = w9 + ?27, w10 = w10 + ?28, w11 = w11 + ?29`

	// sqlZeroStateCounts is a purged queue's state counts.
	sqlZeroStateCounts = `
UPDATE queue_counts SET ready_set = 0, waiting = 0, waiting_leased = 0, dead = 0, acked = 0 WHERE queue = ?1`

	// sqlBandHead is the first ready message at or after a sort key: the
	// oldest of its priority on a queue without aging (oldestReady).
	sqlBandHead = `
SELECT priority, visible_at FROM messages
WHERE queue = ?1 AND state = 0 AND sort_key >= ?2 ORDER BY sort_key, id LIMIT 1`
	// sqlOldestOfHead is the oldest among the first ?2 ready messages in
	// claim order, for a queue with aging (oldestReady).
	sqlOldestOfHead = `
SELECT min(visible_at) FROM (
    SELECT visible_at FROM messages WHERE queue = ?1 AND state = 0 ORDER BY sort_key, id LIMIT ?2)`

	sqlCounters = `
SELECT enqueued, claimed, settled_acked, settled_retried, settled_dead, settled_expired, settled_released,
       redriven, purged, wait_count, wait_sum_ms, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11
FROM queue_counts WHERE queue = ?1`

	// sqlStats reads the kept counts and adds what the clock changed since:
	// waiting messages that are due (delayed ones whose time came, leases
	// that ran out) count as ready until a claim moves them. The due counts
	// and the oldest of each kind read the two waiting indexes alone.
	sqlStats = `
SELECT c.ready_set, c.waiting, c.waiting_leased, c.dead, c.acked,
    (SELECT count(*) FROM messages
     WHERE queue = ?1 AND state = 1 AND lease_id IS NULL AND visible_at <= ?2),
    (SELECT count(*) FROM messages
     WHERE queue = ?1 AND state = 1 AND lease_id IS NOT NULL AND visible_at <= ?2),
    (SELECT min(visible_at) FROM messages WHERE queue = ?1 AND state = 1 AND lease_id IS NULL AND visible_at <= ?2),
    (SELECT min(visible_at) FROM messages
     WHERE queue = ?1 AND state = 1 AND lease_id IS NOT NULL AND visible_at <= ?2)
FROM (SELECT 1) LEFT JOIN queue_counts c ON c.queue = ?1`

	// sqlQueueRow: settings and live leases. A queue with a limit counts
	// its lease rows (what the limit counts); one without has none, and its
	// leases are counted from the messages in flight, in messages_leased
	// alone.
	sqlQueueRow = `
SELECT coalesce(q.paused, 0), coalesce(q.max_in_flight, 0),
       CASE WHEN coalesce(q.max_in_flight, 0) > 0
            THEN (SELECT count(*) FROM leases WHERE queue = ?1 AND expires_at > ?2)
            ELSE (SELECT count(DISTINCT lease_id) FROM messages INDEXED BY messages_leased
                  WHERE queue = ?1 AND state = 1 AND lease_id IS NOT NULL AND visible_at > ?2) END
FROM (SELECT 1) LEFT JOIN queues q ON q.name = ?1`

	// Peek statements list in the order a claim (or a look at history) takes.
	sqlPeekReady = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.visible_at, m.last_error, m.enqueued_by, m.claimed_by, b.body
FROM messages m JOIN bodies b ON b.id = m.id
WHERE m.queue = ?1 AND (m.state = 0 OR (m.state = 1 AND m.lease_id IS NULL AND m.visible_at <= ?2)
                       OR (m.state = 1 AND m.lease_id IS NOT NULL AND m.visible_at <= ?2))
ORDER BY CASE WHEN m.state = 0 THEN m.sort_key ELSE m.visible_at - m.priority * ?4 END, m.id LIMIT ?3`
	sqlPeekPending = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.visible_at, m.last_error, m.enqueued_by, m.claimed_by, b.body
FROM messages m JOIN bodies b ON b.id = m.id
WHERE m.queue = ?1 AND m.state = 1 AND m.lease_id IS NULL AND m.visible_at > ?2
UNION ALL
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.visible_at, m.last_error, m.enqueued_by, m.claimed_by, b.body
FROM messages m JOIN bodies b ON b.id = m.id
WHERE m.queue = ?1 AND m.state = 1 AND m.lease_id IS NOT NULL AND m.visible_at > ?2
ORDER BY 8, 1 LIMIT ?3`
	sqlPeekFinished = `
SELECT m.id, m.priority, m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.finished_at, m.last_error, m.enqueued_by, m.claimed_by, b.body
FROM messages m JOIN bodies b ON b.id = m.id
WHERE m.queue = ?1 AND m.state = ?3
ORDER BY m.finished_at DESC, m.id DESC LIMIT ?2`

	sqlRedriveAll = `
UPDATE messages SET state = 1, attempts = 0, visible_at = ?2, finished_at = NULL
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

	sqlInsertHistory = `
INSERT INTO history (queue, at, ready, delayed, in_flight, dead, enqueued, acked, oldest_ready)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (queue, at) DO NOTHING`
	sqlPruneHistory = `DELETE FROM history WHERE at < ?1`
	sqlHistory      = `
SELECT at, ready, delayed, in_flight, dead, enqueued, acked, oldest_ready
FROM history WHERE queue = ?1 AND at >= ?2 ORDER BY at`
)

// Bulk enqueue inserts its rows with multi-row INSERTs of these sizes,
// largest first (a batch of 100 runs as 64 + 32 + 4), so any batch runs as a
// few statements from a fixed set that the connection prepares once. The
// statements are built once from the constant parts below; every value is
// bound.
var bulkSizes = [...]int{64, 32, 16, 8, 4, 2, 1}

const (
	sqlInsertMessagesHead = `
INSERT INTO messages (id, queue, state, priority, sort_key, visible_at, max_attempts, group_key, dedupe_key, enqueued_at, size, enqueued_by)
VALUES `
	sqlInsertMessagesRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
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
