package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/queuestore"
)

// enqueueChunk is how many messages one INSERT stores.
const enqueueChunk = 1000

// Enqueue stores messages in one transaction: all of them or, on error, none.
func (s *Store) Enqueue(ctx context.Context, msgs ...queuestore.NewMessage) (queuestore.EnqueueResult, error) {
	for i, m := range msgs {
		if err := queuestore.ValidateMessage(i, m); err != nil {
			return queuestore.EnqueueResult{}, err
		}
	}
	if len(msgs) == 0 {
		return queuestore.EnqueueResult{IDs: []int64{}}, nil
	}
	var res queuestore.EnqueueResult
	var ready []string
	err := s.withTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		res, ready, err = s.enqueue(ctx, tx, msgs)
		return err
	})
	if err != nil {
		return queuestore.EnqueueResult{}, s.err(err)
	}
	s.notifyAfterCommit(ready)
	return res, nil
}

// EnqueueTx is Enqueue inside the caller's transaction (begun on ConnPool()):
// the messages are stored if and when it commits.
func (s *Store) EnqueueTx(ctx context.Context, tx pgx.Tx, msgs ...queuestore.NewMessage) (queuestore.EnqueueResult, error) {
	for i, m := range msgs {
		if err := queuestore.ValidateMessage(i, m); err != nil {
			return queuestore.EnqueueResult{}, err
		}
	}
	if len(msgs) == 0 {
		return queuestore.EnqueueResult{IDs: []int64{}}, nil
	}
	res, ready, err := s.enqueue(ctx, tx, msgs)
	if err == nil {
		err = s.notifyInTx(ctx, tx, ready)
	}
	if err != nil {
		return queuestore.EnqueueResult{}, s.err(err)
	}
	return res, nil
}

// enqueue numbers the messages from the id sequence, in input order, and
// stores them with one INSERT per chunk from arrays; a dedupe key already
// taken skips its row (ON CONFLICT DO NOTHING), and RETURNING says which
// went in. ready lists the queues that got ready (not delayed) messages.
func (s *Store) enqueue(ctx context.Context, tx pgx.Tx, msgs []queuestore.NewMessage) (res queuestore.EnqueueResult, ready []string, err error) {
	var queues []string
	for _, m := range msgs {
		queues = append(queues, m.Queue)
	}
	slices.Sort(queues)
	queues = slices.Compact(queues)
	// The sort keys depend on each queue's aging: hold a change of it off
	// until this transaction ends.
	if _, err := tx.Exec(ctx, sqlQueuesShared, queues); err != nil {
		return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue: %w", err)
	}
	steps := map[string]int64{}
	rows, err := tx.Query(ctx, sqlAgingOf, queues)
	if err != nil {
		return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue: %w", err)
	}
	for rows.Next() {
		var name string
		var aging int64
		if err := rows.Scan(&name, &aging); err != nil {
			return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue: %w", err)
		}
		steps[name] = queuestore.SortStep(aging)
	}
	if err := rows.Err(); err != nil {
		return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue: %w", err)
	}
	stepOf := func(queue string) int64 {
		if step, ok := steps[queue]; ok {
			return step
		}
		return queuestore.NoAgingStep
	}

	rows, err = tx.Query(ctx, sqlNextMessageIDs, len(msgs))
	if err != nil {
		return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue: %w", err)
	}
	at := make(map[int64]int, len(ids)) // id -> input position
	for i, id := range ids {
		at[id] = i
	}

	now := s.now()
	res = queuestore.EnqueueResult{IDs: make([]int64, len(msgs))}
	changes := queueCounts{}
	lowest := map[string]int64{} // per queue: the smallest sort key of a ready message stored
	for start := 0; start < len(msgs); start += enqueueChunk {
		end := min(start+enqueueChunk, len(msgs))
		n := end - start
		var (
			idCol, priority, sortKey, visible, enqueued, size = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
			queue                                             = make([]string, n)
			state                                             = make([]int16, n)
			maxAttempts                                       = make([]int32, n)
			group, dedupe, enqueuedBy                         = make([]*string, n), make([]*string, n), make([]*string, n)
		)
		for j, m := range msgs[start:end] {
			visibleAt := now
			if !m.NotBefore.IsZero() {
				visibleAt = max(now, m.NotBefore.UnixMilli())
			}
			attempts := m.MaxAttempts
			if attempts == 0 {
				attempts = s.opts.MaxAttempts
			}
			st := int16(codeReady)
			if visibleAt > now {
				st = codeWaiting
			}
			idCol[j], queue[j], state[j], priority[j] = ids[start+j], m.Queue, st, m.Priority
			sortKey[j], visible[j], maxAttempts[j] = visibleAt-m.Priority*stepOf(m.Queue), visibleAt, int32(attempts)
			group[j], dedupe[j], enqueued[j], size[j] = nullString(m.Group), nullString(m.DedupeKey), now, int64(len(m.Body))
			enqueuedBy[j] = nullString(m.EnqueuedBy)
		}
		rows, err := tx.Query(ctx, sqlInsertMessages, idCol, queue, state, priority, sortKey, visible, maxAttempts, group, dedupe, enqueued, size, enqueuedBy)
		if err != nil {
			return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue messages %d..%d to %q: %w", start, end-1, msgs[start].Queue, err)
		}
		stored, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue messages %d..%d to %q: %w", start, end-1, msgs[start].Queue, err)
		}
		bodyIDs := make([]int64, 0, len(stored))
		bodies := make([][]byte, 0, len(stored))
		for _, id := range stored {
			i := at[id]
			res.IDs[i] = id
			m := msgs[i]
			body := m.Body
			if body == nil {
				body = []byte{}
			}
			bodyIDs, bodies = append(bodyIDs, id), append(bodies, body)
			c := changes.of(m.Queue)
			c.Enqueued++
			if state[i-start] == codeWaiting {
				c.Waiting++
			} else {
				c.ReadySet++
				if key, seen := lowest[m.Queue]; !seen || sortKey[i-start] < key {
					lowest[m.Queue] = sortKey[i-start]
				}
			}
		}
		if len(bodyIDs) > 0 {
			if _, err := tx.Exec(ctx, sqlInsertBodies, bodyIDs, bodies); err != nil {
				return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue bodies to %q: %w", msgs[start].Queue, err)
			}
		}
		res.Enqueued += len(stored)
	}
	res.Duplicates = len(msgs) - res.Enqueued
	for _, q := range queues { // in name order, as every transaction takes the rows
		if key, ok := lowest[q]; ok {
			if err := keepFloor(ctx, tx, q, key); err != nil {
				return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue: %w", err)
			}
		}
	}
	if err := changes.flush(ctx, tx); err != nil {
		return queuestore.EnqueueResult{}, nil, fmt.Errorf("enqueue: %w", err)
	}
	for q, c := range changes {
		if c.ReadySet > 0 {
			ready = append(ready, q)
		}
	}
	slices.Sort(ready)
	return res, ready, nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
