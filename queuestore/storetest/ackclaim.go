package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// AckClaim: the ack of a finished lease and the claim of the next batch in
// one transaction.

func init() {
	add("AckClaimAcksThenClaims", testAckClaimAcksThenClaims)
	add("AckClaimWithALostAckStillClaims", testAckClaimLostAck)
	add("AckClaimFreesTheSlotItClaimsWith", testAckClaimFreesTheSlot)
	add("AckClaimOnAPausedOrEmptyQueueOnlyAcks", testAckClaimPausedOrEmpty)
	add("AckClaimValidation", testAckClaimValidation)
}

func testAckClaimAcksThenClaims(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	ids := b.enqueue(t, msg("q", "a"), msg("q", "b"), msg("q", "c"))
	first := b.claim(t, co{Queue: "q", Max: 1})
	b.clock.Advance(2 * time.Second)
	next, err := b.store.AckClaim(b.ctx, first, nil, co{Queue: "q", Max: 1, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if next == nil || !slices.Equal(next.IDs(), ids[1:2]) || string(next.Messages[0].Body) != "b" || next.ID <= first.ID ||
		next.Messages[0].Attempt != 1 || !next.ExpiresAt.Equal(b.clock.Now().Add(time.Minute)) {
		t.Fatalf("claimed %+v, want message %d with its body under a larger token for a minute", next, ids[1])
	}
	var lost *queuestore.LostError
	if err := b.store.Ack(b.ctx, first); !errors.As(err, &lost) {
		t.Fatalf("a second ack of the acked lease: %v, want a LostError", err)
	}
	if st := b.stats(t, "q"); st.Ready != 1 || st.InFlight != 1 || st.Leases != 1 {
		t.Fatalf("stats %+v, want 1 ready and 1 in flight under 1 lease", st)
	}
	m := b.metrics(t, "q")
	if m.Claimed != 2 || m.Settled[queuestore.OutcomeAcked] != 1 || m.WaitCount != 1 || m.WaitSum != 2*time.Second {
		t.Fatalf("metrics %+v, want 2 claimed and 1 acked after a wait of 2s", m)
	}
	if r := b.rows(t, "q"); r.Bodies != 2 {
		t.Fatalf("%d bodies stored, want 2 (the acked message's went with it)", r.Bodies)
	}
}

// A fenced ack that lost part of its lease reports a LostError exactly as Ack
// does, acks the rest, and the claim still happens: its lease comes with the
// error.
func testAckClaimLostAck(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	ids := b.enqueue(t, msg("q", "a"), msg("q", "b"))
	first := b.claim(t, co{Queue: "q", Max: 2, Lease: 10 * time.Second})
	b.clock.Advance(11 * time.Second)
	taken := b.claim(t, co{Queue: "q", Max: 1})
	if taken == nil || taken.Messages[0].ID != ids[0] {
		t.Fatalf("takeover claim %+v, want message %d", taken, ids[0])
	}
	ids = append(ids, b.enqueue(t, msg("q", "c"))...)
	next, err := b.store.AckClaim(b.ctx, first, nil, co{Queue: "q", Max: 5})
	var lost *queuestore.LostError
	if !errors.As(err, &lost) || !errors.Is(err, queuestore.ErrLeaseLost) || !slices.Equal(lost.IDs, ids[:1]) || lost.Lease != first.Token {
		t.Fatalf("ack and claim after a part takeover: %v, want a LostError naming %d", err, ids[0])
	}
	if next == nil || !slices.Equal(next.IDs(), ids[2:]) {
		t.Fatalf("the claim with the lost ack: %+v, want message %d (not the acked %d, not the taken %d)", next, ids[2], ids[1], ids[0])
	}
	if st := b.stats(t, "q"); st.Ready != 0 || st.InFlight != 2 || st.Leases != 2 {
		t.Fatalf("stats %+v, want the taken and the new message in flight under 2 leases", st)
	}
	if m := b.metrics(t, "q"); m.Settled[queuestore.OutcomeAcked] != 1 {
		t.Fatalf("metrics %+v, want the held message acked", m)
	}
	// All lost: no ack, and still a claim (of nothing here).
	b.clock.Advance(time.Minute)
	again := b.claim(t, co{Queue: "q", Max: 1})
	if again == nil || again.Messages[0].ID != ids[0] {
		t.Fatalf("claim after the leases ended: %+v, want message %d again", again, ids[0])
	}
	b.enqueue(t, msg("q", "d"))
	next2, err := b.store.AckClaim(b.ctx, taken, nil, co{Queue: "q", Max: 5})
	if !errors.As(err, &lost) || !slices.Equal(lost.IDs, ids[:1]) {
		t.Fatalf("ack and claim of a wholly lost lease: %v, want a LostError naming %d", err, ids[0])
	}
	if next2 == nil || len(next2.Messages) != 2 {
		t.Fatalf("the claim with a wholly lost ack: %+v, want the 2 ready messages", next2)
	}
	if m := b.metrics(t, "q"); m.Settled[queuestore.OutcomeAcked] != 1 {
		t.Fatalf("metrics %+v, want still 1 acked", m)
	}
}

// The ack comes first: the lease it ends no longer counts against the
// in-flight limit when the claim looks, so a consumer at the limit goes on.
func testAckClaimFreesTheSlot(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, msg("q", "a"), msg("q", "b"), msg("q", "c"))
	if err := b.store.SetLimit(b.ctx, "q", 1); err != nil {
		t.Fatal(err)
	}
	first := b.claim(t, co{Queue: "q", Max: 1})
	if l := b.claim(t, co{Queue: "q", Max: 1}); l != nil {
		t.Fatal("a claim over the in-flight limit")
	}
	next, err := b.store.AckClaim(b.ctx, first, nil, co{Queue: "q", Max: 1})
	if err != nil || next == nil {
		t.Fatalf("ack and claim at the limit: %+v, %v, want the next message", next, err)
	}
	if l := b.claim(t, co{Queue: "q", Max: 1}); l != nil {
		t.Fatal("a claim over the in-flight limit after ack and claim")
	}
	// A part ack leaves the lease live: it still holds the slot.
	if err := b.store.Ack(b.ctx, next); err != nil {
		t.Fatal(err)
	}
	two := b.claim(t, co{Queue: "q", Max: 1})
	b.enqueue(t, msg("q", "d"), msg("q", "e"))
	if err := b.store.SetLimit(b.ctx, "q", 2); err != nil {
		t.Fatal(err)
	}
	other := b.claim(t, co{Queue: "q", Max: 1})
	more := b.claim(t, co{Queue: "q", Max: 1, Into: two})
	if other == nil || more == nil {
		t.Fatal("no message for the second slot or into the lease")
	}
	two.Messages = append(two.Messages, more.Messages...)
	if l, err := b.store.AckClaim(b.ctx, two, two.IDs()[:1], co{Queue: "q", Max: 1}); err != nil || l != nil {
		t.Fatalf("ack of part of a lease, then a claim at the limit: %+v, %v, want nothing claimed", l, err)
	}
	if st := b.stats(t, "q"); st.InFlight != 2 || st.Leases != 2 {
		t.Fatalf("stats %+v, want 2 in flight under 2 leases", st)
	}
}

func testAckClaimPausedOrEmpty(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, msg("q", "a"), msg("q", "b"))
	first := b.claim(t, co{Queue: "q", Max: 1})
	if err := b.store.Pause(b.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if l, err := b.store.AckClaim(b.ctx, first, nil, co{Queue: "q", Max: 1}); err != nil || l != nil {
		t.Fatalf("ack and claim on a paused queue: %+v, %v, want the ack alone", l, err)
	}
	if st := b.stats(t, "q"); st.Ready != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v, want the message acked and the other left ready", st)
	}
	if err := b.store.Resume(b.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	second := b.claim(t, co{Queue: "q", Max: 1})
	if l, err := b.store.AckClaim(b.ctx, second, nil, co{Queue: "q", Max: 1}); err != nil || l != nil {
		t.Fatalf("ack and claim of the last message: %+v, %v, want the ack alone", l, err)
	}
	if st := b.stats(t, "q"); st.Ready+st.InFlight+st.Delayed != 0 {
		t.Fatalf("stats %+v, want an empty queue", st)
	}
	if m := b.metrics(t, "q"); m.Settled[queuestore.OutcomeAcked] != 2 {
		t.Fatalf("metrics %+v, want 2 acked", m)
	}
}

// Bad input does nothing: neither the ack nor the claim.
func testAckClaimValidation(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	ids := b.enqueue(t, msg("q", "a"), msg("q", "b"))
	first := b.claim(t, co{Queue: "q", Max: 1})
	for name, call := range map[string]func() (*queuestore.Lease, error){
		"nil lease":   func() (*queuestore.Lease, error) { return b.store.AckClaim(b.ctx, nil, nil, co{Queue: "q", Max: 1}) },
		"claim max 0": func() (*queuestore.Lease, error) { return b.store.AckClaim(b.ctx, first, nil, co{Queue: "q"}) },
		"bad queue":   func() (*queuestore.Lease, error) { return b.store.AckClaim(b.ctx, first, nil, co{Queue: "", Max: 1}) },
		"foreign id": func() (*queuestore.Lease, error) {
			return b.store.AckClaim(b.ctx, first, ids[1:], co{Queue: "q", Max: 1})
		},
		"other queue": func() (*queuestore.Lease, error) {
			return b.store.AckClaim(b.ctx, first, nil, co{Queue: "other", Max: 1})
		},
		"into the ack": func() (*queuestore.Lease, error) {
			return b.store.AckClaim(b.ctx, first, nil, co{Queue: "q", Max: 1, Into: first})
		},
	} {
		l, err := call()
		if !errors.Is(err, queuestore.ErrInvalid) || l != nil {
			t.Errorf("%s: %+v, %v, want ErrInvalid and no lease", name, l, err)
		}
	}
	if st := b.stats(t, "q"); st.Ready != 1 || st.InFlight != 1 {
		t.Fatalf("stats %+v, want nothing acked or claimed by the bad calls", st)
	}
}
