package queuestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Outcome is how a delivery was settled, for the settled counter.
type Outcome string

// The outcomes of a delivery.
const (
	OutcomeAcked    Outcome = "acked"    // the handler succeeded
	OutcomeRetried  Outcome = "retried"  // nacked with attempts left
	OutcomeDead     Outcome = "dead"     // nacked with none left
	OutcomeExpired  Outcome = "expired"  // its lease ran out: ready again
	OutcomeReleased Outcome = "released" // given back unhandled on stop
)

// Outcomes lists every Outcome, in a fixed order.
var Outcomes = []Outcome{OutcomeAcked, OutcomeRetried, OutcomeDead, OutcomeExpired, OutcomeReleased}

// WaitBuckets are the upper bounds, in seconds, of the enqueue-to-ack wait
// histogram the store keeps per queue.
var WaitBuckets = []float64{0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400}

// QueueMetrics is a queue's state counts and its counters since the database
// was created. The counters live in the database and change in the
// transaction that makes the change they count, so every process's work is
// in them.
type QueueMetrics struct {
	Stats
	Enqueued int64             // messages stored by enqueues (duplicates not counted)
	Claimed  int64             // deliveries: messages handed out by claims
	Settled  map[Outcome]int64 // deliveries settled, by outcome
	Redriven int64             // dead messages sent back by redrive
	Purged   int64             // messages deleted by purges
	// Wait is the enqueue-to-ack wait of acked messages: WaitCounts[i]
	// counts waits of at most WaitBuckets[i] seconds (cumulative, like a
	// Prometheus histogram), WaitCount all of them, WaitSum their total.
	WaitCounts []int64
	WaitCount  int64
	WaitSum    time.Duration
}

// Metrics returns the metrics of every queue that has messages, settings or
// counters, by name.
func (s *Store) Metrics(ctx context.Context) ([]QueueMetrics, error) {
	queues, err := s.Queues(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]QueueMetrics, 0, len(queues))
	for _, q := range queues {
		st, err := s.Stats(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		m := QueueMetrics{Stats: st, Settled: map[Outcome]int64{}, WaitCounts: make([]int64, len(WaitBuckets))}
		var settled [len(outcomeColumns)]int64
		var waitSumMs int64
		dest := []any{&m.Enqueued, &m.Claimed}
		for i := range settled {
			dest = append(dest, &settled[i])
		}
		dest = append(dest, &m.Redriven, &m.Purged, &m.WaitCount, &waitSumMs)
		for i := range m.WaitCounts {
			dest = append(dest, &m.WaitCounts[i])
		}
		err = s.readRow(ctx, sqlCounters, []any{q}, dest...)
		if err != nil && !errors.Is(err, sql.ErrNoRows) { // no row: a queue with settings only
			return nil, fmt.Errorf("metrics of %q: %w", q, err)
		}
		for i, o := range Outcomes {
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

// HistorySample is one queue's counts at one time.
type HistorySample struct {
	At                             time.Time
	Ready, Delayed, InFlight, Dead int64
	Enqueued, Acked                int64 // counter totals at At
	OldestReadyAge                 time.Duration
}

// HistoryRetention is how long RecordHistory keeps samples.
const HistoryRetention = 8 * 24 * time.Hour

// RecordHistory stores a sample of every queue's metrics taken now, and
// drops samples older than HistoryRetention. A server calls it every minute
// or so; several servers on one database only add samples.
func (s *Store) RecordHistory(ctx context.Context) error {
	metrics, err := s.Metrics(ctx)
	if err != nil {
		return err
	}
	err = s.withTx(ctx, func(ctx context.Context, tx querier) error {
		now := s.now()
		for _, m := range metrics {
			if _, err := tx.ExecContext(ctx, sqlInsertHistory, m.Queue, now, m.Ready, m.Delayed, m.InFlight, m.Dead,
				m.Enqueued, m.Settled[OutcomeAcked], m.OldestReadyAge.Milliseconds()); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, sqlPruneHistory, now-HistoryRetention.Milliseconds())
		return err
	})
	if err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	return nil
}

// History returns queue's samples taken at or after since, oldest first.
func (s *Store) History(ctx context.Context, queue string, since time.Time) ([]HistorySample, error) {
	if err := ValidateQueueName(queue); err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, sqlHistory, queue, since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("history of %q: %w", queue, err)
	}
	defer rows.Close()
	var out []HistorySample
	for rows.Next() {
		var h HistorySample
		var at, oldest int64
		if err := rows.Scan(&at, &h.Ready, &h.Delayed, &h.InFlight, &h.Dead, &h.Enqueued, &h.Acked, &oldest); err != nil {
			return nil, err
		}
		h.At, h.OldestReadyAge = msTime(at), time.Duration(oldest)*time.Millisecond
		out = append(out, h)
	}
	return out, rows.Err()
}
