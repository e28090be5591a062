package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// Claim order, priorities and aging, bands, groups, delays, bytes, pause and
// the in-flight limit.

type (
	nm = queuestore.NewMessage
	co = queuestore.ClaimOptions
)

func init() {
	add("ClaimOrderPriorityThenFIFO", testClaimOrderPriorityThenFIFO)
	add("ClaimRespectsDelay", testClaimRespectsDelay)
	add("ClaimPriorityBand", testClaimPriorityBand)
	add("ClaimPriorityBandWithAging", testClaimPriorityBandWithAging)
	add("ClaimGroups", testClaimGroups)
	add("ClaimOneGroupInto", testClaimOneGroupInto)
	add("ClaimValidation", testClaimValidation)
	add("AgingLetsLowPriorityMove", testAgingLetsLowPriorityMove)
	add("AgingCountsTimeWaitedNotClaims", testAgingCountsTimeWaitedNotClaims)
	add("AgingIntervalChangeReranksReadyMessages", testAgingIntervalChangeReranks)
	add("DelayedMessagesStayOutOfTheReadySet", testDelayedOutOfReadySet)
	add("ReleasedMessageGoesBehindItsPriority", testReleasedGoesBehind)
	add("ClaimCutsByBytes", testClaimCutsByBytes)
	add("ClaimIntoALeaseTakesNoNewSlot", testClaimIntoTakesNoNewSlot)
	add("InFlightLimitCountsLeasesAcrossClaims", testInFlightLimit)
	add("PauseAndResume", testPauseAndResume)
}

func testClaimOrderPriorityThenFIFO(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t,
		nm{Queue: "q", Body: []byte("low-1"), Priority: -1},
		nm{Queue: "q", Body: []byte("mid-1")},
		nm{Queue: "q", Body: []byte("high-1"), Priority: 10},
		nm{Queue: "q", Body: []byte("mid-2")},
		nm{Queue: "q", Body: []byte("high-2"), Priority: 10},
	)
	got := bodies(b.claim(t, co{Queue: "q", Max: 3}))
	if want := []string{"high-1", "high-2", "mid-1"}; !slices.Equal(got, want) {
		t.Fatalf("first claim %v, want %v", got, want)
	}
	got = bodies(b.claim(t, co{Queue: "q", Max: 3}))
	if want := []string{"mid-2", "low-1"}; !slices.Equal(got, want) {
		t.Fatalf("second claim %v, want %v", got, want)
	}
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatalf("empty queue gave a lease: %v", bodies(l))
	}
	if l := b.claim(t, co{Queue: "never-used"}); l != nil {
		t.Fatalf("unknown queue gave a lease: %v", bodies(l))
	}
}

func testClaimRespectsDelay(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, nm{Queue: "q", Body: []byte("later"), NotBefore: b.clock.Now().Add(time.Minute)})
	b.enqueue(t, nm{Queue: "q", Body: []byte("past"), NotBefore: b.clock.Now().Add(-time.Hour)})
	if got := bodies(b.claim(t, co{Queue: "q", Lease: time.Hour})); !slices.Equal(got, []string{"past"}) {
		t.Fatalf("claim %v, want only the message whose not-before passed", got)
	}
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatal("claimed a delayed message")
	}
	if st := b.stats(t, "q"); st.Delayed != 1 || st.Ready != 0 {
		t.Fatalf("stats %+v, want 1 delayed", st)
	}
	b.clock.Advance(time.Minute - time.Millisecond)
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatal("claimed a delayed message a millisecond early")
	}
	b.clock.Advance(time.Millisecond)
	if st := b.stats(t, "q"); st.Ready != 1 || st.Delayed != 0 {
		t.Fatalf("stats at the not-before time %+v, want 1 ready", st)
	}
	if got := bodies(b.claim(t, co{Queue: "q"})); !slices.Equal(got, []string{"later"}) {
		t.Fatalf("after the delay: %v", got)
	}
}

func testClaimPriorityBand(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	for _, p := range []int64{0, 5, 10, 20, 5, queuestore.MinPriority, queuestore.MaxPriority} {
		b.enqueue(t, nm{Queue: "q", Body: []byte(strings.Repeat("p", int(p%7+7)%7+1)), Priority: p})
	}
	urgent := b.claim(t, co{Queue: "q", MinPriority: ptr[int64](10)})
	if urgent == nil || len(urgent.Messages) != 3 || urgent.Messages[0].Priority != queuestore.MaxPriority ||
		urgent.Messages[1].Priority != 20 || urgent.Messages[2].Priority != 10 {
		t.Fatalf("urgent band took %+v", urgent)
	}
	mid := b.claim(t, co{Queue: "q", MinPriority: ptr[int64](1), MaxPriority: ptr[int64](9)})
	if mid == nil || len(mid.Messages) != 2 || mid.Messages[0].Priority != 5 {
		t.Fatalf("mid band: %+v", mid)
	}
	rest := b.claim(t, co{Queue: "q", MaxPriority: ptr[int64](0)})
	if rest == nil || len(rest.Messages) != 2 || rest.Messages[0].Priority != 0 || rest.Messages[1].Priority != queuestore.MinPriority {
		t.Fatalf("low band: %+v", rest)
	}
	_, err := b.store.Claim(b.ctx, co{Queue: "q", Max: 1, MinPriority: ptr[int64](5), MaxPriority: ptr[int64](1)})
	if !errors.Is(err, queuestore.ErrInvalid) {
		t.Fatalf("inverted band: %v", err)
	}
	// A band beyond the priority bounds is empty, not an error.
	b.enqueue(t, nm{Queue: "q", Body: []byte("x")})
	if l := b.claim(t, co{Queue: "q", MinPriority: ptr[int64](queuestore.MaxPriority + 5)}); l != nil {
		t.Fatalf("band above the bounds took %+v", l)
	}
}

// With aging, a band still filters on the priority as enqueued: aging never
// moves a message into another band.
func testClaimPriorityBandWithAging(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	if l := b.claim(t, co{Queue: "q", Aging: time.Second}); l != nil {
		t.Fatal("claim from an empty queue")
	}
	b.enqueue(t, nm{Queue: "q", Body: []byte("old-low"), Priority: 0})
	b.clock.Advance(time.Hour) // 3600 aging intervals
	b.enqueue(t, nm{Queue: "q", Body: []byte("high"), Priority: 5})
	l := b.claim(t, co{Queue: "q", Aging: time.Second, MinPriority: ptr[int64](1)})
	if got := bodies(l); !slices.Equal(got, []string{"high"}) {
		t.Fatalf("band >= 1 with aging took %q, want [high] only", got)
	}
}

func testClaimGroups(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	g := func(body, group string) nm { return nm{Queue: "q", Body: []byte(body), Group: group} }
	b.enqueue(t, g("a1", "a"), g("b1", "b"), g("n1", ""), g("a2", "a"), g("b2", "b"))

	if got := bodies(b.claim(t, co{Queue: "q", Group: "b"})); !slices.Equal(got, []string{"b1", "b2"}) {
		t.Fatalf("group b: %v", got)
	}
	if got := bodies(b.claim(t, co{Queue: "q", OneGroup: true})); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("oldest group: %v", got)
	}
	if got := bodies(b.claim(t, co{Queue: "q", OneGroup: true})); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("messages without a group form their own: %v", got)
	}
	if l := b.claim(t, co{Queue: "q", OneGroup: true}); l != nil {
		t.Fatal("claimed from an empty queue")
	}
	if l := b.claim(t, co{Queue: "q", Group: "a"}); l != nil {
		t.Fatal("claimed a group with nothing ready")
	}
}

// A claim into a lease with OneGroup takes more of the lease's own group
// only.
func testClaimOneGroupInto(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	g := func(body, group string) nm { return nm{Queue: "q", Body: []byte(body), Group: group} }
	b.enqueue(t, g("a1", "a"))
	l := b.claim(t, co{Queue: "q", OneGroup: true})
	b.enqueue(t, g("b1", "b"), g("a2", "a"), g("b2", "b"), g("a3", "a"))
	more := b.claim(t, co{Queue: "q", OneGroup: true, Into: l})
	if got := bodies(more); !slices.Equal(got, []string{"a2", "a3"}) {
		t.Fatalf("claim into a group-a lease took %q, want [a2 a3]", got)
	}
}

func testClaimValidation(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	other := &queuestore.Lease{ID: 1, Token: "1", Queue: "other"}
	tests := []struct {
		name string
		opts co
		text string
	}{
		{"bad queue", co{Queue: "", Max: 1}, "queue name"},
		{"zero max", co{Queue: "q"}, "claim max must be 1..10000, got 0"},
		{"huge max", co{Queue: "q", Max: queuestore.MaxClaim + 1}, "claim max"},
		{"negative max bytes", co{Queue: "q", Max: 1, MaxBytes: -1}, "max_bytes"},
		{"tiny lease", co{Queue: "q", Max: 1, Lease: time.Microsecond}, "lease"},
		{"negative aging", co{Queue: "q", Max: 1, Aging: -time.Second}, "aging"},
		{"into another queue's lease", co{Queue: "q", Max: 1, Into: other}, "claim into lease"},
		{"into a lease without messages", co{Queue: "q", Max: 1, Into: &queuestore.Lease{ID: 1, Token: "1", Queue: "q"}}, "holds none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.store.Claim(b.ctx, tt.opts)
			if !errors.Is(err, queuestore.ErrInvalid) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %v, want ErrInvalid mentioning %q", err, tt.text)
			}
		})
	}
}

func testAgingLetsLowPriorityMove(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, nm{Queue: "q", Body: []byte("old-low"), Priority: 0})
	claimNext := func() string {
		t.Helper()
		// High priority traffic never stops: one new urgent message per claim.
		b.enqueue(t, nm{Queue: "q", Body: []byte("urgent"), Priority: 2})
		l := b.claim(t, co{Queue: "q", Max: 1, Aging: time.Minute})
		if err := b.store.Ack(b.ctx, l); err != nil {
			t.Fatal(err)
		}
		return bodies(l)[0]
	}
	for i := range 3 {
		if got := claimNext(); got != "urgent" {
			t.Fatalf("claim %d took %q before any aging", i, got)
		}
	}
	// Two intervals put the old message level with the urgent band, and
	// being older it goes first; without aging it would wait forever.
	b.clock.Advance(time.Minute)
	claimNext()
	b.clock.Advance(time.Minute)
	if got := claimNext(); got != "old-low" {
		t.Fatalf("after two aging intervals got %q, want old-low", got)
	}
}

// Aging counts the time a message has waited ready, not claims.
func testAgingCountsTimeWaitedNotClaims(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	if l := b.claim(t, co{Queue: "q", Aging: time.Minute}); l != nil {
		t.Fatal("claim from an empty queue")
	}
	b.enqueue(t, nm{Queue: "q", Body: []byte("waited"), Priority: 0})
	b.clock.Advance(10 * time.Minute)
	b.enqueue(t, nm{Queue: "q", Body: []byte("fresh"), Priority: 2})
	if got := bodies(b.claim(t, co{Queue: "q", Max: 1, Aging: time.Minute})); len(got) != 1 || got[0] != "waited" {
		t.Fatalf("first claim after ten aging intervals took %q, want the message that waited", got)
	}
	// Without aging, priority alone decides.
	c := s.setup(t, queuestore.Options{})
	c.enqueue(t, nm{Queue: "q", Body: []byte("waited"), Priority: 0})
	c.clock.Advance(10 * time.Minute)
	c.enqueue(t, nm{Queue: "q", Body: []byte("fresh"), Priority: 2})
	if got := bodies(c.claim(t, co{Queue: "q", Max: 1})); got[0] != "fresh" {
		t.Fatalf("without aging the claim took %q, want the higher priority", got)
	}
}

// A changed aging interval re-ranks the messages already waiting, and
// messages enqueued afterwards are keyed with the new one.
func testAgingIntervalChangeReranks(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, nm{Queue: "q", Body: []byte("low"), Priority: 0})
	b.clock.Advance(5 * time.Minute)
	b.enqueue(t, nm{Queue: "q", Body: []byte("high"), Priority: 3})
	// An interval of 1m: low waited 5 intervals, more than 3 levels.
	if got := bodies(b.claim(t, co{Queue: "q", Max: 1, Aging: time.Minute, Lease: time.Hour})); got[0] != "low" {
		t.Fatalf("aging 1m took %q, want low", got)
	}
	b.enqueue(t, nm{Queue: "q", Body: []byte("low2"), Priority: 0})
	b.clock.Advance(time.Minute)
	// An interval of 1h: a minute is nothing against 3 levels.
	if got := bodies(b.claim(t, co{Queue: "q", Max: 1, Aging: time.Hour})); got[0] != "high" {
		t.Fatalf("aging 1h took %q, want high", got)
	}
	// Zero keeps the queue's setting (1h): low2 waited a minute only.
	b.enqueue(t, nm{Queue: "q", Body: []byte("high2"), Priority: 1})
	if got := bodies(b.claim(t, co{Queue: "q", Max: 1})); got[0] != "high2" {
		t.Fatalf("claim without aging took %q, want high2", got)
	}
}

// Delayed and leased messages stay out of the ready set: a claim finds a
// ready low-priority message behind any number of delayed high-priority
// ones, and due messages join the ready set in order.
func testDelayedOutOfReadySet(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	var later []nm
	for range 50 {
		later = append(later, nm{Queue: "q", Body: []byte("later"), Priority: 5, NotBefore: b.clock.Now().Add(time.Hour)})
	}
	b.enqueue(t, later...)
	b.enqueue(t, nm{Queue: "q", Body: []byte("now"), Priority: 0})
	if got := bodies(b.claim(t, co{Queue: "q", Max: 10, Lease: 2 * time.Hour})); len(got) != 1 || got[0] != "now" {
		t.Fatalf("claim took %q, want [now]", got)
	}
	if st := b.stats(t, "q"); st.Delayed != 50 || st.InFlight != 1 {
		t.Fatalf("stats %+v, want 50 delayed and 1 in flight", st)
	}
	b.clock.Advance(time.Hour)
	if st := b.stats(t, "q"); st.Ready != 50 {
		t.Fatalf("stats after the delay %+v, want 50 ready", st)
	}
	if got := b.claim(t, co{Queue: "q", Max: 100}); len(got.Messages) != 50 {
		t.Fatalf("claim after the delay took %d, want 50", len(got.Messages))
	}
	c := s.setup(t, queuestore.Options{})
	c.enqueue(t, later...)
	c.enqueue(t, nm{Queue: "q", Body: []byte("now")})
	if r := c.rows(t, "q"); r.ReadySet != 1 {
		t.Fatalf("%d messages in the ready set, want only the one that is due", r.ReadySet)
	}
}

// A release counts the wait from the release: the message goes behind
// messages of its priority that were ready before.
func testReleasedGoesBehind(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, msg("q", "first"))
	l := b.claim(t, co{Queue: "q"})
	b.clock.Advance(time.Second)
	b.enqueue(t, msg("q", "second"))
	b.clock.Advance(time.Second)
	if err := b.store.Release(b.ctx, l); err != nil {
		t.Fatal(err)
	}
	if got := bodies(b.claim(t, co{Queue: "q"})); !slices.Equal(got, []string{"second", "first"}) {
		t.Fatalf("after a release: %q, want [second first]", got)
	}
}

// A claim with MaxBytes takes what fits, says so, and takes one message
// alone even when it is larger.
func testClaimCutsByBytes(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	for _, body := range []string{"aaaa", "bbbb", "cccc", strings.Repeat("x", 20), "dddd"} {
		b.enqueue(t, msg("q", body))
	}
	l := b.claim(t, co{Queue: "q", Max: 10, MaxBytes: 10})
	if got := bodies(l); len(got) != 2 || !l.BytesFull {
		t.Fatalf("claim of 10 bytes took %q (full %v), want 2 messages and BytesFull", got, l.BytesFull)
	}
	more := b.claim(t, co{Queue: "q", Max: 10, MaxBytes: 10, Into: l})
	if more == nil || len(more.Messages) != 0 || !more.BytesFull {
		t.Fatalf("claim into a lease with 2 bytes of room: %+v, want nothing and BytesFull", more)
	}
	l2 := b.claim(t, co{Queue: "q", Max: 10, MaxBytes: 10})
	if got := bodies(l2); len(got) != 1 || got[0] != "cccc" {
		t.Fatalf("next claim took %q, want [cccc] (the big one does not fit after it)", got)
	}
	big := b.claim(t, co{Queue: "q", Max: 10, MaxBytes: 10})
	if got := bodies(big); len(got) != 1 || len(got[0]) != 20 || !big.BytesFull {
		t.Fatalf("claim took %q (full %v), want the 20-byte message alone", got, big.BytesFull)
	}
	last := b.claim(t, co{Queue: "q", Max: 10, MaxBytes: 10})
	if got := bodies(last); len(got) != 1 || last.BytesFull {
		t.Fatalf("last claim took %q (full %v), want [dddd], not full", got, last.BytesFull)
	}
	if st := b.stats(t, "q"); st.InFlight != 5 || st.Ready != 0 {
		t.Fatalf("stats %+v: messages the walk saw past the byte limit must stay ready, not leased", st)
	}
}

// A batch that grows by claims into its lease holds one slot of the
// in-flight limit, however many claims filled it.
func testClaimIntoTakesNoNewSlot(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	if err := b.store.SetLimit(b.ctx, "q", 1); err != nil {
		t.Fatal(err)
	}
	b.enqueue(t, msg("q", "a"))
	l := b.claim(t, co{Queue: "q", Max: 5, Lease: time.Minute})
	b.clock.Advance(30 * time.Second)
	b.enqueue(t, msg("q", "b"), msg("q", "c"))
	if other := b.claim(t, co{Queue: "q", Max: 5}); other != nil {
		t.Fatalf("a second lease under limit 1: %+v", other)
	}
	more := b.claim(t, co{Queue: "q", Max: 4, Into: l, Lease: time.Minute})
	if more == nil || len(more.Messages) != 2 || more.ID != l.ID || more.Token != l.Token {
		t.Fatalf("claim into the lease: %+v, want 2 more messages under the same lease", more)
	}
	if want := b.clock.Now().Add(time.Minute); !more.ExpiresAt.Equal(want) {
		t.Fatalf("lease end after the claim into it %s, want %s (pushed out)", more.ExpiresAt, want)
	}
	if st := b.stats(t, "q"); st.Leases != 1 || st.InFlight != 3 {
		t.Fatalf("stats %+v, want 3 in flight under 1 lease", st)
	}
	loaded, err := b.store.LeaseByToken(b.ctx, l.Token)
	if err != nil || len(loaded.Messages) != 3 {
		t.Fatalf("the lease by token: %+v %v, want its 3 messages", loaded, err)
	}
	l.Messages = append(l.Messages, more.Messages...)
	if err := b.store.Ack(b.ctx, l); err != nil {
		t.Fatal(err)
	}
	if st := b.stats(t, "q"); st.Leases != 0 {
		t.Fatalf("stats %+v, want the slot free after the ack", st)
	}
	// A finished lease cannot be added to.
	b.enqueue(t, msg("q", "d"))
	if _, err := b.store.Claim(b.ctx, co{Queue: "q", Max: 1, Into: l}); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Fatalf("claim into a finished lease: %v, want ErrLeaseLost", err)
	}
	// Nor one that ran out.
	l = b.claim(t, co{Queue: "q", Max: 1, Lease: time.Second})
	b.enqueue(t, msg("q", "e"))
	b.clock.Advance(time.Second)
	if _, err := b.store.Claim(b.ctx, co{Queue: "q", Max: 1, Into: l}); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Fatalf("claim into an expired lease: %v, want ErrLeaseLost", err)
	}
}

func testInFlightLimit(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	for range 10 {
		b.enqueue(t, msg("api", "call"))
	}
	if err := b.store.SetLimit(b.ctx, "api", 2); err != nil {
		t.Fatal(err)
	}
	first := b.claim(t, co{Queue: "api", Max: 3})
	second := b.claim(t, co{Queue: "api", Max: 3})
	if first == nil || second == nil {
		t.Fatal("the first two leases should be granted")
	}
	if l := b.claim(t, co{Queue: "api", Max: 3}); l != nil {
		t.Fatal("a third lease beyond the limit of 2")
	}
	if st := b.stats(t, "api"); st.Leases != 2 || st.InFlightLimit != 2 || st.InFlight != 6 {
		t.Fatalf("stats %+v", st)
	}
	if err := b.store.Ack(b.ctx, first); err != nil {
		t.Fatal(err)
	}
	if l := b.claim(t, co{Queue: "api", Max: 3}); l == nil {
		t.Fatal("a lease ended, the next claim should be granted")
	}
	// An expired lease stops counting, even if never finished.
	b.clock.Advance(time.Hour)
	if l := b.claim(t, co{Queue: "api", Max: 3}); l == nil {
		t.Fatal("expired leases still count against the limit")
	}
	if err := b.store.SetLimit(b.ctx, "api", 0); err != nil {
		t.Fatal(err)
	}
	if st := b.stats(t, "api"); st.InFlightLimit != 0 {
		t.Fatalf("limit 0 removes the cap: %+v", st)
	}
	for _, bad := range []int{-1, 1_000_001} {
		if err := b.store.SetLimit(b.ctx, "api", bad); !errors.Is(err, queuestore.ErrInvalid) {
			t.Fatalf("limit %d: %v", bad, err)
		}
	}
}

func testPauseAndResume(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	if err := b.store.Pause(b.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	b.enqueue(t, msg("q", "while paused"))
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatal("claimed from a paused queue")
	}
	if st := b.stats(t, "q"); !st.Paused || st.Ready != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := b.store.Resume(b.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	l := b.claim(t, co{Queue: "q", Max: 1})
	if l == nil {
		t.Fatal("nothing claimed after resume")
	}
	// A paused queue's live leases can still be finished.
	if err := b.store.Pause(b.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Ack(b.ctx, l); err != nil {
		t.Fatalf("ack on a paused queue: %v", err)
	}
}
