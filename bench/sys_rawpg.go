package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// rawPGSystem is the PostgreSQL floor, as rawSystem is SQLite's: daguq's
// physical layout (a small row per message with a state, a partial index
// over the ready ones, the body in its own table) and its statement shapes
// (claim = the ready rows picked once in a materialized CTE with FOR UPDATE
// SKIP LOCKED through that index, then updated, returning the bodies; ack =
// one DELETE of the messages and their bodies by an id array), with no
// queue logic: no queue name, priority, attempts, lease row, settings,
// advisory lock, kept counts or chores. Each statement is a transaction of
// its own, on a pgx pool of the size daguq's store uses.
type rawPGSystem struct{}

const (
	rawPGSchema = `
CREATE TABLE raw_messages (
    id         bigint   PRIMARY KEY,
    state      smallint NOT NULL, -- 0 ready, 1 leased
    visible_at bigint   NOT NULL
);
CREATE SEQUENCE raw_message_ids AS bigint OWNED BY raw_messages.id;
CREATE INDEX raw_messages_ready ON raw_messages (id) WHERE state = 0;
CREATE TABLE raw_bodies (id bigint PRIMARY KEY, body bytea NOT NULL);`
	// rawPGEnqueue stores bodies ($1) from one array, in one statement.
	rawPGEnqueue = `
WITH b AS MATERIALIZED (SELECT nextval('raw_message_ids') AS id, body FROM unnest($1::bytea[]) AS u (body)),
m AS (INSERT INTO raw_messages (id, state, visible_at) SELECT id, 0, $2 FROM b)
INSERT INTO raw_bodies (id, body) SELECT id, body FROM b`
	rawPGClaim = `
WITH picked AS MATERIALIZED (
    SELECT id FROM raw_messages WHERE state = 0 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE raw_messages m SET state = 1, visible_at = $1
FROM picked WHERE m.id = picked.id
RETURNING m.id, (SELECT body FROM raw_bodies b WHERE b.id = m.id)`
	rawPGAck = `
WITH gone AS (DELETE FROM raw_messages WHERE id = ANY($1) RETURNING id)
DELETE FROM raw_bodies b USING gone WHERE b.id = gone.id`
	rawPGRemaining = `SELECT count(*) FROM raw_messages`
)

func (rawPGSystem) name() string { return "raw PostgreSQL" }

func (rawPGSystem) create(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = pool.Exec(ctx, rawPGSchema)
	return err
}

func (rawPGSystem) open(ctx context.Context, url string) (queue, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	return &rawPGQueue{pool: pool}, nil
}

type rawPGQueue struct{ pool *pgxpool.Pool }

func (q *rawPGQueue) enqueue(ctx context.Context, bodies [][]byte) error {
	_, err := q.pool.Exec(ctx, rawPGEnqueue, bodies, time.Now().UnixMilli())
	return err
}

func (q *rawPGQueue) claim(ctx context.Context, max int) (claimed, error) {
	rows, err := q.pool.Query(ctx, rawPGClaim, time.Now().Add(leaseTime).UnixMilli(), max)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	c := &rawClaimed{}
	for rows.Next() {
		var id int64
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return nil, err
		}
		c.ids = append(c.ids, id)
		c.payloads = append(c.payloads, b)
	}
	if err := rows.Err(); err != nil || len(c.ids) == 0 {
		return nil, err
	}
	return c, nil
}

func (q *rawPGQueue) ack(ctx context.Context, c claimed) error {
	_, err := q.pool.Exec(ctx, rawPGAck, c.(*rawClaimed).ids)
	return err
}

func (q *rawPGQueue) ackOne(ctx context.Context, c claimed, i int) error {
	_, err := q.pool.Exec(ctx, rawPGAck, c.(*rawClaimed).ids[i:i+1])
	return err
}

func (q *rawPGQueue) consume(ctx context.Context, batch int, untilStop bool, stop <-chan struct{}, h *handler) error {
	return consumeLoop(ctx, q, batch, untilStop, stop, h)
}

func (q *rawPGQueue) remaining(ctx context.Context) (int64, error) {
	var n int64
	err := q.pool.QueryRow(ctx, rawPGRemaining).Scan(&n)
	return n, err
}

func (q *rawPGQueue) close() error {
	q.pool.Close()
	return nil
}
