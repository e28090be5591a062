package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// rawSystem is the floor: daguq's physical layout (a small row per message,
// the body in its own table) and its statement shapes (claim = one UPDATE ...
// RETURNING in an immediate transaction, ack = DELETE by a JSON id list in
// another), with no queue logic: no queue name, priority, attempts, lease
// table, settings check or periodic chores. It drives SQLite the way the
// store does (see tx), so the difference is the queue logic alone.
type rawSystem struct{}

const (
	rawSchema = `
CREATE TABLE messages (id INTEGER PRIMARY KEY, visible_at INTEGER NOT NULL) STRICT;
CREATE INDEX messages_ready ON messages (visible_at, id);
CREATE TABLE bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL) STRICT;`
	rawInsertMessage = `INSERT INTO messages (visible_at) VALUES (?1) RETURNING id`
	rawInsertBody    = `INSERT INTO bodies (id, body) VALUES (?1, ?2)`
	rawClaim         = `
UPDATE messages SET visible_at = ?1
WHERE id IN (SELECT id FROM messages WHERE visible_at <= ?2 ORDER BY visible_at, id LIMIT ?3)
RETURNING id, (SELECT body FROM bodies WHERE bodies.id = messages.id)`
	rawAckMessages = `DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?1))`
	rawAckBodies   = `DELETE FROM bodies WHERE id IN (SELECT value FROM json_each(?1))`
	rawRemaining   = `SELECT count(*) FROM messages`
)

func (rawSystem) name() string { return "raw SQLite" }

func (rawSystem) create(ctx context.Context, path string) error {
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, rawSchema)
	return err
}

func (rawSystem) open(ctx context.Context, path string) (queue, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	return &rawQueue{db: db}, nil
}

type rawQueue struct{ db *sql.DB }

// execer is what the floor's statements run on: a connection inside an
// explicit transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tx runs fn between BEGIN IMMEDIATE and COMMIT on the process's one
// connection, the way daguq's store drives SQLite: statements run on a
// context without cancellation, so database/sql and the driver start no
// goroutine per transaction or statement, and the driver's statement cache
// (_stmt_cache_size) parses each statement once.
func (q *rawQueue) tx(ctx context.Context, fn func(execer) error) error {
	conn, err := q.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx = context.WithoutCancel(ctx)
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := fn(conn); err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	return nil
}

func (q *rawQueue) enqueue(ctx context.Context, bodies [][]byte) error {
	return q.tx(ctx, func(tx execer) error {
		now := time.Now().UnixMilli()
		for _, b := range bodies {
			var id int64
			if err := tx.QueryRowContext(ctx, rawInsertMessage, now).Scan(&id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, rawInsertBody, id, b); err != nil {
				return err
			}
		}
		return nil
	})
}

type rawClaimed struct {
	ids      []int64
	payloads [][]byte
}

func (c *rawClaimed) bodies() [][]byte { return c.payloads }

func (q *rawQueue) claim(ctx context.Context, max int) (claimed, error) {
	c := &rawClaimed{}
	err := q.tx(ctx, func(tx execer) error {
		c.ids, c.payloads = c.ids[:0], c.payloads[:0]
		now := time.Now().UnixMilli()
		rows, err := tx.QueryContext(ctx, rawClaim, now+leaseTime.Milliseconds(), now, max)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var b []byte
			if err := rows.Scan(&id, &b); err != nil {
				return err
			}
			c.ids = append(c.ids, id)
			c.payloads = append(c.payloads, b)
		}
		return rows.Err()
	})
	if err != nil || len(c.ids) == 0 {
		return nil, err
	}
	return c, nil
}

func (q *rawQueue) ack(ctx context.Context, c claimed) error {
	list, _ := json.Marshal(c.(*rawClaimed).ids)
	return q.tx(ctx, func(tx execer) error {
		if _, err := tx.ExecContext(ctx, rawAckMessages, string(list)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, rawAckBodies, string(list))
		return err
	})
}

func (q *rawQueue) ackOne(ctx context.Context, c claimed, i int) error {
	list, _ := json.Marshal([]int64{c.(*rawClaimed).ids[i]})
	return q.tx(ctx, func(tx execer) error {
		if _, err := tx.ExecContext(ctx, rawAckMessages, string(list)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, rawAckBodies, string(list))
		return err
	})
}

func (q *rawQueue) consume(ctx context.Context, batch int, untilStop bool, stop <-chan struct{}, h *handler) error {
	return consumeLoop(ctx, q, batch, untilStop, stop, h)
}

func (q *rawQueue) remaining(ctx context.Context) (int64, error) {
	var n int64
	err := q.db.QueryRowContext(ctx, rawRemaining).Scan(&n)
	return n, err
}

func (q *rawQueue) close() error { return q.db.Close() }
