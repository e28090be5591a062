package queuestore

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnqueueAllOrNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	_, err := b.store.Enqueue(b.ctx, msg("q", "1"), msg("q", "2"), msg("bad queue", "3"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "message 2") {
		t.Fatalf("error %v, want ErrInvalid naming message 2", err)
	}
	if st := b.stats(t, "q"); st.Ready != 0 {
		t.Fatalf("ready = %d after a failed bulk, want 0", st.Ready)
	}
}

func TestEnqueueRejectsBadMessages(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tests := []struct {
		name string
		msg  NewMessage
		text string
	}{
		{"empty queue", NewMessage{}, "queue name"},
		{"queue with slash", NewMessage{Queue: "a/b"}, "queue name"},
		{"negative max attempts", NewMessage{Queue: "q", MaxAttempts: -1}, "max_attempts"},
		{"huge dedupe key", NewMessage{Queue: "q", DedupeKey: strings.Repeat("k", 2000)}, "dedupe key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.store.Enqueue(b.ctx, tt.msg)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %v, want ErrInvalid mentioning %q", err, tt.text)
			}
		})
	}
}

func TestEnqueueDedupe(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	withKey := func(body, key string) NewMessage {
		return NewMessage{Queue: "q", Body: []byte(body), DedupeKey: key}
	}
	res, err := b.store.Enqueue(b.ctx, withKey("a", "k1"), withKey("b", "k1"), withKey("c", "k2"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Enqueued != 2 || res.Duplicates != 1 || res.IDs[1] != 0 || res.IDs[0] == 0 {
		t.Fatalf("result %+v, want 2 enqueued, the second skipped", res)
	}
	// The same key in another queue is another message.
	if res, _ := b.store.Enqueue(b.ctx, NewMessage{Queue: "other", DedupeKey: "k1"}); res.Enqueued != 1 {
		t.Fatalf("other queue: %+v", res)
	}
	// While k1 is in flight it still blocks; once acked it is free again.
	lease := b.claim(t, ClaimOptions{Queue: "q", Max: 1})
	if res, _ := b.store.Enqueue(b.ctx, withKey("d", "k1")); res.Duplicates != 1 {
		t.Fatalf("in flight: %+v, want a duplicate", res)
	}
	if err := b.store.Ack(b.ctx, lease); err != nil {
		t.Fatal(err)
	}
	if res, _ := b.store.Enqueue(b.ctx, withKey("e", "k1")); res.Enqueued != 1 {
		t.Fatalf("after ack: %+v, want enqueued", res)
	}
}

func TestEnqueueDedupeWithRetainedAcks(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{AckRetention: time.Hour})
	b.enqueue(t, NewMessage{Queue: "q", DedupeKey: "k"})
	if err := b.store.Ack(b.ctx, b.claim(t, ClaimOptions{Queue: "q"})); err != nil {
		t.Fatal(err)
	}
	if res, _ := b.store.Enqueue(b.ctx, NewMessage{Queue: "q", DedupeKey: "k"}); res.Enqueued != 1 {
		t.Fatalf("a retained ack must not block its key: %+v", res)
	}
	if st := b.stats(t, "q"); st.Acked != 1 || st.Ready != 1 {
		t.Fatalf("stats %+v, want 1 acked and 1 ready", st)
	}
}

func TestEnqueueBulkKeepsOrderAndIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	var msgs []NewMessage
	for i := range 1000 {
		msgs = append(msgs, msg("bulk", strings.Repeat("x", i%7)))
	}
	ids := b.enqueue(t, msgs...)
	if !slices.IsSorted(ids) || ids[0] == 0 {
		t.Fatalf("ids not increasing from 1: %v...", ids[:5])
	}
	lease := b.claim(t, ClaimOptions{Queue: "bulk", Max: 1000})
	if !slices.Equal(lease.IDs(), ids) {
		t.Fatal("claim order differs from enqueue order for equal priorities")
	}
}
