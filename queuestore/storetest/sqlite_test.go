package storetest_test

import (
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/storetest"
)

// The SQLite store keeps the contract.
func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.OpenSQLite, storetest.RowCounter(countSQLiteRows))
}

// countSQLiteRows is Stats the slow way: by counting rows. The bodies of
// acked messages that wait on their queue's list for being deleted together
// are not counted (TestBodyTrash checks that list).
func countSQLiteRows(tb testing.TB, b queuestore.Backend, queue string, now time.Time) storetest.Rows {
	tb.Helper()
	var r storetest.Rows
	err := b.(*queuestore.Store).DB().QueryRow(`
SELECT coalesce(sum(state = 0), 0),
       coalesce(sum(state = 0 OR (state = 1 AND visible_at <= ?2)), 0),
       coalesce(sum(state = 1 AND visible_at > ?2 AND lease_id IS NULL), 0),
       coalesce(sum(state = 1 AND visible_at > ?2 AND lease_id IS NOT NULL), 0),
       coalesce(sum(state = 2), 0), coalesce(sum(state = 3), 0),
       (SELECT count(*) FROM bodies) -
       (SELECT coalesce(sum(json_array_length(body_trash)), 0) FROM queue_counts)
FROM messages WHERE queue = ?1`, queue, now.UnixMilli()).Scan(&r.ReadySet, &r.Ready, &r.Delayed, &r.InFlight, &r.Dead, &r.Acked, &r.Bodies)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// Queues move from one SQLite file to another.
func TestMovesSQLiteToSQLite(t *testing.T) {
	t.Parallel()
	storetest.RunMoves(t, storetest.OpenSQLite, storetest.OpenSQLite)
}
