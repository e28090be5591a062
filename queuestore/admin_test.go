package queuestore

import (
	"errors"
	"testing"
	"time"
)

// A message that died under a nack's MaxAttempts override shows that limit,
// not the one it was enqueued with: "attempt 2 of 2", not "2 of 5".
func TestDeadMessageKeepsTheLimitThatApplied(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Backoff: func(int) time.Duration { return 0 }})
	b.enqueue(t, msg("q", "poison"), msg("q", "retried"))
	for attempt := 1; attempt <= 2; attempt++ {
		lease := b.claim(t, ClaimOptions{Queue: "q", Max: 2})
		if lease == nil {
			t.Fatalf("attempt %d: nothing to claim", attempt)
		}
		ids := lease.IDs()
		if _, err := b.store.Nack(b.ctx, lease, NackOptions{IDs: ids[:1], MaxAttempts: 2}); err != nil {
			t.Fatal(err)
		}
		if err := b.store.Release(b.ctx, lease, ids[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	dead, err := b.store.Peek(b.ctx, "q", PeekOptions{State: StateDead})
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters: %+v %v", dead, err)
	}
	if dead[0].Attempt != 2 || dead[0].MaxAttempts != 2 {
		t.Errorf("dead letter attempt %d/%d, want 2/2", dead[0].Attempt, dead[0].MaxAttempts)
	}
	ready, err := b.store.Peek(b.ctx, "q", PeekOptions{})
	if err != nil || len(ready) != 1 || ready[0].MaxAttempts != 5 {
		t.Errorf("a message never nacked keeps its own limit: %+v %v", ready, err)
	}
}

// A queue is known while it has messages in any state or a settings row.
func TestQueueExists(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, msg("with-messages", "1"))
	if err := b.store.Pause(b.ctx, "paused"); err != nil {
		t.Fatal(err)
	}
	if err := b.store.SetLimit(b.ctx, "limited", 0); err != nil { // a row, even at no limit
		t.Fatal(err)
	}
	for queue, want := range map[string]bool{"with-messages": true, "paused": true, "limited": true, "typo": false, "with": false} {
		got, err := b.store.QueueExists(b.ctx, queue)
		if err != nil || got != want {
			t.Errorf("QueueExists(%q) = %v, %v; want %v", queue, got, err, want)
		}
	}
	if _, err := b.store.Purge(b.ctx, "with-messages"); err != nil {
		t.Fatal(err)
	}
	// Its counters (what it enqueued, acked, purged) keep it known.
	if got, _ := b.store.QueueExists(b.ctx, "with-messages"); !got {
		t.Error("a purged queue is no longer known")
	}
	if _, err := b.store.QueueExists(b.ctx, ".."); !errors.Is(err, ErrInvalid) {
		t.Errorf("QueueExists(\"..\"): %v, want ErrInvalid", err)
	}
}
