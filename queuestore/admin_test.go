package queuestore

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestStatsCountsEveryState(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{AckRetention: time.Hour})
	now := b.clock.Now()
	b.enqueue(t,
		NewMessage{Queue: "q", Body: []byte("ready-1")},
		NewMessage{Queue: "q", Body: []byte("ready-2")},
		NewMessage{Queue: "q", Body: []byte("to-ack")},
		NewMessage{Queue: "q", Body: []byte("to-kill"), MaxAttempts: 1},
		NewMessage{Queue: "q", Body: []byte("delayed"), NotBefore: now.Add(time.Hour)},
	)
	b.clock.Advance(30 * time.Second)
	lease := b.claim(t, ClaimOptions{Queue: "q", Max: 4})
	ids := lease.IDs()
	if err := b.store.Ack(b.ctx, lease, ids[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Nack(b.ctx, lease, NackOptions{IDs: []int64{ids[3]}}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Release(b.ctx, lease, ids[1]); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(5 * time.Second)
	got := b.stats(t, "q")
	want := Stats{Queue: "q", Ready: 1, Delayed: 1, InFlight: 1, Dead: 1, Acked: 1, Leases: 1, OldestReadyAge: 5 * time.Second}
	if got != want {
		t.Fatalf("stats\n got %+v\nwant %+v", got, want)
	}
	names, err := b.store.Queues(b.ctx)
	if err != nil || !slices.Equal(names, []string{"q"}) {
		t.Fatalf("queues %v %v", names, err)
	}
}

func TestPeekDoesNotLease(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("a")}, NewMessage{Queue: "q", Body: []byte("b"), Priority: 1},
		NewMessage{Queue: "q", Body: []byte("later"), NotBefore: b.clock.Now().Add(time.Minute)})
	ready, err := b.store.Peek(b.ctx, "q", PeekOptions{})
	if err != nil || len(ready) != 2 || string(ready[0].Body) != "b" || ready[0].State != StateReady {
		t.Fatalf("peek ready: %+v %v", ready, err)
	}
	delayed, err := b.store.Peek(b.ctx, "q", PeekOptions{State: StateDelayed, Limit: 5})
	if err != nil || len(delayed) != 1 || string(delayed[0].Body) != "later" {
		t.Fatalf("peek delayed: %+v %v", delayed, err)
	}
	if l := b.claim(t, ClaimOptions{Queue: "q"}); l == nil || len(l.Messages) != 2 {
		t.Fatal("peek leased something")
	}
	for _, bad := range []PeekOptions{{State: "gone"}, {Limit: -1}, {Limit: MaxClaim + 1}} {
		if _, err := b.store.Peek(b.ctx, "q", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("peek %+v: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestDeadLettersRedriveAndPurge(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for range 3 {
		b.enqueue(t, NewMessage{Queue: "q", Body: []byte("poison"), MaxAttempts: 1, DedupeKey: ""})
	}
	lease := b.claim(t, ClaimOptions{Queue: "q"})
	if res, err := b.store.Nack(b.ctx, lease, NackOptions{Error: "bad"}); err != nil || len(res.Dead) != 3 {
		t.Fatalf("nack: %+v %v", res, err)
	}
	ids := lease.IDs()
	n, err := b.store.Redrive(b.ctx, "q", ids[0])
	if err != nil || n != 1 {
		t.Fatalf("redrive one: %d %v", n, err)
	}
	again := b.claim(t, ClaimOptions{Queue: "q"})
	if again == nil || again.Messages[0].ID != ids[0] || again.Messages[0].Attempt != 1 {
		t.Fatalf("redriven message: %+v, want attempt 1 again", again)
	}
	if n, err := b.store.PurgeDead(b.ctx, "q", ids[1]); err != nil || n != 1 {
		t.Fatalf("purge one dead: %d %v", n, err)
	}
	if n, err := b.store.Redrive(b.ctx, "q"); err != nil || n != 1 {
		t.Fatalf("redrive all: %d %v", n, err)
	}
	if n, err := b.store.PurgeDead(b.ctx, "q"); err != nil || n != 0 {
		t.Fatalf("purge dead with none left: %d %v", n, err)
	}
	if n, err := b.store.Purge(b.ctx, "q"); err != nil || n != 2 {
		t.Fatalf("purge queue: %d %v, want the in-flight and the ready message", n, err)
	}
	if st := b.stats(t, "q"); st != (Stats{Queue: "q"}) {
		t.Fatalf("after purge: %+v", st)
	}
	var orphans int
	b.store.DB().QueryRow(`SELECT count(*) FROM bodies`).Scan(&orphans)
	if orphans != 0 {
		t.Fatalf("%d bodies left without a message", orphans)
	}
}

func TestAckRetentionPurgesOldAcks(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{AckRetention: time.Hour})
	b.enqueue(t, msg("q", "old"))
	if err := b.store.Ack(b.ctx, b.claim(t, ClaimOptions{Queue: "q"})); err != nil {
		t.Fatal(err)
	}
	acked, err := b.store.Peek(b.ctx, "q", PeekOptions{State: StateAcked})
	if err != nil || len(acked) != 1 || string(acked[0].Body) != "old" {
		t.Fatalf("retained ack: %+v %v", acked, err)
	}
	b.clock.Advance(2 * time.Hour)
	b.enqueue(t, msg("q", "new"))
	if err := b.store.Ack(b.ctx, b.claim(t, ClaimOptions{Queue: "q"})); err != nil {
		t.Fatal(err)
	}
	if st := b.stats(t, "q"); st.Acked != 1 {
		t.Fatalf("acked = %d, want only the new one kept", st.Acked)
	}
}

func TestAdminRejectsBadQueueNames(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	calls := map[string]func() error{
		"pause":      func() error { return b.store.Pause(b.ctx, "bad name") },
		"resume":     func() error { return b.store.Resume(b.ctx, "bad name") },
		"limit":      func() error { return b.store.SetLimit(b.ctx, "bad name", 1) },
		"stats":      func() error { _, err := b.store.Stats(b.ctx, "bad name"); return err },
		"peek":       func() error { _, err := b.store.Peek(b.ctx, "bad name", PeekOptions{}); return err },
		"redrive":    func() error { _, err := b.store.Redrive(b.ctx, "bad name"); return err },
		"purge dead": func() error { _, err := b.store.PurgeDead(b.ctx, "bad name"); return err },
		"purge":      func() error { _, err := b.store.Purge(b.ctx, "bad name"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

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
