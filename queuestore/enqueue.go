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
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = s.EnqueueTx(ctx, tx, msgs...)
		return err
	})
	if err != nil {
		return EnqueueResult{}, err
	}
	return res, nil
}

// EnqueueTx is Enqueue inside the caller's transaction (begun on DB()).
func (s *Store) EnqueueTx(ctx context.Context, tx *sql.Tx, msgs ...NewMessage) (EnqueueResult, error) {
	for i, m := range msgs {
		if err := m.validate(i); err != nil {
			return EnqueueResult{}, err
		}
	}
	insertMessage, err := tx.PrepareContext(ctx, sqlInsertMessage)
	if err != nil {
		return EnqueueResult{}, err
	}
	defer insertMessage.Close()
	insertBody, err := tx.PrepareContext(ctx, sqlInsertBody)
	if err != nil {
		return EnqueueResult{}, err
	}
	defer insertBody.Close()

	now := s.now()
	res := EnqueueResult{IDs: make([]int64, len(msgs))}
	for i, m := range msgs {
		visibleAt := now
		if !m.NotBefore.IsZero() {
			visibleAt = max(now, m.NotBefore.UnixMilli())
		}
		maxAttempts := m.MaxAttempts
		if maxAttempts == 0 {
			maxAttempts = s.opts.MaxAttempts
		}
		body := m.Body
		if body == nil {
			body = []byte{}
		}
		var id int64
		err := insertMessage.QueryRowContext(ctx, m.Queue, m.Priority, visibleAt, maxAttempts,
			nullString(m.Group), nullString(m.DedupeKey), now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) { // the dedupe key is taken
			res.Duplicates++
			continue
		}
		if err != nil {
			return EnqueueResult{}, fmt.Errorf("enqueue message %d to %q: %w", i, m.Queue, err)
		}
		if _, err := insertBody.ExecContext(ctx, id, body); err != nil {
			return EnqueueResult{}, fmt.Errorf("enqueue message %d to %q: %w", i, m.Queue, err)
		}
		res.IDs[i] = id
		res.Enqueued++
	}
	return res, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
