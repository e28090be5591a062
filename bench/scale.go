package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// scaleBatch is one batch size's figures at one queue depth.
type scaleBatch struct {
	Batch    int
	Claims   int
	ClaimP50 float64 // ms
	ClaimP99 float64 // ms
	AckP50   float64 // ms
	Rate     float64 // messages/s over the timed claim+ack calls
}

type scaleResult struct {
	Batches []scaleBatch
}

// scaleClaims times spec.N claims of one message and spec.N/10 claims of
// 100 at the queue's current depth. After each claim+ack it enqueues as many
// new messages, untimed, so the depth stays where it was.
func scaleClaims(ctx context.Context, q batchQueue, spec workerSpec, h *handler) (*scaleResult, error) {
	res := &scaleResult{}
	nextID := spec.StartID
	for _, b := range []struct{ batch, claims int }{{1, spec.N}, {100, max(spec.N/10, 1)}} {
		var claimMs, ackMs []float64
		var busy time.Duration
		msgs := 0
		refill := make([][]byte, 0, b.batch)
		for range b.claims {
			t0 := time.Now()
			c, err := q.claim(ctx, b.batch)
			t1 := time.Now()
			if err != nil {
				return nil, err
			}
			if c == nil {
				return nil, fmt.Errorf("queue ran empty at batch %d", b.batch)
			}
			bodies := c.bodies()
			for _, body := range bodies {
				h.deliver(body)
			}
			if err := q.ack(ctx, c); err != nil {
				return nil, err
			}
			t2 := time.Now()
			h.acked(len(bodies))
			claimMs = append(claimMs, ms(t1.Sub(t0)))
			ackMs = append(ackMs, ms(t2.Sub(t1)))
			busy += t2.Sub(t0)
			msgs += len(bodies)
			refill = refill[:0]
			for range bodies {
				refill = append(refill, body(nextID))
				nextID++
			}
			if err := q.enqueue(ctx, refill); err != nil {
				return nil, err
			}
		}
		res.Batches = append(res.Batches, scaleBatch{
			Batch: b.batch, Claims: b.claims,
			ClaimP50: percentile(claimMs, 50), ClaimP99: percentile(claimMs, 99),
			AckP50: percentile(ackMs, 50), Rate: float64(msgs) / busy.Seconds(),
		})
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentile of xs (nearest rank); xs is sorted in place.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(float64(len(xs))*p/100+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// median of xs (which it sorts); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}
