package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// batchTx is a transaction whose statements travel to the server in
// batches (pgx.Batch), one round trip each: BEGIN rides with the first
// batch, COMMIT with the last, and statements that need no answer from one
// another go together. Claims and finishes, which run most often, use it
// (docs/postgres.md#where-daguqs-time-goes).
//
// A batch runs its statements one after the other, each with a snapshot of
// its own taken when it starts, as if they were sent one at a time; the
// first that fails stops the rest. Behind PgBouncer (the simple protocol)
// a batch is one query string of several statements.
type batchTx struct {
	conn    *pgx.Conn
	pending pgx.Batch
	begun   bool // BEGIN is queued or sent
}

var _ querier = (*batchTx)(nil)

// queue adds a statement to the next batch. Its answer goes to the callback
// set on the result (Exec, Query, QueryRow); without one, only an error is
// seen. A callback that returns an error stops the statements queued after
// it from being read, not from running, and makes pgx drop the batch's
// prepared statements: it must handle the answers it expects (pgx.ErrNoRows)
// itself.
func (t *batchTx) queue(sql string, args ...any) *pgx.QueuedQuery {
	if !t.begun {
		t.pending.Queue("begin")
		t.begun = true
	}
	return t.pending.Queue(sql, args...)
}

// send sends the queued statements and runs their callbacks.
func (t *batchTx) send(ctx context.Context) error {
	if t.pending.Len() == 0 {
		return nil
	}
	b := t.pending
	t.pending = pgx.Batch{}
	return t.conn.SendBatch(ctx, &b).Close()
}

// commit sends the queued statements followed by COMMIT. The server runs
// the COMMIT whatever their callbacks return, so a statement whose answer
// may refuse the transaction must be sent (send) before commit is called.
func (t *batchTx) commit(ctx context.Context) error {
	if !t.begun {
		return nil // nothing ran
	}
	t.queue("commit").Exec(func(tag pgconn.CommandTag) error {
		if tag.String() == "ROLLBACK" { // the transaction had failed
			return pgx.ErrTxCommitRollback
		}
		return nil
	})
	if err := t.send(ctx); err != nil {
		return err
	}
	if st := t.conn.PgConn().TxStatus(); st != 'I' {
		return fmt.Errorf("transaction still open after COMMIT (status %c)", st)
	}
	return nil
}

// rollback ends a transaction that failed, unless the connection is gone
// or the server ended it.
func (t *batchTx) rollback(ctx context.Context) {
	t.pending = pgx.Batch{}
	if t.conn.IsClosed() || t.conn.PgConn().TxStatus() == 'I' {
		return
	}
	t.conn.Exec(ctx, "rollback")
}

// Exec runs the queued statements and sql, and returns sql's command tag.
func (t *batchTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	t.queue(sql, args...).Exec(func(ct pgconn.CommandTag) error {
		tag = ct
		return nil
	})
	return tag, t.send(ctx)
}

// QueryRow is a row whose Scan runs the queued statements and sql.
func (t *batchTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return &batchRow{ctx: ctx, t: t, sql: sql, args: args}
}

// Query runs the queued statements, then sql on its own: its rows are read
// after the batch.
func (t *batchTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !t.begun {
		t.queue("select")
	}
	if err := t.send(ctx); err != nil {
		return nil, err
	}
	return t.conn.Query(ctx, sql, args...)
}

type batchRow struct {
	ctx  context.Context
	t    *batchTx
	sql  string
	args []any
}

// Scan runs the row's statement with the queued ones. No row is no error
// of the batch: pgx would drop the prepared statements of a batch that
// failed, and prepare them again on their next use.
func (r *batchRow) Scan(dest ...any) error {
	noRows := false
	r.t.queue(r.sql, r.args...).QueryRow(func(row pgx.Row) error {
		err := row.Scan(dest...)
		if errors.Is(err, pgx.ErrNoRows) {
			noRows = true
			return nil
		}
		return err
	})
	if err := r.t.send(r.ctx); err != nil {
		return err
	}
	if noRows {
		return pgx.ErrNoRows
	}
	return nil
}
