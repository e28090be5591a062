package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/queuestore"
)

// Pause stops claims from queue (they return nothing); enqueue still works.
func (s *Store) Pause(ctx context.Context, queue string) error {
	return s.setQueue(ctx, queue, "pause", sqlUpsertPaused, true)
}

// Resume lets claims take from queue again.
func (s *Store) Resume(ctx context.Context, queue string) error {
	return s.setQueue(ctx, queue, "resume", sqlUpsertPaused, false)
}

// SetLimit caps the live leases of queue across every process and host: a
// claim beyond it returns nothing until a lease ends. Zero removes the cap.
func (s *Store) SetLimit(ctx context.Context, queue string, limit int) error {
	if err := queuestore.ValidateLimit(limit); err != nil {
		return err
	}
	return s.setQueue(ctx, queue, "set limit of", sqlUpsertLimit, int32(limit))
}

func (s *Store) setQueue(ctx context.Context, queue, op, stmt string, value any) error {
	if err := queuestore.ValidateQueueName(queue); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, stmt, queue, value); err != nil {
		return s.err(fmt.Errorf("%s queue %q: %w", op, queue, err))
	}
	return nil
}

// Queues lists every queue that has messages, counters or settings.
func (s *Store) Queues(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, sqlQueueNames)
	if err != nil {
		return nil, s.err(fmt.Errorf("list queues: %w", err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.err(fmt.Errorf("list queues: %w", err))
	}
	return names, nil
}

// QueueExists reports whether queue is known: it has had messages (its
// counts stay after a drain) or settings (a pause flag or an in-flight
// limit, even one set back).
func (s *Store) QueueExists(ctx context.Context, queue string) (bool, error) {
	if err := queuestore.ValidateQueueName(queue); err != nil {
		return false, err
	}
	var found bool
	if err := s.pool.QueryRow(ctx, sqlQueueExists, queue).Scan(&found); err != nil {
		return false, s.err(fmt.Errorf("look up queue %q: %w", queue, err))
	}
	return found, nil
}

// Stats counts queue's messages by state, from the counts the store keeps
// (no count of rows, however many there are).
func (s *Store) Stats(ctx context.Context, queue string) (queuestore.Stats, error) {
	if err := queuestore.ValidateQueueName(queue); err != nil {
		return queuestore.Stats{}, err
	}
	st := queuestore.Stats{Queue: queue}
	now := s.now()
	var readySet, waiting, waitingLeased, dead, acked, dueFree, dueLeased int64
	var oldestReady, oldestDue *int64
	var limit int32
	err := s.pool.QueryRow(ctx, sqlStats, queue, now).Scan(&readySet, &waiting, &waitingLeased, &dead, &acked,
		&dueFree, &dueLeased, &oldestReady, &oldestDue, &st.Paused, &limit, &st.Leases)
	if err != nil {
		return queuestore.Stats{}, s.err(fmt.Errorf("stats of %q: %w", queue, err))
	}
	st.Ready = readySet + dueFree + dueLeased
	st.Delayed = waiting - waitingLeased - dueFree
	st.InFlight = waitingLeased - dueLeased
	st.Dead, st.Acked, st.InFlightLimit = dead, acked, int64(limit)
	oldest := oldestReady
	if oldestDue != nil && (oldest == nil || *oldestDue < *oldest) {
		oldest = oldestDue
	}
	if oldest != nil {
		st.OldestReadyAge = time.Duration(max(now-*oldest, 0)) * time.Millisecond
	}
	return st, nil
}

// Peek lists messages without leasing them.
func (s *Store) Peek(ctx context.Context, queue string, opts queuestore.PeekOptions) ([]queuestore.Message, error) {
	if err := queuestore.ValidatePeek(queue, &opts); err != nil {
		return nil, err
	}
	now := s.now()
	var rows pgx.Rows
	var err error
	switch opts.State {
	case "", queuestore.StateReady:
		var aging int64
		err = s.pool.QueryRow(ctx, sqlQueueSettings, queue).Scan(new(bool), new(int32), &aging)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, s.err(fmt.Errorf("peek %q: %w", queue, err))
		}
		rows, err = s.pool.Query(ctx, sqlPeekReady, queue, now, opts.Limit, queuestore.SortStep(aging))
	case queuestore.StateDelayed, queuestore.StateInFlight:
		rows, err = s.pool.Query(ctx, sqlPeekPending, queue, now, opts.Limit)
	case queuestore.StateDead:
		rows, err = s.pool.Query(ctx, sqlPeekFinished, queue, opts.Limit, int16(codeDead))
	case queuestore.StateAcked:
		rows, err = s.pool.Query(ctx, sqlPeekFinished, queue, opts.Limit, int16(codeAcked))
	}
	if err != nil {
		return nil, s.err(fmt.Errorf("peek %q: %w", queue, err))
	}
	defer rows.Close()
	var out []queuestore.Message
	for rows.Next() {
		m := queuestore.Message{Queue: queue, State: opts.State}
		var group, dedupe, lastErr, enqueuedBy, claimedBy *string
		var enqueued, at int64
		var attempts, maxAttempts int32
		if err := rows.Scan(&m.ID, &m.Priority, &attempts, &maxAttempts, &group, &dedupe, &enqueued, &at, &lastErr, &enqueuedBy, &claimedBy, &m.Body); err != nil {
			return nil, s.err(fmt.Errorf("peek %q: %w", queue, err))
		}
		m.Attempt, m.MaxAttempts = int(attempts), int(maxAttempts)
		m.Group, m.DedupeKey, m.LastError = deref(group), deref(dedupe), deref(lastErr)
		m.EnqueuedBy, m.ClaimedBy = deref(enqueuedBy), deref(claimedBy)
		m.EnqueuedAt, m.VisibleAt = msTime(enqueued), msTime(at)
		if m.State == "" {
			m.State = queuestore.StateReady
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.err(fmt.Errorf("peek %q: %w", queue, err))
	}
	return out, nil
}

// Redrive puts dead messages of queue (all of them when ids is empty) back
// to ready with their attempts reset. It returns how many moved.
func (s *Store) Redrive(ctx context.Context, queue string, ids ...int64) (int64, error) {
	return s.change(ctx, "redrive dead letters of", queue, func(ctx context.Context, tx pgx.Tx, c *counts) error {
		var tag interface{ RowsAffected() int64 }
		var err error
		if len(ids) == 0 {
			tag, err = tx.Exec(ctx, sqlRedriveAll, queue, s.now())
		} else {
			tag, err = tx.Exec(ctx, sqlRedriveIDs, queue, s.now(), ids)
		}
		if err != nil {
			return err
		}
		n := tag.RowsAffected()
		c.Dead, c.Waiting, c.Redriven = -n, n, n
		return nil
	})
}

// PurgeDead deletes dead messages of queue (all when ids is empty).
func (s *Store) PurgeDead(ctx context.Context, queue string, ids ...int64) (int64, error) {
	return s.change(ctx, "purge dead letters of", queue, func(ctx context.Context, tx pgx.Tx, c *counts) error {
		var n int64
		var err error
		if len(ids) == 0 {
			err = tx.QueryRow(ctx, sqlPurgeDead, queue).Scan(&n)
		} else {
			err = tx.QueryRow(ctx, sqlPurgeDeadIDs, queue, ids).Scan(&n)
		}
		c.Dead, c.Purged = -n, n
		return err
	})
}

// Purge deletes every message of queue, in flight ones included, and its
// leases. It returns how many messages went.
func (s *Store) Purge(ctx context.Context, queue string) (int64, error) {
	return s.change(ctx, "purge queue", queue, func(ctx context.Context, tx pgx.Tx, c *counts) error {
		rows, err := tx.Query(ctx, sqlPurgeQueue, queue)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var state int16
			var leased bool
			var n int64
			if err := rows.Scan(&state, &leased, &n); err != nil {
				return err
			}
			switch state {
			case codeReady:
				c.ReadySet -= n
			case codeWaiting:
				c.Waiting -= n
				if leased {
					c.WaitingLeased -= n
				}
			case codeDead:
				c.Dead -= n
			case codeAcked:
				c.Acked -= n
			}
			c.Purged += n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, sqlPurgeQueueLeases, queue)
		return err
	})
}

// change runs fn in one transaction with the queue's counts, and returns
// how many messages fn said it changed (counts.purged or counts.redriven).
func (s *Store) change(ctx context.Context, op, queue string, fn func(context.Context, pgx.Tx, *counts) error) (int64, error) {
	if err := queuestore.ValidateQueueName(queue); err != nil {
		return 0, err
	}
	var n int64
	err := s.withTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var c counts
		if err := fn(ctx, tx, &c); err != nil {
			return err
		}
		n = c.Purged + c.Redriven
		return c.flush(ctx, tx, queue)
	})
	if err != nil {
		return 0, s.err(fmt.Errorf("%s %q: %w", op, queue, err))
	}
	return n, nil
}
