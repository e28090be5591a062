package main

import (
	"context"

	"github.com/daguq/daguq/queuestore"
)

// daguqSystem drives the product's store through its public API.
type daguqSystem struct{}

const benchQueue = "bench"

func (daguqSystem) name() string { return "daguq" }

func (daguqSystem) create(ctx context.Context, path string) error {
	st, err := queuestore.Open(path, queuestore.Options{})
	if err != nil {
		return err
	}
	return st.Close()
}

func (daguqSystem) open(ctx context.Context, path string) (queue, error) {
	st, err := queuestore.Open(path, queuestore.Options{})
	if err != nil {
		return nil, err
	}
	return &daguqQueue{st: st}, nil
}

// daguqQueue is a daguq store of either backend (sys_postgres.go opens the
// PostgreSQL one).
type daguqQueue struct {
	st queuestore.Backend
}

func (q *daguqQueue) enqueue(ctx context.Context, bodies [][]byte) error {
	msgs := make([]queuestore.NewMessage, len(bodies))
	for i, b := range bodies {
		msgs[i] = queuestore.NewMessage{Queue: benchQueue, Body: b}
	}
	_, err := q.st.Enqueue(ctx, msgs...)
	return err
}

type daguqClaimed struct{ lease *queuestore.Lease }

func (c daguqClaimed) bodies() [][]byte {
	out := make([][]byte, len(c.lease.Messages))
	for i, m := range c.lease.Messages {
		out[i] = m.Body
	}
	return out
}

func (q *daguqQueue) claim(ctx context.Context, max int) (claimed, error) {
	lease, err := q.st.Claim(ctx, queuestore.ClaimOptions{Queue: benchQueue, Max: max, Lease: leaseTime, Consumer: "bench"})
	if err != nil || lease == nil {
		return nil, err
	}
	return daguqClaimed{lease}, nil
}

func (q *daguqQueue) ack(ctx context.Context, c claimed) error {
	return q.st.Ack(ctx, c.(daguqClaimed).lease)
}

func (q *daguqQueue) ackOne(ctx context.Context, c claimed, i int) error {
	lease := c.(daguqClaimed).lease
	return q.st.Ack(ctx, lease, lease.Messages[i].ID)
}

func (q *daguqQueue) consume(ctx context.Context, batch int, untilStop bool, stop <-chan struct{}, h *handler) error {
	return consumeLoop(ctx, q, batch, untilStop, stop, h)
}

func (q *daguqQueue) remaining(ctx context.Context) (int64, error) {
	s, err := q.st.Stats(ctx, benchQueue)
	if err != nil {
		return 0, err
	}
	return s.Ready + s.Delayed + s.InFlight + s.Dead, nil
}

func (q *daguqQueue) close() error { return q.st.Close() }
