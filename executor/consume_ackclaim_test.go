package executor

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/daguq/daguq/queuestore"
)

// countingStore is the real store, counting how acks reach it.
type countingStore struct {
	Store
	acks, ackClaims atomic.Int64
}

func (s *countingStore) Ack(ctx context.Context, lease *queuestore.Lease, ids ...int64) error {
	s.acks.Add(1)
	return s.Store.Ack(ctx, lease, ids...)
}

func (s *countingStore) AckClaim(ctx context.Context, ack *queuestore.Lease, ackIDs []int64, opts queuestore.ClaimOptions) (*queuestore.Lease, error) {
	s.ackClaims.Add(1)
	return s.Store.AckClaim(ctx, ack, ackIDs, opts)
}

// A batch whose handler ends while the consumer waits to claim ahead hands
// its ack to that claim: one transaction for both. Every message is still
// handled and acked once.
func TestConsumeAcksWithTheNextClaim(t *testing.T) {
	t.Parallel()
	te := setup(t)
	ids := te.enqueueN("jobs", 60)
	te.script("h.sh", copyHandler)
	exec, err := New(KindQueue, te.spec(map[string]any{"queue": "jobs", "batch_size": "1", "concurrency": 2, "run": "./h.sh"}))
	if err != nil {
		t.Fatal(err)
	}
	e := exec.(*queueExecutor)
	var stdout bytes.Buffer
	e.SetStdout(&stdout)
	e.stderr = &lockedWriter{w: &bytes.Buffer{}}
	store := &countingStore{Store: te.store()}
	if err := newConsumer(e, store).run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := consumeSummary(t, result{stdout: stdout.String()})
	if s.Acked != 60 || s.Batches != 60 || s.Retried+s.Dead+s.Released+s.Lost != 0 {
		t.Fatalf("summary %+v", s)
	}
	acks, with := store.acks.Load(), store.ackClaims.Load()
	t.Logf("%d acks alone, %d with the next claim", acks, with)
	if with == 0 || acks+with != 60 {
		t.Fatalf("%d acks alone and %d with the next claim, want 60 in all and some with a claim", acks, with)
	}
	assertHandledOnceAndDrained(t, te, "jobs", ids, 1)
}
