package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/queuestore"
)

// The PostgreSQL store's side of moving queues (queuestore/move.go).

var _ queuestore.Mover = (*Store)(nil)

// StoreID is the random id the database got when its schema 3 was made.
func (s *Store) StoreID(ctx context.Context) (string, error) {
	var id string
	if err := s.pool.QueryRow(ctx, sqlStoreID).Scan(&id); err != nil {
		return "", s.err(fmt.Errorf("store id: %w", err))
	}
	return id, nil
}

// QueueSettings are queue's pause flag, in-flight limit and aging.
func (s *Store) QueueSettings(ctx context.Context, queue string) (queuestore.QueueSettings, bool, error) {
	if err := queuestore.ValidateQueueName(queue); err != nil {
		return queuestore.QueueSettings{}, false, err
	}
	var set queuestore.QueueSettings
	var limit int32
	var agingMs int64
	err := s.pool.QueryRow(ctx, sqlMoveQueueSettings, queue).Scan(&set.Paused, &limit, &agingMs)
	if errors.Is(err, pgx.ErrNoRows) {
		return queuestore.QueueSettings{}, false, nil
	}
	if err != nil {
		return queuestore.QueueSettings{}, false, s.err(fmt.Errorf("settings of %q: %w", queue, err))
	}
	set.InFlightLimit, set.Aging = int(limit), time.Duration(agingMs)*time.Millisecond
	return set, true, nil
}

// AdoptQueueSettings sets queue's settings when the database does not know
// the queue. The queue's advisory lock, held exclusively, keeps enqueues
// and claims of it out meanwhile (they key the ready set by its aging).
func (s *Store) AdoptQueueSettings(ctx context.Context, queue string, set queuestore.QueueSettings) (bool, error) {
	if err := queuestore.ValidateQueueSettings(queue, set); err != nil {
		return false, err
	}
	var adopted bool
	err := s.withTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlQueueExclusive, queue); err != nil {
			return err
		}
		var known bool
		if err := tx.QueryRow(ctx, sqlQueueExists, queue).Scan(&known); err != nil {
			return err
		}
		adopted = !known
		if known {
			return nil
		}
		_, err := tx.Exec(ctx, sqlMoveAdoptSettings, queue, set.Paused, int32(set.InFlightLimit), set.Aging.Milliseconds())
		return err
	})
	if err != nil {
		return false, s.err(fmt.Errorf("set settings of %q: %w", queue, err))
	}
	return adopted, nil
}

// MoveOut runs fn inside one transaction that holds the batch's message
// rows locked: claims skip them, finishes wait.
func (s *Store) MoveOut(ctx context.Context, queue string, after int64, limit int, fn func([]queuestore.MovingMessage) ([]int64, error)) error {
	if err := queuestore.ValidateQueueName(queue); err != nil {
		return err
	}
	if limit < 1 || limit > queuestore.MaxClaim {
		return fmt.Errorf("%w: move batch must be 1..%d, got %d", queuestore.ErrInvalid, queuestore.MaxClaim, limit)
	}
	err := s.withTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		msgs, err := s.takeOut(ctx, tx, queue, after, limit)
		if err != nil || len(msgs) == 0 {
			return err
		}
		remove, err := fn(msgs)
		if err != nil || len(remove) == 0 {
			return err
		}
		slices.Sort(remove)
		rows, err := tx.Query(ctx, sqlMoveDelete, remove)
		if err != nil {
			return err
		}
		change := counts{}
		var state int16
		var leased bool
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&state, &leased, &n}, func() error {
			change.Purged += n
			for range n {
				if state == codeDead {
					change.Dead--
				} else {
					change.LeaveLive(state == codeReady, leased)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return change.flush(ctx, tx, queue)
	})
	return s.err(err)
}

func (s *Store) takeOut(ctx context.Context, tx pgx.Tx, queue string, after int64, limit int) ([]queuestore.MovingMessage, error) {
	now := s.now()
	rows, err := tx.Query(ctx, sqlTakeOut, queue, after, now, limit)
	if err != nil {
		return nil, err
	}
	var msgs []queuestore.MovingMessage
	var (
		m                         queuestore.MovingMessage
		state                     int16
		visible, enqueued, finish int64
		leased                    bool
		attempts, maxAttempts     int32
		group, dedupe, lastErr    *string
		enqueuedBy, claimedBy     *string
	)
	_, err = pgx.ForEachRow(rows, []any{&m.ID, &state, &m.Priority, &visible, &leased, &attempts, &maxAttempts, &group,
		&dedupe, &enqueued, &finish, &lastErr, &enqueuedBy, &claimedBy, &m.Body}, func() error {
		msg := m
		msg.Queue = queue
		msg.State = queuestore.MovingState(int(state), visible, now, leased)
		msg.Attempt, msg.MaxAttempts = int(attempts), int(maxAttempts)
		msg.VisibleAt, msg.EnqueuedAt = msTime(visible), msTime(enqueued)
		if finish != 0 {
			msg.FinishedAt = msTime(finish)
		}
		msg.Group, msg.DedupeKey, msg.LastError = deref(group), deref(dedupe), deref(lastErr)
		msg.EnqueuedBy, msg.ClaimedBy = deref(enqueuedBy), deref(claimedBy)
		msg.Body = slices.Clone(m.Body)
		msgs = append(msgs, msg)
		return nil
	})
	return msgs, err
}

// PutIn stores moved messages with their origin records in one
// transaction, each table's rows in one statement from arrays.
func (s *Store) PutIn(ctx context.Context, source string, msgs []queuestore.MovingMessage) (queuestore.PutResult, error) {
	var res queuestore.PutResult
	var ready []string
	err := s.withTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		res, ready = queuestore.PutResult{}, nil
		var queues []string
		for _, m := range msgs {
			if err := queuestore.ValidateQueueName(m.Queue); err != nil {
				return err
			}
			queues = append(queues, m.Queue)
		}
		slices.Sort(queues)
		queues = slices.Compact(queues)
		// The sort keys depend on each queue's aging: hold a change of it
		// off until this transaction ends.
		if _, err := tx.Exec(ctx, sqlQueuesShared, queues); err != nil {
			return err
		}
		steps, err := agingSteps(ctx, tx, queues)
		if err != nil {
			return err
		}
		present, err := originsPresent(ctx, tx, source, msgs)
		if err != nil {
			return err
		}
		var put []queuestore.MovingMessage
		for _, m := range msgs {
			if present[m.ID] {
				res.Present = append(res.Present, m.ID)
			} else {
				put = append(put, m)
			}
		}
		if len(put) == 0 {
			return nil
		}
		stored, err := putMessages(ctx, tx, put, steps)
		if err != nil {
			return err
		}
		var (
			idCol, sourceIDs []int64
			queueCol         []string
			bodies           [][]byte
		)
		change := queueCounts{}
		lowest := map[string]int64{} // per queue: the smallest sort key of a ready message stored
		for _, i := range stored {
			m := put[i.at]
			idCol, sourceIDs, queueCol = append(idCol, i.id), append(sourceIDs, m.ID), append(queueCol, m.Queue)
			body := m.Body
			if body == nil {
				body = []byte{}
			}
			bodies = append(bodies, body)
			c := change.of(m.Queue)
			c.Enqueued++
			switch state, _ := movedCode(m); state {
			case codeReady:
				c.ReadySet++
				ready = append(ready, m.Queue)
				if key, seen := lowest[m.Queue]; !seen || i.key < key {
					lowest[m.Queue] = i.key
				}
			case codeWaiting:
				c.Waiting++
			default:
				c.Dead++
			}
		}
		res.Stored = sourceIDs
		storedAt := map[int]bool{}
		for _, i := range stored {
			storedAt[i.at] = true
		}
		for at, m := range put {
			if !storedAt[at] {
				res.Clashed = append(res.Clashed, m.ID)
			}
		}
		if len(idCol) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, sqlInsertBodies, idCol, bodies); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlPutOrigins, source, sourceIDs, queueCol, idCol, s.now()); err != nil {
			return err
		}
		for _, q := range queues { // in name order, as every transaction takes the rows
			if key, ok := lowest[q]; ok {
				if err := keepFloor(ctx, tx, q, key); err != nil {
					return err
				}
			}
		}
		return change.flush(ctx, tx)
	})
	if err != nil {
		return queuestore.PutResult{}, s.err(fmt.Errorf("put moved messages: %w", err))
	}
	slices.Sort(ready)
	s.notifyAfterCommit(slices.Compact(ready))
	return res, nil
}

// originsPresent says which of msgs have an origin record from source.
func originsPresent(ctx context.Context, tx pgx.Tx, source string, msgs []queuestore.MovingMessage) (map[int64]bool, error) {
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	rows, err := tx.Query(ctx, sqlOriginsPresent, source, ids)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	present := make(map[int64]bool, len(found))
	for _, id := range found {
		present[id] = true
	}
	return present, err
}

// storedRow is a message putMessages stored: its position in the input and
// its id here.
type storedRow struct {
	at  int
	id  int64
	key int64 // sort key
}

// putMessages inserts the messages (not their bodies) with new ids, and
// returns those that went in, in input order: a dedupe key taken here
// skips its message.
func putMessages(ctx context.Context, tx pgx.Tx, put []queuestore.MovingMessage, steps map[string]int64) ([]storedRow, error) {
	rows, err := tx.Query(ctx, sqlNextMessageIDs, len(put))
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	n := len(put)
	var (
		queue                                      = make([]string, n)
		state                                      = make([]int16, n)
		priority, sortKey, visible, enqueued, size = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		attempts, maxAttempts                      = make([]int32, n), make([]int32, n)
		group, dedupe, lastErr                     = make([]*string, n), make([]*string, n), make([]*string, n)
		enqueuedBy, claimedBy                      = make([]*string, n), make([]*string, n)
		finished                                   = make([]*int64, n)
		at                                         = make(map[int64]int, n)
	)
	for i, m := range put {
		state[i], finished[i] = movedCode(m)
		queue[i], priority[i], visible[i] = m.Queue, m.Priority, m.VisibleAt.UnixMilli()
		sortKey[i] = visible[i] - m.Priority*steps[m.Queue]
		attempts[i], maxAttempts[i] = int32(m.Attempt), int32(m.MaxAttempts)
		group[i], dedupe[i], lastErr[i] = nullString(m.Group), nullString(m.DedupeKey), nullString(m.LastError)
		enqueued[i], size[i] = m.EnqueuedAt.UnixMilli(), int64(len(m.Body))
		enqueuedBy[i], claimedBy[i] = nullString(m.EnqueuedBy), nullString(m.ClaimedBy)
		at[ids[i]] = i
	}
	rows, err = tx.Query(ctx, sqlPutMessages, ids, queue, state, priority, sortKey, visible, attempts, maxAttempts,
		group, dedupe, enqueued, finished, lastErr, size, enqueuedBy, claimedBy)
	if err != nil {
		return nil, err
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	out := make([]storedRow, len(inserted))
	for i, id := range inserted {
		out[i] = storedRow{at: at[id], id: id, key: sortKey[at[id]]}
	}
	slices.SortFunc(out, func(a, b storedRow) int { return a.at - b.at })
	return out, nil
}

// agingSteps is the sort key step of each queue.
func agingSteps(ctx context.Context, tx pgx.Tx, queues []string) (map[string]int64, error) {
	steps := map[string]int64{}
	for _, q := range queues {
		steps[q] = queuestore.NoAgingStep
	}
	rows, err := tx.Query(ctx, sqlAgingOf, queues)
	if err != nil {
		return nil, err
	}
	var name string
	var aging int64
	_, err = pgx.ForEachRow(rows, []any{&name, &aging}, func() error {
		steps[name] = queuestore.SortStep(aging)
		return nil
	})
	return steps, err
}

// movedCode is the stored state a moved message goes in with, and its
// finish time (nil unless dead).
func movedCode(m queuestore.MovingMessage) (state int16, finished *int64) {
	switch m.State {
	case queuestore.StateDead:
		at := m.FinishedAt.UnixMilli()
		return codeDead, &at
	case queuestore.StateDelayed:
		return codeWaiting, nil
	}
	return codeReady, nil
}

// Origins lists origin records from source for queue.
func (s *Store) Origins(ctx context.Context, source, queue string, after int64, limit int) ([]queuestore.Origin, error) {
	rows, err := s.pool.Query(ctx, sqlOrigins, source, queue, after, limit)
	if err != nil {
		return nil, s.err(fmt.Errorf("origins: %w", err))
	}
	var out []queuestore.Origin
	o := queuestore.Origin{Source: source, Queue: queue}
	_, err = pgx.ForEachRow(rows, []any{&o.SourceID, &o.ID}, func() error {
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, s.err(fmt.Errorf("origins: %w", err))
	}
	return out, nil
}

// ForgetOrigins drops origin records.
func (s *Store) ForgetOrigins(ctx context.Context, source string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, sqlForgetOrigins, source, ids); err != nil {
		return s.err(fmt.Errorf("forget origins: %w", err))
	}
	return nil
}

// Present is the state of each of ids still stored in queue.
func (s *Store) Present(ctx context.Context, queue string, ids []int64) (map[int64]queuestore.State, error) {
	rows, err := s.pool.Query(ctx, sqlMovePresent, queue, ids)
	if err != nil {
		return nil, s.err(fmt.Errorf("present: %w", err))
	}
	now := s.now()
	out := map[int64]queuestore.State{}
	var id, visible int64
	var state int16
	var leased bool
	_, err = pgx.ForEachRow(rows, []any{&id, &state, &visible, &leased}, func() error {
		out[id] = queuestore.MovingState(int(state), visible, now, leased)
		return nil
	})
	if err != nil {
		return nil, s.err(fmt.Errorf("present: %w", err))
	}
	return out, nil
}
