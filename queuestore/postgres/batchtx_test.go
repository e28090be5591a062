package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/internal/pgtest"
)

// A row that is not there is an answer, not a failed batch: the batch's
// statements stay prepared on the connection (pgx drops those of a batch
// that failed, and a claim would prepare and plan them again).
func TestBatchRowNoRowsKeepsStatementsPrepared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const none = `SELECT 1 WHERE $1::int < 0`
	tx := &batchTx{conn: conn}
	tx.queue(`SELECT $1::int + 1`, 1)
	var n int
	if err := tx.QueryRow(ctx, none, 1).Scan(&n); !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("scan of no row: %v, want pgx.ErrNoRows", err)
	}
	// The next statement sent is when pgx drops what it gave up.
	var prepared []string
	rows, err := tx.Query(ctx, `SELECT statement FROM pg_prepared_statements`)
	if err != nil {
		t.Fatal(err)
	}
	if prepared, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{none, `SELECT $1::int + 1`} {
		found := false
		for _, p := range prepared {
			found = found || p == want
		}
		if !found {
			t.Errorf("%q no longer prepared after a scan found no row; prepared: %q", want, prepared)
		}
	}
	tx.rollback(ctx)
}
