package postgres

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Claims that stay fast while an old transaction holds vacuum back
// (docs/postgres.md#vacuum-and-bloat). A claim's update leaves the
// message's old version, and its entries in the indexes, until vacuum may
// remove them: while a transaction older than them is open, it may not. A
// claim that walked an index from the bottom of the queue's range would pass
// every message claimed since that transaction began, each checked in the
// table, and slow down the longer it stays open. So claims start their walks
// higher:
//
//   - the walk of the ready set starts at the queue's ready floor (sql.go),
//     kept in the database, exact: lowered by every writer that makes a
//     message ready below it, raised by a claim every floorRaiseEvery;
//   - the walk of due waiting messages (promote) starts at this process's
//     cursor: the time it last walked up to, less promoteMargin for writers
//     still committing messages due before it; every fullPromoteEvery it
//     walks from the bottom, for a message it skipped while another
//     transaction held it and that transaction rolled back.
const (
	floorRaiseEvery  = 200 * time.Millisecond
	floorMargin      = time.Second // an empty ready set's floor: now less this
	promoteMargin    = 200 * time.Millisecond
	fullPromoteEvery = 5 * time.Minute
)

// noFloor is the lowest sort key: a walk from the bottom.
const noFloor = math.MinInt64

// keepFloor keeps queue's ready floor at or below key, the smallest sort key
// of the messages the transaction made ready, and holds the queue's row
// until the transaction ends: a claim raises the floor only when no writer
// that may commit messages below it is running.
func keepFloor(ctx context.Context, tx querier, queue string, key int64) error {
	var floor *int64
	err := tx.QueryRow(ctx, sqlShareFloor, queue).Scan(&floor)
	if errors.Is(err, pgx.ErrNoRows) { // the queue's first message: no row yet
		if _, err := tx.Exec(ctx, sqlFloorRow, queue); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, sqlShareFloor, queue).Scan(&floor)
	}
	if err != nil {
		return err
	}
	if floor != nil && *floor > key {
		_, err = tx.Exec(ctx, sqlLowerFloor, queue, key)
	}
	return err
}

// raiseFloor raises queue's ready floor to the head of its ready set, every
// floorRaiseEvery per process. Not while a writer holds the row (it may be
// about to commit messages below the head this transaction sees). It locks
// the row with the statements t holds queued; the raise is queued for the
// COMMIT's batch.
func (s *Store) raiseFloor(ctx context.Context, t *batchTx, queue string, now int64) error {
	if !s.due(s.nextFloorRaise, queue, now, floorRaiseEvery) {
		return nil
	}
	var floor *int64
	err := t.QueryRow(ctx, sqlLockFloor, queue).Scan(&floor)
	if errors.Is(err, pgx.ErrNoRows) { // held by another transaction
		return nil
	}
	if err != nil {
		return err
	}
	from := int64(noFloor)
	if floor != nil {
		from = *floor
	}
	t.queue(sqlRaiseFloor, queue, from, now-floorMargin.Milliseconds())
	return nil
}

// promoteFrom is where this process's walk of queue's due messages starts:
// its cursor, or the bottom when it has none or a full walk is due.
func (s *Store) promoteFrom(queue string, now int64) int64 {
	if s.due(s.nextFullPromote, queue, now, fullPromoteEvery) {
		return noFloor
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if from, ok := s.promoteCursor[queue]; ok {
		return from
	}
	return noFloor
}

// advancePromote moves queue's cursor up to walkedTo less promoteMargin,
// after a claim whose promotion walked every due message up to walkedTo
// committed.
func (s *Store) advancePromote(queue string, walkedTo int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	to := walkedTo - promoteMargin.Milliseconds()
	if from, ok := s.promoteCursor[queue]; !ok || to > from {
		s.promoteCursor[queue] = to
	}
}
