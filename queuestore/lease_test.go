package queuestore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClaimOrderPriorityThenFIFO(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t,
		NewMessage{Queue: "q", Body: []byte("low-1"), Priority: -1},
		NewMessage{Queue: "q", Body: []byte("mid-1")},
		NewMessage{Queue: "q", Body: []byte("high-1"), Priority: 10},
		NewMessage{Queue: "q", Body: []byte("mid-2")},
		NewMessage{Queue: "q", Body: []byte("high-2"), Priority: 10},
	)
	got := bodies(b.claim(t, ClaimOptions{Queue: "q", Max: 3}))
	if want := []string{"high-1", "high-2", "mid-1"}; !slices.Equal(got, want) {
		t.Fatalf("first claim %v, want %v", got, want)
	}
	got = bodies(b.claim(t, ClaimOptions{Queue: "q", Max: 3}))
	if want := []string{"mid-2", "low-1"}; !slices.Equal(got, want) {
		t.Fatalf("second claim %v, want %v", got, want)
	}
	if l := b.claim(t, ClaimOptions{Queue: "q"}); l != nil {
		t.Fatalf("empty queue gave a lease: %v", bodies(l))
	}
}

func TestClaimRespectsDelay(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("later"), NotBefore: b.clock.Now().Add(time.Minute)})
	if l := b.claim(t, ClaimOptions{Queue: "q"}); l != nil {
		t.Fatal("claimed a delayed message")
	}
	if st := b.stats(t, "q"); st.Delayed != 1 || st.Ready != 0 {
		t.Fatalf("stats %+v, want 1 delayed", st)
	}
	b.clock.Advance(time.Minute)
	if got := bodies(b.claim(t, ClaimOptions{Queue: "q"})); !slices.Equal(got, []string{"later"}) {
		t.Fatalf("after the delay: %v", got)
	}
}

func TestClaimPriorityBand(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for _, p := range []int64{0, 5, 10, 20, 5} {
		b.enqueue(t, NewMessage{Queue: "q", Body: []byte(strings.Repeat("p", int(p%7)+1)), Priority: p})
	}
	urgent := b.claim(t, ClaimOptions{Queue: "q", MinPriority: ptr[int64](10)})
	if n := len(urgent.Messages); n != 2 || urgent.Messages[0].Priority != 20 || urgent.Messages[1].Priority != 10 {
		t.Fatalf("urgent band took %d messages %+v", n, urgent.Messages)
	}
	mid := b.claim(t, ClaimOptions{Queue: "q", MinPriority: ptr[int64](1), MaxPriority: ptr[int64](9)})
	if len(mid.Messages) != 2 || mid.Messages[0].Priority != 5 {
		t.Fatalf("mid band: %+v", mid.Messages)
	}
	rest := b.claim(t, ClaimOptions{Queue: "q", MaxPriority: ptr[int64](0)})
	if len(rest.Messages) != 1 || rest.Messages[0].Priority != 0 {
		t.Fatalf("low band: %+v", rest.Messages)
	}
	_, err := b.store.Claim(b.ctx, ClaimOptions{Queue: "q", Max: 1, MinPriority: ptr[int64](5), MaxPriority: ptr[int64](1)})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("inverted band: %v", err)
	}
}

func TestClaimGroups(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	g := func(body, group string) NewMessage { return NewMessage{Queue: "q", Body: []byte(body), Group: group} }
	b.enqueue(t, g("a1", "a"), g("b1", "b"), g("n1", ""), g("a2", "a"), g("b2", "b"))

	if got := bodies(b.claim(t, ClaimOptions{Queue: "q", Group: "b"})); !slices.Equal(got, []string{"b1", "b2"}) {
		t.Fatalf("group b: %v", got)
	}
	if got := bodies(b.claim(t, ClaimOptions{Queue: "q", OneGroup: true})); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("oldest group: %v", got)
	}
	if got := bodies(b.claim(t, ClaimOptions{Queue: "q", OneGroup: true})); !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("messages without a group form their own: %v", got)
	}
	if l := b.claim(t, ClaimOptions{Queue: "q", OneGroup: true}); l != nil {
		t.Fatal("claimed from an empty queue")
	}
}

func TestClaimValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tests := []struct {
		name string
		opts ClaimOptions
		text string
	}{
		{"bad queue", ClaimOptions{Queue: "", Max: 1}, "queue name"},
		{"zero max", ClaimOptions{Queue: "q"}, "claim max must be 1..10000, got 0"},
		{"huge max", ClaimOptions{Queue: "q", Max: MaxClaim + 1}, "claim max"},
		{"tiny lease", ClaimOptions{Queue: "q", Max: 1, Lease: time.Microsecond}, "lease"},
		{"negative aging", ClaimOptions{Queue: "q", Max: 1, Aging: -time.Second}, "aging"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.store.Claim(b.ctx, tt.opts)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %v, want ErrInvalid mentioning %q", err, tt.text)
			}
		})
	}
}

func TestExpiredLeaseIsClaimedAgainAndOldLeaseIsLost(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, msg("q", "m"))
	first := b.claim(t, ClaimOptions{Queue: "q", Lease: 10 * time.Second})
	if first.Messages[0].Attempt != 1 {
		t.Fatalf("attempt %d, want 1", first.Messages[0].Attempt)
	}
	if l := b.claim(t, ClaimOptions{Queue: "q"}); l != nil {
		t.Fatal("a held message was claimed twice")
	}
	if st := b.stats(t, "q"); st.InFlight != 1 || st.Leases != 1 {
		t.Fatalf("stats %+v, want 1 in flight under 1 lease", st)
	}
	b.clock.Advance(10 * time.Second)
	second := b.claim(t, ClaimOptions{Queue: "q"})
	if second == nil || second.Messages[0].Attempt != 2 || second.ID <= first.ID {
		t.Fatalf("second claim %+v, want attempt 2 under a larger fencing token", second)
	}
	for name, finish := range map[string]func() error{
		"ack":     func() error { return b.store.Ack(b.ctx, first) },
		"nack":    func() error { _, err := b.store.Nack(b.ctx, first, NackOptions{}); return err },
		"extend":  func() error { return b.store.Extend(b.ctx, first, time.Minute) },
		"release": func() error { return b.store.Release(b.ctx, first) },
	} {
		if err := finish(); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("%s under the lost lease: %v, want ErrLeaseLost", name, err)
		}
	}
	if st := b.stats(t, "q"); st.InFlight != 1 {
		t.Fatalf("a lost lease changed something: %+v", st)
	}
	if err := b.store.Ack(b.ctx, second); err != nil {
		t.Fatal(err)
	}
}

func TestAckOfExpiredButUnclaimedLeaseSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, msg("q", "m"))
	lease := b.claim(t, ClaimOptions{Queue: "q", Lease: time.Second})
	b.clock.Advance(time.Minute)
	if err := b.store.Ack(b.ctx, lease); err != nil {
		t.Fatalf("nobody took the messages over, the ack should hold: %v", err)
	}
	if st := b.stats(t, "q"); st != (Stats{Queue: "q"}) {
		t.Fatalf("stats %+v, want an empty queue", st)
	}
}

func TestPartialAckAndNackInOneLease(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ids := b.enqueue(t, msg("q", "1"), msg("q", "2"), msg("q", "3"))
	lease := b.claim(t, ClaimOptions{Queue: "q"})
	if err := b.store.Ack(b.ctx, lease, ids[0], ids[2]); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Ack(b.ctx, lease, ids[0]); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("second ack of one message: %v, want ErrLeaseLost", err)
	}
	if err := b.store.Ack(b.ctx, lease, 12345); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ack of an id outside the lease: %v, want ErrInvalid", err)
	}
	if err := b.store.Ack(b.ctx, lease, ids[1], ids[1]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ack naming one id twice: %v, want ErrInvalid", err)
	}
	res, err := b.store.Nack(b.ctx, lease, NackOptions{IDs: []int64{ids[1]}, Error: "boom"})
	if err != nil || !slices.Equal(res.Retried, []int64{ids[1]}) {
		t.Fatalf("nack: %+v %v", res, err)
	}
	if st := b.stats(t, "q"); st.Delayed != 1 || st.Leases != 0 {
		t.Fatalf("stats %+v, want the nacked message delayed and the finished lease gone", st)
	}
}

func TestNackBackoffThenDeadLetter(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("poison"), MaxAttempts: 3})
	for attempt := 1; attempt <= 3; attempt++ {
		lease := b.claim(t, ClaimOptions{Queue: "q"})
		if lease == nil || lease.Messages[0].Attempt != attempt {
			t.Fatalf("attempt %d: lease %+v", attempt, lease)
		}
		res, err := b.store.Nack(b.ctx, lease, NackOptions{Error: "handler exited 1"})
		if err != nil {
			t.Fatal(err)
		}
		if attempt < 3 {
			if len(res.Retried) != 1 {
				t.Fatalf("attempt %d: %+v, want a retry", attempt, res)
			}
			// The test backoff waits attempt seconds: not ready a moment before.
			b.clock.Advance(time.Duration(attempt)*time.Second - time.Millisecond)
			if l := b.claim(t, ClaimOptions{Queue: "q"}); l != nil {
				t.Fatalf("attempt %d: retried before its backoff", attempt)
			}
			b.clock.Advance(time.Millisecond)
		} else if len(res.Dead) != 1 {
			t.Fatalf("last attempt: %+v, want dead", res)
		}
	}
	if st := b.stats(t, "q"); st.Dead != 1 || st.Ready+st.Delayed+st.InFlight != 0 {
		t.Fatalf("stats %+v, want 1 dead only", st)
	}
	dead, err := b.store.Peek(b.ctx, "q", PeekOptions{State: StateDead})
	if err != nil || len(dead) != 1 || dead[0].LastError != "handler exited 1" || dead[0].Attempt != 3 {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
}

func TestNackOptions(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, msg("q", "a"), msg("q", "b"))
	lease := b.claim(t, ClaimOptions{Queue: "q", Max: 1})
	if _, err := b.store.Nack(b.ctx, lease, NackOptions{Delay: -1}); err != nil {
		t.Fatal(err)
	}
	if st := b.stats(t, "q"); st.Ready != 2 {
		t.Fatalf("negative delay should retry at once: %+v", st)
	}
	lease = b.claim(t, ClaimOptions{Queue: "q", Max: 2})
	// "a" is on its second attempt, "b" on its first.
	res, err := b.store.Nack(b.ctx, lease, NackOptions{MaxAttempts: 2, Delay: time.Hour})
	if err != nil || len(res.Dead) != 1 || len(res.Retried) != 1 {
		t.Fatalf("max attempts override: %+v %v, want one dead and one retried", res, err)
	}
}

func TestExtendKeepsTheLease(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, msg("q", "m"))
	lease := b.claim(t, ClaimOptions{Queue: "q", Lease: 10 * time.Second})
	b.clock.Advance(8 * time.Second)
	if err := b.store.Extend(b.ctx, lease, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if want := b.clock.Now().Add(10 * time.Second); !lease.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt %s, want %s", lease.ExpiresAt, want)
	}
	b.clock.Advance(8 * time.Second)
	if l := b.claim(t, ClaimOptions{Queue: "q"}); l != nil {
		t.Fatal("claimed a message under an extended lease")
	}
	if err := b.store.Extend(b.ctx, lease, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero extension: %v", err)
	}
}

func TestReleaseDoesNotSpendAnAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, msg("q", "m"))
	lease := b.claim(t, ClaimOptions{Queue: "q"})
	if err := b.store.Release(b.ctx, lease); err != nil {
		t.Fatal(err)
	}
	again := b.claim(t, ClaimOptions{Queue: "q"})
	if again == nil || again.Messages[0].Attempt != 1 {
		t.Fatalf("after release: %+v, want attempt 1 again", again)
	}
}

func TestInFlightLimitCountsLeasesAcrossClaims(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for range 10 {
		b.enqueue(t, msg("api", "call"))
	}
	if err := b.store.SetLimit(b.ctx, "api", 2); err != nil {
		t.Fatal(err)
	}
	first := b.claim(t, ClaimOptions{Queue: "api", Max: 3})
	second := b.claim(t, ClaimOptions{Queue: "api", Max: 3})
	if first == nil || second == nil {
		t.Fatal("the first two leases should be granted")
	}
	if l := b.claim(t, ClaimOptions{Queue: "api", Max: 3}); l != nil {
		t.Fatal("a third lease beyond the limit of 2")
	}
	if st := b.stats(t, "api"); st.Leases != 2 || st.InFlightLimit != 2 || st.InFlight != 6 {
		t.Fatalf("stats %+v", st)
	}
	if err := b.store.Ack(b.ctx, first); err != nil {
		t.Fatal(err)
	}
	if l := b.claim(t, ClaimOptions{Queue: "api", Max: 3}); l == nil {
		t.Fatal("a lease ended, the next claim should be granted")
	}
	// An expired lease stops counting, even if never finished.
	b.clock.Advance(time.Hour)
	if l := b.claim(t, ClaimOptions{Queue: "api", Max: 3}); l == nil {
		t.Fatal("expired leases still count against the limit")
	}
	if err := b.store.SetLimit(b.ctx, "api", -1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative limit: %v", err)
	}
}

func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	if err := b.store.Pause(b.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	b.enqueue(t, msg("q", "while paused"))
	if l := b.claim(t, ClaimOptions{Queue: "q"}); l != nil {
		t.Fatal("claimed from a paused queue")
	}
	if st := b.stats(t, "q"); !st.Paused || st.Ready != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := b.store.Resume(b.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if l := b.claim(t, ClaimOptions{Queue: "q"}); l == nil {
		t.Fatal("nothing claimed after resume")
	}
}

func TestAgingLetsLowPriorityMove(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("old-low"), Priority: 0})
	claimNext := func() string {
		t.Helper()
		// High priority traffic never stops: one new urgent message per claim.
		b.enqueue(t, NewMessage{Queue: "q", Body: []byte("urgent"), Priority: 2})
		l := b.claim(t, ClaimOptions{Queue: "q", Max: 1, Aging: time.Minute})
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
	// Two rank steps put the old message level with the urgent band, and
	// being older it goes first; without aging it would wait forever.
	b.clock.Advance(time.Minute)
	claimNext()
	b.clock.Advance(time.Minute)
	if got := claimNext(); got != "old-low" {
		t.Fatalf("after two aging intervals got %q, want old-low", got)
	}
}

func TestLeaseByToken(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ids := b.enqueue(t, msg("q", `{"n":1}`), msg("q", `{"n":2}`))
	lease := b.claim(t, ClaimOptions{Queue: "q", Consumer: "fanout"})
	loaded, err := b.store.LeaseByToken(b.ctx, lease.Token)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ID != lease.ID || loaded.Queue != lease.Queue || !slices.Equal(loaded.IDs(), ids) || string(loaded.Messages[1].Body) != `{"n":2}` {
		t.Fatalf("loaded %+v", loaded)
	}
	if err := b.store.Ack(b.ctx, loaded); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.LeaseByToken(b.ctx, lease.Token); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("finished lease: %v, want ErrLeaseLost", err)
	}
	for _, bad := range []string{"", "abc", "x.y", "0", "-3"} {
		if _, err := b.store.LeaseByToken(b.ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("token %q: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := b.store.LeaseByToken(b.ctx, fmt.Sprint(lease.ID+1)); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("mistyped token: %v, want ErrLeaseLost", err)
	}
}
