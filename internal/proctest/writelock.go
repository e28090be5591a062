package proctest

import (
	"context"
	"database/sql"
	"testing"
)

// HoldWriteLock takes the write lock of the SQLite database db (BEGIN
// IMMEDIATE on a connection of its own), as another process writing
// would: every other writer waits meanwhile. unlock gives it back (later
// calls do nothing).
func HoldWriteLock(tb testing.TB, db *sql.DB) (unlock func()) {
	tb.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		tb.Fatal(err)
	}
	held := true
	unlock = func() {
		if held {
			held = false
			conn.ExecContext(context.Background(), "ROLLBACK")
			conn.Close()
		}
	}
	tb.Cleanup(unlock)
	return unlock
}
