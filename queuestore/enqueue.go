package queuestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// EnqueueResult tells what an enqueue stored.
type EnqueueResult struct {
	// IDs has one entry per message in input order: its id, or 0 for a
	// duplicate that was skipped.
	IDs        []int64
	Enqueued   int
	Duplicates int
}

// Enqueue stores messages in one transaction: all of them or, on error, none.
func (s *Store) Enqueue(ctx context.Context, msgs ...NewMessage) (EnqueueResult, error) {
	var res EnqueueResult
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		var err error
		res, err = s.enqueue(ctx, tx, msgs)
		return err
	})
	if err != nil {
		return EnqueueResult{}, err
	}
	return res, nil
}

// EnqueueTx is Enqueue inside the caller's transaction (begun on DB()).
func (s *Store) EnqueueTx(ctx context.Context, tx *sql.Tx, msgs ...NewMessage) (EnqueueResult, error) {
	return s.enqueue(ctx, tx, msgs)
}

// enqueue numbers the messages itself (the write lock is held, so nobody
// else inserts meanwhile) and stores them with multi-row INSERTs: one
// statement per up to 64 messages and one per up to 64 bodies, instead of
// two per message. Only a message with a dedupe key can be skipped; chunks
// with one read the ids that went in from RETURNING.
func (s *Store) enqueue(ctx context.Context, tx querier, msgs []NewMessage) (EnqueueResult, error) {
	for i, m := range msgs {
		if err := m.validate(i, i > 0 && m.Queue == msgs[i-1].Queue); err != nil {
			return EnqueueResult{}, err
		}
	}
	res := EnqueueResult{IDs: make([]int64, len(msgs))}
	if len(msgs) == 0 {
		return res, nil
	}
	var lastID int64
	if err := tx.QueryRowContext(ctx, sqlNextMessageID).Scan(&lastID); err != nil {
		return EnqueueResult{}, fmt.Errorf("enqueue: %w", err)
	}
	now := s.now()
	steps := map[string]int64{} // each queue's sort key step
	for _, m := range msgs {
		if _, ok := steps[m.Queue]; ok {
			continue
		}
		var aging int64
		err := tx.QueryRowContext(ctx, sqlAgingOf, m.Queue).Scan(&aging)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return EnqueueResult{}, fmt.Errorf("enqueue: %w", err)
		}
		steps[m.Queue] = sortStep(aging)
	}
	args := make([]any, 0, 12*bulkSizes[0])
	for start := 0; start < len(msgs); {
		size, chunk := bulkChunk(len(msgs) - start)
		dedupe := false
		args = args[:0]
		for i := start; i < start+size; i++ {
			m := msgs[i]
			visibleAt := now
			if !m.NotBefore.IsZero() {
				visibleAt = max(now, m.NotBefore.UnixMilli())
			}
			maxAttempts := m.MaxAttempts
			if maxAttempts == 0 {
				maxAttempts = s.opts.MaxAttempts
			}
			dedupe = dedupe || m.DedupeKey != ""
			state := codeReady
			if visibleAt > now {
				state = codeWaiting
			}
			args = append(args, lastID+1+int64(i), m.Queue, state, m.Priority, visibleAt-m.Priority*steps[m.Queue],
				visibleAt, maxAttempts, nullString(m.Group), nullString(m.DedupeKey), now, len(m.Body), nullString(m.EnqueuedBy))
		}
		if dedupe {
			if err := insertReturningIDs(ctx, tx, sqlInsertMessagesDedupe[chunk], args, res.IDs, lastID+1); err != nil {
				return EnqueueResult{}, fmt.Errorf("enqueue messages %d..%d to %q: %w", start, start+size-1, msgs[start].Queue, err)
			}
		} else {
			r, err := tx.ExecContext(ctx, sqlInsertMessages[chunk], args...)
			if err != nil {
				return EnqueueResult{}, fmt.Errorf("enqueue messages %d..%d to %q: %w", start, start+size-1, msgs[start].Queue, err)
			}
			if n, _ := r.RowsAffected(); n != int64(size) {
				return EnqueueResult{}, fmt.Errorf("enqueue messages %d..%d: %d rows stored, want %d", start, start+size-1, n, size)
			}
			for i := start; i < start+size; i++ {
				res.IDs[i] = lastID + 1 + int64(i)
			}
		}
		start += size
	}

	// Bodies of the messages that went in, in the same chunked way.
	stored := make([]int, 0, len(msgs))
	for i, id := range res.IDs {
		if id == 0 {
			res.Duplicates++
			continue
		}
		stored = append(stored, i)
	}
	res.Enqueued = len(stored)
	changes := queueCounts{}
	for _, i := range stored {
		c := changes.Of(msgs[i].Queue)
		c.Enqueued++
		if msgs[i].NotBefore.UnixMilli() > now {
			c.Waiting++
		} else {
			c.ReadySet++
		}
	}
	if err := changes.flush(ctx, tx); err != nil {
		return EnqueueResult{}, fmt.Errorf("enqueue: %w", err)
	}
	for start := 0; start < len(stored); {
		size, chunk := bulkChunk(len(stored) - start)
		args = args[:0]
		for _, i := range stored[start : start+size] {
			body := msgs[i].Body
			if body == nil {
				body = []byte{}
			}
			args = append(args, res.IDs[i], body)
		}
		if _, err := tx.ExecContext(ctx, sqlInsertBodies[chunk], args...); err != nil {
			return EnqueueResult{}, fmt.Errorf("enqueue bodies to %q: %w", msgs[stored[start]].Queue, err)
		}
		start += size
	}
	return res, nil
}

// bulkChunk picks the largest bulk statement size that fits n rows: the
// size and its index in bulkSizes.
func bulkChunk(n int) (size, index int) {
	for i, size := range bulkSizes {
		if size <= n {
			return size, i
		}
	}
	panic("bulkChunk: no rows")
}

// insertReturningIDs runs a multi-row insert whose rows carry the ids
// firstID, firstID+1, ... in input order, and records each id that went in
// at its input position in ids.
func insertReturningIDs(ctx context.Context, tx querier, query string, args []any, ids []int64, firstID int64) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids[id-firstID] = id
	}
	return rows.Err()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
