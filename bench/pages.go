package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"

	"github.com/daguq/daguq/queuestore"
)

// WAL pages written per message: a count that no other load on the machine
// can move. With automatic checkpoints off, the WAL only grows, by one frame
// (a page plus a 24-byte header) per page a commit writes.

// dbHandle is implemented by the queues whose connection the bench can reach.
type dbHandle interface{ sqlDB() *sql.DB }

func (q *daguqQueue) sqlDB() *sql.DB {
	if st, ok := q.st.(*queuestore.Store); ok {
		return st.DB()
	}
	return nil
}
func (q *goqiteQueue) sqlDB() *sql.DB { return q.db }
func (q *rawQueue) sqlDB() *sql.DB    { return q.db }

type pagesResult struct {
	PerMessage map[int]float64 // batch size -> WAL pages per message (claim+ack)
}

func walFrames(path string) int64 {
	st, err := os.Stat(path + "-wal")
	if err != nil || st.Size() < 32 {
		return 0
	}
	return (st.Size() - 32) / (4096 + 24)
}

// walPages claims and acks spec.N messages at batch 1 and at batch 100 and
// counts the WAL frames each message cost.
func walPages(ctx context.Context, q batchQueue, spec workerSpec) (*pagesResult, error) {
	h, ok := q.(dbHandle)
	if !ok {
		return nil, fmt.Errorf("%s: no connection to count pages on", spec.System)
	}
	db := h.sqlDB()
	if db == nil {
		return nil, fmt.Errorf("%s: not a SQLite database", spec.System)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		return nil, err
	}
	res := &pagesResult{PerMessage: map[int]float64{}}
	for _, batch := range []int{1, 100} {
		before, msgs := walFrames(spec.DB), 0
		var done claimed // claimed, not acked yet
		for msgs < spec.N {
			var c claimed
			var err error
			if ac, ok := q.(ackClaimer); ok && done != nil {
				c, err = ac.ackClaim(ctx, done, batch)
			} else {
				if done != nil {
					if err := q.ack(ctx, done); err != nil {
						return nil, err
					}
				}
				c, err = q.claim(ctx, batch)
			}
			if err != nil {
				return nil, err
			}
			if c == nil {
				return nil, fmt.Errorf("queue ran empty")
			}
			msgs += len(c.bodies())
			done = c
		}
		if err := q.ack(ctx, done); err != nil {
			return nil, err
		}
		res.PerMessage[batch] = float64(walFrames(spec.DB)-before) / float64(msgs)
	}
	return res, nil
}

// ackClaimer is a queue whose consumer loop acks a batch in the transaction
// that claims the next (daguq's AckClaim); its pages are counted that way.
type ackClaimer interface {
	ackClaim(ctx context.Context, done claimed, max int) (claimed, error)
}
