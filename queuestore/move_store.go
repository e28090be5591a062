package queuestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The SQLite store's side of moving queues (move.go).

var _ Mover = (*Store)(nil)

// StoreID is the random id the database got when its schema 4 was made.
func (s *Store) StoreID(ctx context.Context) (string, error) {
	var id string
	if err := s.readRow(ctx, sqlStoreID, nil, &id); err != nil {
		return "", fmt.Errorf("store id: %w", err)
	}
	return id, nil
}

// QueueSettings are queue's pause flag, in-flight limit and aging.
func (s *Store) QueueSettings(ctx context.Context, queue string) (QueueSettings, bool, error) {
	if err := ValidateQueueName(queue); err != nil {
		return QueueSettings{}, false, err
	}
	set, err := readSettings(ctx, s.db, queue)
	if errors.Is(err, sql.ErrNoRows) {
		return QueueSettings{}, false, nil
	}
	if err != nil {
		return QueueSettings{}, false, fmt.Errorf("settings of %q: %w", queue, err)
	}
	return set, true, nil
}

func readSettings(ctx context.Context, q querier, queue string) (QueueSettings, error) {
	var set QueueSettings
	var agingMs int64
	err := q.QueryRowContext(context.WithoutCancel(ctx), sqlMoveQueueSettings, queue).Scan(&set.Paused, &set.InFlightLimit, &agingMs)
	set.Aging = time.Duration(agingMs) * time.Millisecond
	return set, err
}

// AdoptQueueSettings sets queue's settings when the database does not know
// the queue.
func (s *Store) AdoptQueueSettings(ctx context.Context, queue string, set QueueSettings) (bool, error) {
	if err := ValidateQueueSettings(queue, set); err != nil {
		return false, err
	}
	var adopted bool
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		var known bool
		if err := tx.QueryRowContext(ctx, sqlQueueExists, queue).Scan(&known); err != nil {
			return err
		}
		adopted = !known
		if known {
			return nil
		}
		_, err := tx.ExecContext(ctx, sqlMoveAdoptSettings, queue, set.Paused, set.InFlightLimit, set.Aging.Milliseconds())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("set settings of %q: %w", queue, err)
	}
	return adopted, nil
}

// MoveOut runs fn inside one write transaction: no other process writes
// to the database until it ends.
func (s *Store) MoveOut(ctx context.Context, queue string, after int64, limit int, fn func([]MovingMessage) ([]int64, error)) error {
	if err := ValidateQueueName(queue); err != nil {
		return err
	}
	if limit < 1 || limit > MaxClaim {
		return fmt.Errorf("%w: move batch must be 1..%d, got %d", ErrInvalid, MaxClaim, limit)
	}
	return s.withTx(ctx, func(ctx context.Context, tx querier) error {
		// A queue moved away may see no more acks to fill its list: its
		// listed bodies go with every page, also the last, empty one.
		if err := dropBodyTrash(ctx, tx, queue); err != nil {
			return err
		}
		msgs, err := takeOut(ctx, tx, queue, after, limit, s.now())
		if err != nil || len(msgs) == 0 {
			return err
		}
		remove, err := fn(msgs)
		if err != nil || len(remove) == 0 {
			return err
		}
		ids := jsonIDs(remove)
		rows, err := tx.QueryContext(ctx, sqlMoveDelete, ids)
		if err != nil {
			return err
		}
		change := counts{}
		for rows.Next() {
			var state int
			var leased bool
			if err := rows.Scan(&state, &leased); err != nil {
				rows.Close()
				return err
			}
			change.Purged++
			if state == codeDead {
				change.Dead--
			} else {
				change.LeaveLive(state == codeReady, leased)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlMoveDeleteBodies, ids); err != nil {
			return err
		}
		return change.flush(ctx, tx, queue)
	})
}

func takeOut(ctx context.Context, tx querier, queue string, after int64, limit int, now int64) ([]MovingMessage, error) {
	rows, err := tx.QueryContext(ctx, sqlTakeOut, queue, after, now, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []MovingMessage
	for rows.Next() {
		m := MovingMessage{Message: Message{Queue: queue}}
		var state int
		var visible, enqueued, finished int64
		var leased bool
		var group, dedupe, lastErr, enqueuedBy, claimedBy sql.NullString
		if err := rows.Scan(&m.ID, &state, &m.Priority, &visible, &leased, &m.Attempt, &m.MaxAttempts, &group, &dedupe,
			&enqueued, &finished, &lastErr, &enqueuedBy, &claimedBy, &m.Body); err != nil {
			return nil, err
		}
		m.State = MovingState(state, visible, now, leased)
		m.VisibleAt, m.EnqueuedAt = msTime(visible), msTime(enqueued)
		if finished != 0 {
			m.FinishedAt = msTime(finished)
		}
		m.Group, m.DedupeKey, m.LastError = group.String, dedupe.String, lastErr.String
		m.EnqueuedBy, m.ClaimedBy = enqueuedBy.String, claimedBy.String
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// PutIn stores moved messages with their origin records in one write
// transaction.
func (s *Store) PutIn(ctx context.Context, source string, msgs []MovingMessage) (PutResult, error) {
	var res PutResult
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		res = PutResult{}
		present, err := originsPresent(ctx, tx, source, msgs)
		if err != nil {
			return err
		}
		now := s.now()
		steps := map[string]int64{}
		change := queueCounts{}
		for _, m := range msgs {
			if present[m.ID] {
				res.Present = append(res.Present, m.ID)
				continue
			}
			if err := ValidateQueueName(m.Queue); err != nil {
				return err
			}
			step, ok := steps[m.Queue]
			if !ok {
				var aging int64
				err := tx.QueryRowContext(ctx, sqlAgingOf, m.Queue).Scan(&aging)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				step = sortStep(aging)
				steps[m.Queue] = step
			}
			state, finished := movedCode(m)
			visible := m.VisibleAt.UnixMilli()
			var id int64
			err := tx.QueryRowContext(ctx, sqlPutMessage, m.Queue, state, m.Priority, visible-m.Priority*step, visible,
				m.Attempt, m.MaxAttempts, nullString(m.Group), nullString(m.DedupeKey), m.EnqueuedAt.UnixMilli(), finished,
				nullString(m.LastError), len(m.Body), nullString(m.EnqueuedBy), nullString(m.ClaimedBy)).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				res.Clashed = append(res.Clashed, m.ID)
				continue
			}
			if err != nil {
				return fmt.Errorf("message %d: %w", m.ID, err)
			}
			body := m.Body
			if body == nil {
				body = []byte{}
			}
			if _, err := tx.ExecContext(ctx, sqlPutBody, id, body); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, sqlPutOrigin, source, m.ID, m.Queue, id, now); err != nil {
				return err
			}
			res.Stored = append(res.Stored, m.ID)
			c := change.Of(m.Queue)
			c.Enqueued++
			switch state {
			case codeReady:
				c.ReadySet++
			case codeWaiting:
				c.Waiting++
			default:
				c.Dead++
			}
		}
		return change.flush(ctx, tx)
	})
	if err != nil {
		return PutResult{}, fmt.Errorf("put moved messages: %w", err)
	}
	return res, nil
}

// movedCode is the stored state a moved message goes in with, and its
// finish time (nil unless dead).
func movedCode(m MovingMessage) (state int, finished any) {
	switch m.State {
	case StateDead:
		return codeDead, m.FinishedAt.UnixMilli()
	case StateDelayed:
		return codeWaiting, nil
	}
	return codeReady, nil
}

// originsPresent says which of msgs have an origin record from source.
func originsPresent(ctx context.Context, tx querier, source string, msgs []MovingMessage) (map[int64]bool, error) {
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	rows, err := tx.QueryContext(ctx, sqlOriginsPresent, source, jsonIDs(ids))
	if err != nil {
		return nil, err
	}
	return scanIDs(rows)
}

// Origins lists origin records from source for queue.
func (s *Store) Origins(ctx context.Context, source, queue string, after int64, limit int) ([]Origin, error) {
	rows, err := s.query(ctx, sqlOrigins, source, queue, after, limit)
	if err != nil {
		return nil, fmt.Errorf("origins: %w", err)
	}
	defer rows.Close()
	var out []Origin
	for rows.Next() {
		o := Origin{Source: source, Queue: queue}
		if err := rows.Scan(&o.SourceID, &o.ID); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// ForgetOrigins drops origin records.
func (s *Store) ForgetOrigins(ctx context.Context, source string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, sqlForgetOrigins, source, jsonIDs(ids))
		return err
	})
	if err != nil {
		return fmt.Errorf("forget origins: %w", err)
	}
	return nil
}

// Present is the state of each of ids still stored in queue.
func (s *Store) Present(ctx context.Context, queue string, ids []int64) (map[int64]State, error) {
	rows, err := s.query(ctx, sqlMovePresent, queue, jsonIDs(ids))
	if err != nil {
		return nil, fmt.Errorf("present: %w", err)
	}
	defer rows.Close()
	now := s.now()
	out := map[int64]State{}
	for rows.Next() {
		var id, visible int64
		var state int
		var leased bool
		if err := rows.Scan(&id, &state, &visible, &leased); err != nil {
			return nil, err
		}
		out[id] = MovingState(state, visible, now, leased)
	}
	return out, rows.Err()
}
