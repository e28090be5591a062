package queuestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Pause stops claims from queue (they return nothing); enqueue still works.
func (s *Store) Pause(ctx context.Context, queue string) error {
	return s.setQueue(ctx, queue, "pause", sqlUpsertPaused, 1)
}

// Resume lets claims take from queue again.
func (s *Store) Resume(ctx context.Context, queue string) error {
	return s.setQueue(ctx, queue, "resume", sqlUpsertPaused, 0)
}

// SetLimit caps the live leases of queue across every process and DAG: a
// claim beyond it returns nothing until a lease ends. Zero removes the cap.
// The cap counts leases (batches being handled), not messages: one lease is
// one handler run, which is what a rate-limited service sees.
func (s *Store) SetLimit(ctx context.Context, queue string, limit int) error {
	if limit < 0 || limit > 1_000_000 {
		return fmt.Errorf("%w: limit must be 0..1000000 (0: no limit), got %d", ErrInvalid, limit)
	}
	return s.setQueue(ctx, queue, "set limit of", sqlUpsertLimit, limit)
}

func (s *Store) setQueue(ctx context.Context, queue, op, stmt string, value int) error {
	if err := ValidateQueueName(queue); err != nil {
		return err
	}
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, stmt, queue, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s queue %q: %w", op, queue, err)
	}
	return nil
}

// Stats is a queue's state at one moment.
type Stats struct {
	Queue          string        `json:"queue"`
	Ready          int64         `json:"ready"`
	Delayed        int64         `json:"delayed"`
	InFlight       int64         `json:"in_flight"`
	Dead           int64         `json:"dead"`
	Acked          int64         `json:"acked"` // retained acks only
	OldestReadyAge time.Duration `json:"oldest_ready_age_ns"`
	Leases         int64         `json:"leases"`          // live leases (batches in flight)
	InFlightLimit  int64         `json:"in_flight_limit"` // live leases at most; 0: no limit
	Paused         bool          `json:"paused"`
}

// Queues lists every queue that has messages or settings.
func (s *Store) Queues(ctx context.Context) ([]string, error) {
	names, err := s.readNames(ctx, sqlQueueNames)
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	return names, nil
}

// readNames reads a column of names.
func (s *Store) readNames(ctx context.Context, query string) ([]string, error) {
	rows, err := s.query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// QueueExists reports whether queue is known: it has had messages (its
// counts stay after a drain) or settings (a pause flag or an in-flight
// limit, even one set back).
func (s *Store) QueueExists(ctx context.Context, queue string) (bool, error) {
	if err := ValidateQueueName(queue); err != nil {
		return false, err
	}
	var found bool
	if err := s.readRow(ctx, sqlQueueExists, []any{queue}, &found); err != nil {
		return false, fmt.Errorf("look up queue %q: %w", queue, err)
	}
	return found, nil
}

// Stats counts queue's messages by state, from the counts the store keeps
// (no count of rows, however many there are).
func (s *Store) Stats(ctx context.Context, queue string) (Stats, error) {
	if err := ValidateQueueName(queue); err != nil {
		return Stats{}, err
	}
	st := Stats{Queue: queue}
	now := s.now()
	var readySet, waiting, waitingLeased, dead, acked, oldestDueFree, oldestDueLeased sql.NullInt64
	var dueFree, dueLeased int64
	err := s.readRow(ctx, sqlStats, []any{queue, now}, &readySet, &waiting, &waitingLeased, &dead, &acked,
		&dueFree, &dueLeased, &oldestDueFree, &oldestDueLeased)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %q: %w", queue, err)
	}
	var oldestReady sql.NullInt64
	if readySet.Int64 > 0 {
		if oldestReady, err = s.oldestReady(ctx, queue); err != nil {
			return Stats{}, fmt.Errorf("stats of %q: %w", queue, err)
		}
	}
	st.Ready = readySet.Int64 + dueFree + dueLeased
	st.Delayed = waiting.Int64 - waitingLeased.Int64 - dueFree
	st.InFlight = waitingLeased.Int64 - dueLeased
	st.Dead, st.Acked = dead.Int64, acked.Int64
	oldest := oldestReady
	for _, due := range []sql.NullInt64{oldestDueFree, oldestDueLeased} {
		if due.Valid && (!oldest.Valid || due.Int64 < oldest.Int64) {
			oldest = due
		}
	}
	if oldest.Valid {
		st.OldestReadyAge = time.Duration(max(now-oldest.Int64, 0)) * time.Millisecond
	}
	err = s.readRow(ctx, sqlQueueRow, []any{queue, now}, &st.Paused, &st.InFlightLimit, &st.Leases)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of %q: %w", queue, err)
	}
	return st, nil
}

// oldestReadyHeads bounds the index seeks of oldestReady.
const oldestReadyHeads = 64

// oldestReady is when the oldest message of the ready set became ready,
// read from the claim index without an index of its own (which would cost
// every claim a write). Without aging the ready set is in priority bands,
// each oldest first: the head of each band, up to oldestReadyHeads bands,
// gives the exact answer. With aging, older messages move to the front of
// the claim order: the oldest among the first 1,000 is the answer
// (docs/lifecycle.md).
func (s *Store) oldestReady(ctx context.Context, queue string) (sql.NullInt64, error) {
	var aging int64
	if err := s.readRow(ctx, sqlAgingOf, []any{queue}, &aging); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return sql.NullInt64{}, err
	}
	var oldest sql.NullInt64
	if aging > 0 {
		err := s.readRow(ctx, sqlOldestOfHead, []any{queue, 1000}, &oldest)
		return oldest, err
	}
	key := int64(math.MinInt64)
	for range oldestReadyHeads {
		var priority, visible int64
		err := s.readRow(ctx, sqlBandHead, []any{queue, key}, &priority, &visible)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return oldest, err
		}
		if !oldest.Valid || visible < oldest.Int64 {
			oldest = sql.NullInt64{Int64: visible, Valid: true}
		}
		if priority <= MinPriority {
			break
		}
		key = -(priority - 1) * noAgingStep // the next lower priority's band
	}
	return oldest, nil
}

// PeekOptions say which messages Peek lists.
type PeekOptions struct {
	// State: StateReady (default, in claim order), StateDelayed (delayed and
	// in flight, by the time they become visible), StateDead or StateAcked
	// (newest first).
	State State
	// Limit: 1..MaxClaim, default 10.
	Limit int
}

// Peek lists messages without leasing them.
func (s *Store) Peek(ctx context.Context, queue string, opts PeekOptions) ([]Message, error) {
	if err := ValidateQueueName(queue); err != nil {
		return nil, err
	}
	if opts.Limit == 0 {
		opts.Limit = 10
	}
	if opts.Limit < 1 || opts.Limit > MaxClaim {
		return nil, fmt.Errorf("%w: peek limit must be 1..%d, got %d", ErrInvalid, MaxClaim, opts.Limit)
	}
	now := s.now()
	var rows *sql.Rows
	var err error
	switch opts.State {
	case "", StateReady:
		var aging int64
		if err := s.readRow(ctx, sqlAgingOf, []any{queue}, &aging); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("peek %q: %w", queue, err)
		}
		rows, err = s.query(ctx, sqlPeekReady, queue, now, opts.Limit, sortStep(aging))
	case StateDelayed, StateInFlight:
		rows, err = s.query(ctx, sqlPeekPending, queue, now, opts.Limit)
	case StateDead:
		rows, err = s.query(ctx, sqlPeekFinished, queue, opts.Limit, codeDead)
	case StateAcked:
		rows, err = s.query(ctx, sqlPeekFinished, queue, opts.Limit, codeAcked)
	default:
		return nil, fmt.Errorf("%w: peek state %q: want ready, delayed, in_flight, dead or acked", ErrInvalid, opts.State)
	}
	if err != nil {
		return nil, fmt.Errorf("peek %q: %w", queue, err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m := Message{Queue: queue, State: opts.State}
		var group, dedupe, lastErr, enqueuedBy, claimedBy sql.NullString
		var enqueued, at int64
		if err := rows.Scan(&m.ID, &m.Priority, &m.Attempt, &m.MaxAttempts, &group, &dedupe, &enqueued, &at, &lastErr,
			&enqueuedBy, &claimedBy, &m.Body); err != nil {
			return nil, err
		}
		m.EnqueuedBy, m.ClaimedBy = enqueuedBy.String, claimedBy.String
		m.Group, m.DedupeKey, m.LastError = group.String, dedupe.String, lastErr.String
		m.EnqueuedAt, m.VisibleAt = msTime(enqueued), msTime(at)
		if m.State == "" {
			m.State = StateReady
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Redrive puts dead messages of queue (all of them when ids is empty) back
// to ready with their attempts reset. It returns how many moved.
func (s *Store) Redrive(ctx context.Context, queue string, ids ...int64) (int64, error) {
	moved := func(n int64) counts { return counts{Dead: -n, Waiting: n, Redriven: n} }
	if len(ids) == 0 {
		return s.change(ctx, "redrive dead letters of", queue, moved, []string{sqlRedriveAll}, queue, s.now())
	}
	return s.change(ctx, "redrive dead letters of", queue, moved, []string{sqlRedriveIDs}, queue, s.now(), jsonIDs(ids))
}

// PurgeDead deletes dead messages of queue (all when ids is empty).
func (s *Store) PurgeDead(ctx context.Context, queue string, ids ...int64) (int64, error) {
	gone := func(n int64) counts { return counts{Dead: -n, Purged: n} }
	if len(ids) == 0 {
		return s.change(ctx, "purge dead letters of", queue, gone, []string{sqlPurgeDeadBodies, sqlPurgeDead}, queue)
	}
	return s.change(ctx, "purge dead letters of", queue, gone, []string{sqlPurgeDeadIDsBodies, sqlPurgeDeadIDs}, queue, jsonIDs(ids))
}

// Purge deletes every message of queue, in flight ones included, and its
// leases. It returns how many messages went.
func (s *Store) Purge(ctx context.Context, queue string) (int64, error) {
	gone := func(n int64) counts { return counts{Purged: n} }
	return s.change(ctx, "purge queue", queue, gone, []string{sqlPurgeQueueBodies, sqlPurgeQueue, sqlPurgeQueueLeases, sqlDeleteBodyTrash, sqlEmptyBodyTrash, sqlZeroStateCounts}, queue)
}

// change runs statements in one transaction and returns the rows affected by
// the last messages statement (the second one when there are several);
// counted says what that changes in the queue's counts.
func (s *Store) change(ctx context.Context, op, queue string, counted func(n int64) counts, stmts []string, args ...any) (int64, error) {
	if err := ValidateQueueName(queue); err != nil {
		return 0, err
	}
	var n int64
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		for i, stmt := range stmts {
			res, err := tx.ExecContext(ctx, stmt, args...)
			if err != nil {
				return err
			}
			if i == 0 || i == 1 {
				n, _ = res.RowsAffected()
			}
		}
		change := counted(n)
		return change.flush(ctx, tx, queue)
	})
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", op, queue, err)
	}
	return n, nil
}

// jsonIDs encodes ids as a JSON array, for json_each.
func jsonIDs(ids []int64) string {
	b := make([]byte, 0, 2+len(ids)*8)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}
