package queuestore

// The statements of moving queues (move_store.go), apart from sql.go so
// that the move stays a change of its own.

const (
	sqlStoreID = `SELECT store_id FROM store_identity`

	sqlMoveQueueSettings = `SELECT paused, max_in_flight, aging_ms FROM queues WHERE name = ?1`
	sqlMoveAdoptSettings = `INSERT INTO queues (name, paused, max_in_flight, aging_ms) VALUES (?1, ?2, ?3, ?4)`

	// sqlTakeOut lists what can move (?3 now): ready and dead messages,
	// waiting ones that no live lease holds. Bodies are read in the same
	// statement; the caller's write transaction keeps them as they are.
	sqlTakeOut = `
SELECT m.id, m.state, m.priority, m.visible_at, m.lease_id IS NOT NULL, m.attempts, m.max_attempts, m.group_key,
       m.dedupe_key, m.enqueued_at, coalesce(m.finished_at, 0), m.last_error, m.enqueued_by, m.claimed_by,
       coalesce(b.body, x'')
FROM messages m LEFT JOIN bodies b ON b.id = m.id
WHERE m.queue = ?1 AND m.id > ?2
  AND (m.state IN (0, 2) OR (m.state = 1 AND (m.lease_id IS NULL OR m.visible_at <= ?3)))
ORDER BY m.id
LIMIT ?4`

	// sqlMoveDelete deletes moved messages (?1, a JSON array) and says the
	// state each had, for the counts.
	sqlMoveDelete = `
DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?1))
RETURNING state, lease_id IS NOT NULL`
	sqlMoveDeleteBodies = `DELETE FROM bodies WHERE id IN (SELECT value FROM json_each(?1))`

	sqlOriginsPresent = `
SELECT source_id FROM move_origins WHERE source = ?1 AND source_id IN (SELECT value FROM json_each(?2))`
	// sqlPutMessage stores one moved message; a dedupe key taken skips it.
	sqlPutMessage = `
INSERT INTO messages (queue, state, priority, sort_key, visible_at, attempts, max_attempts, group_key, dedupe_key,
                      enqueued_at, finished_at, last_error, size, enqueued_by, claimed_by)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
ON CONFLICT (queue, dedupe_key) WHERE dedupe_key IS NOT NULL AND state <> 3 DO NOTHING
RETURNING id`
	sqlPutBody   = `INSERT INTO bodies (id, body) VALUES (?1, ?2)`
	sqlPutOrigin = `
INSERT INTO move_origins (source, source_id, queue, message_id, moved_at) VALUES (?1, ?2, ?3, ?4, ?5)`

	sqlOrigins = `
SELECT source_id, message_id FROM move_origins
WHERE source = ?1 AND queue = ?2 AND source_id > ?3 ORDER BY source_id LIMIT ?4`
	sqlForgetOrigins = `
DELETE FROM move_origins WHERE source = ?1 AND source_id IN (SELECT value FROM json_each(?2))`

	sqlMovePresent = `
SELECT id, state, visible_at, lease_id IS NOT NULL FROM messages
WHERE queue = ?1 AND id IN (SELECT value FROM json_each(?2))`
)
