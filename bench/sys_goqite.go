package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"maragu.dev/goqite"
)

// goqiteSystem is maragu.dev/goqite on the same DSN settings. goqite has no
// batch receive: a batch of N is N ReceiveTx calls in one transaction, then N
// DeleteTx calls in one transaction, the most batching its public API allows.
type goqiteSystem struct{}

// goqiteSchema reads the SQLite schema goqite ships (schema_sqlite.sql,
// which the module does not export) from the module's own directory.
func goqiteSchema() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "maragu.dev/goqite").Output()
	if err != nil {
		return "", fmt.Errorf("find the goqite module (run from bench/): %w", err)
	}
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "schema_sqlite.sql"))
	return string(b), err
}

func (goqiteSystem) name() string { return "goqite" }

func (goqiteSystem) create(ctx context.Context, path string) error {
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	schema, err := goqiteSchema()
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, schema)
	return err
}

func (goqiteSystem) open(ctx context.Context, path string) (queue, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	q := goqite.New(goqite.NewOpts{DB: db, Name: benchQueue, Timeout: leaseTime})
	return &goqiteQueue{db: db, q: q}, nil
}

type goqiteQueue struct {
	db *sql.DB
	q  *goqite.Queue
}

func (q *goqiteQueue) enqueue(ctx context.Context, bodies [][]byte) error {
	if len(bodies) == 1 {
		return q.q.Send(ctx, goqite.Message{Body: bodies[0]})
	}
	return inTx(ctx, q.db, func(tx *sql.Tx) error {
		for _, b := range bodies {
			if err := q.q.SendTx(ctx, tx, goqite.Message{Body: b}); err != nil {
				return err
			}
		}
		return nil
	})
}

type goqiteClaimed []*goqite.Message

func (c goqiteClaimed) bodies() [][]byte {
	out := make([][]byte, len(c))
	for i, m := range c {
		out[i] = m.Body
	}
	return out
}

func (q *goqiteQueue) claim(ctx context.Context, max int) (claimed, error) {
	if max == 1 {
		m, err := q.q.Receive(ctx)
		if err != nil || m == nil {
			return nil, err
		}
		return goqiteClaimed{m}, nil
	}
	var got goqiteClaimed
	err := inTx(ctx, q.db, func(tx *sql.Tx) error {
		got = got[:0]
		for range max {
			m, err := q.q.ReceiveTx(ctx, tx)
			if err != nil {
				return err
			}
			if m == nil {
				break
			}
			got = append(got, m)
		}
		return nil
	})
	if err != nil || len(got) == 0 {
		return nil, err
	}
	return got, nil
}

func (q *goqiteQueue) ack(ctx context.Context, c claimed) error {
	msgs := c.(goqiteClaimed)
	if len(msgs) == 1 {
		return q.q.Delete(ctx, msgs[0].ID)
	}
	return inTx(ctx, q.db, func(tx *sql.Tx) error {
		for _, m := range msgs {
			if err := q.q.DeleteTx(ctx, tx, m.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

func (q *goqiteQueue) ackOne(ctx context.Context, c claimed, i int) error {
	return q.q.Delete(ctx, c.(goqiteClaimed)[i].ID)
}

func (q *goqiteQueue) consume(ctx context.Context, batch int, untilStop bool, stop <-chan struct{}, h *handler) error {
	return consumeLoop(ctx, q, batch, untilStop, stop, h)
}

func (q *goqiteQueue) remaining(ctx context.Context) (int64, error) {
	var n int64
	err := q.db.QueryRowContext(ctx, `select count(*) from goqite where queue = ?`, benchQueue).Scan(&n)
	return n, err
}

func (q *goqiteQueue) close() error { return q.db.Close() }

// inTx runs fn in one (immediate, by the DSN) transaction.
func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
