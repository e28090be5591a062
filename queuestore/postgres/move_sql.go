package postgres

// The statements of moving queues (move.go), apart from sql.go so that the
// move stays a change of its own. Locks follow sql.go's order: the queue's
// advisory lock, message rows in id order, the counts row last.

const (
	sqlStoreID = `SELECT store_id FROM daguq_store`

	sqlMoveQueueSettings = `SELECT paused, max_in_flight, aging_ms FROM daguq_queues WHERE name = $1`
	sqlMoveAdoptSettings = `
INSERT INTO daguq_queues (name, paused, max_in_flight, aging_ms) VALUES ($1, $2, $3, $4)`

	// sqlTakeOut locks what can move ($3 now), in id order: ready and dead
	// messages, waiting ones that no live lease holds. It waits for rows
	// another transaction holds (a finish of a lease that ran out) rather
	// than skip them, so that a pass misses nothing.
	sqlTakeOut = `
SELECT m.id, m.state, m.priority, m.visible_at, m.lease_id IS NOT NULL, m.attempts, m.max_attempts, m.group_key,
       m.dedupe_key, m.enqueued_at, coalesce(m.finished_at, 0), m.last_error, coalesce(b.body, ''::bytea)
FROM daguq_messages m LEFT JOIN daguq_bodies b ON b.id = m.id
WHERE m.queue = $1 AND m.id > $2
  AND (m.state IN (0, 2) OR (m.state = 1 AND (m.lease_id IS NULL OR m.visible_at <= $3)))
ORDER BY m.id
LIMIT $4
FOR UPDATE OF m`

	// sqlMoveDelete deletes moved messages ($1) and their bodies, and says
	// how many went from each state, for the counts.
	sqlMoveDelete = `
WITH gone AS (DELETE FROM daguq_messages WHERE id = ANY($1) RETURNING id, state, lease_id IS NOT NULL AS leased),
bodies AS (DELETE FROM daguq_bodies b USING gone WHERE b.id = gone.id)
SELECT state, leased, count(*) FROM gone GROUP BY state, leased`

	sqlOriginsPresent = `SELECT source_id FROM daguq_move_origins WHERE source = $1 AND source_id = ANY($2)`
	// sqlPutMessages stores moved messages from arrays, with ids taken
	// before (sqlNextMessageIDs); a dedupe key taken skips its row, and
	// RETURNING says which went in. Their bodies go in with
	// sqlInsertBodies.
	sqlPutMessages = `
INSERT INTO daguq_messages (id, queue, state, priority, sort_key, visible_at, attempts, max_attempts, group_key,
                            dedupe_key, enqueued_at, finished_at, last_error, size)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::bigint[], $5::bigint[], $6::bigint[],
                     $7::integer[], $8::integer[], $9::text[], $10::text[], $11::bigint[], $12::bigint[],
                     $13::text[], $14::bigint[])
ORDER BY 1
ON CONFLICT (queue, dedupe_key) WHERE dedupe_key IS NOT NULL AND state <> 3 DO NOTHING
RETURNING id`
	sqlPutOrigins = `
INSERT INTO daguq_move_origins (source, source_id, queue, message_id, moved_at)
SELECT $1, s, q, m, $5 FROM unnest($2::bigint[], $3::text[], $4::bigint[]) AS t (s, q, m)`

	sqlOrigins = `
SELECT source_id, message_id FROM daguq_move_origins
WHERE source = $1 AND queue = $2 AND source_id > $3 ORDER BY source_id LIMIT $4`
	sqlForgetOrigins = `DELETE FROM daguq_move_origins WHERE source = $1 AND source_id = ANY($2)`

	sqlMovePresent = `
SELECT id, state, visible_at, lease_id IS NOT NULL FROM daguq_messages WHERE queue = $1 AND id = ANY($2)`
)
