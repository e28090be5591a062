package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/queuestore"
)

// Metrics returns the metrics of every queue that has messages, settings or
// counters, by name.
func (s *Store) Metrics(ctx context.Context) ([]queuestore.QueueMetrics, error) {
	queues, err := s.Queues(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]queuestore.QueueMetrics, 0, len(queues))
	for _, q := range queues {
		st, err := s.Stats(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		m := queuestore.QueueMetrics{Stats: st, Settled: map[queuestore.Outcome]int64{},
			WaitCounts: make([]int64, len(queuestore.WaitBuckets))}
		var settled [5]int64
		var waitSumMs int64
		dest := []any{&m.Enqueued, &m.Claimed}
		for i := range settled {
			dest = append(dest, &settled[i])
		}
		dest = append(dest, &m.Redriven, &m.Purged, &m.WaitCount, &waitSumMs)
		for i := range m.WaitCounts {
			dest = append(dest, &m.WaitCounts[i])
		}
		if err := s.pool.QueryRow(ctx, sqlCounters, q).Scan(dest...); err != nil {
			return nil, s.err(fmt.Errorf("metrics of %q: %w", q, err))
		}
		for i, o := range queuestore.Outcomes {
			m.Settled[o] = settled[i]
		}
		for i := 1; i < len(m.WaitCounts); i++ { // cumulative, as a histogram reports
			m.WaitCounts[i] += m.WaitCounts[i-1]
		}
		m.WaitSum = time.Duration(waitSumMs) * time.Millisecond
		out = append(out, m)
	}
	return out, nil
}

// RecordHistory stores a sample of every queue's metrics taken now, and
// drops samples older than queuestore.HistoryRetention. Several servers on
// one database only add samples.
func (s *Store) RecordHistory(ctx context.Context) error {
	metrics, err := s.Metrics(ctx)
	if err != nil {
		return err
	}
	err = s.withTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		now := s.now()
		for _, m := range metrics {
			if _, err := tx.Exec(ctx, sqlInsertHistory, m.Queue, now, m.Ready, m.Delayed, m.InFlight, m.Dead,
				m.Enqueued, m.Settled[queuestore.OutcomeAcked], m.OldestReadyAge.Milliseconds()); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, sqlPruneHistory, now-queuestore.HistoryRetention.Milliseconds())
		return err
	})
	if err != nil {
		return s.err(fmt.Errorf("record history: %w", err))
	}
	return nil
}

// History returns queue's samples taken at or after since, oldest first.
func (s *Store) History(ctx context.Context, queue string, since time.Time) ([]queuestore.HistorySample, error) {
	if err := queuestore.ValidateQueueName(queue); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sqlHistory, queue, since.UnixMilli())
	if err != nil {
		return nil, s.err(fmt.Errorf("history of %q: %w", queue, err))
	}
	defer rows.Close()
	var out []queuestore.HistorySample
	for rows.Next() {
		var h queuestore.HistorySample
		var at, oldest int64
		if err := rows.Scan(&at, &h.Ready, &h.Delayed, &h.InFlight, &h.Dead, &h.Enqueued, &h.Acked, &oldest); err != nil {
			return nil, s.err(fmt.Errorf("history of %q: %w", queue, err))
		}
		h.At, h.OldestReadyAge = msTime(at), time.Duration(oldest)*time.Millisecond
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, s.err(fmt.Errorf("history of %q: %w", queue, err))
	}
	return out, nil
}
