package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// Leases and fencing: expiry, takeovers, finishes by id, heartbeats, nack
// backoff and dead letters, release.

func init() {
	add("ExpiredLeaseIsClaimedAgainAndOldLeaseIsLost", testExpiredLeaseClaimedAgain)
	add("AckOfExpiredButUnclaimedLeaseSucceeds", testAckOfExpiredUnclaimed)
	add("ExtendRevivesAnExpiredUnclaimedLease", testExtendRevives)
	add("ExtendRevivesUnderTheLimit", testExtendRevivesUnderLimit)
	add("LimitSetMidBatchFreesTheSlotOnFinish", testLimitSetMidBatch)
	add("PartLostLeaseIsNoticedAndTheRestFinished", testPartLostLease)
	add("PartialAckAndNackInOneLease", testPartialAckAndNack)
	add("NackBackoffThenDeadLetterThenRedrive", testNackBackoffDeadRedrive)
	add("NackUsesTheStoreBackoffAndMaxAttempts", testNackStoreOptions)
	add("NackOptions", testNackOptions)
	add("ExtendKeepsTheLease", testExtendKeepsTheLease)
	add("ReleaseDoesNotSpendAnAttempt", testReleaseKeepsTheAttempt)
	add("LeaseByToken", testLeaseByToken)
	add("FinishValidation", testFinishValidation)
}

func testExpiredLeaseClaimedAgain(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, msg("q", "m"))
	first := b.claim(t, co{Queue: "q", Lease: 10 * time.Second})
	if first.Messages[0].Attempt != 1 {
		t.Fatalf("attempt %d, want 1", first.Messages[0].Attempt)
	}
	if want := b.clock.Now().Add(10 * time.Second); !first.ExpiresAt.Equal(want) || !first.Messages[0].VisibleAt.Equal(want) {
		t.Fatalf("lease ends %s (message visible at %s), want %s", first.ExpiresAt, first.Messages[0].VisibleAt, want)
	}
	if first.Messages[0].State != queuestore.StateInFlight || first.Queue != "q" {
		t.Fatalf("claimed message %+v", first.Messages[0])
	}
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatal("a held message was claimed twice")
	}
	if st := b.stats(t, "q"); st.InFlight != 1 || st.Leases != 1 {
		t.Fatalf("stats %+v, want 1 in flight under 1 lease", st)
	}
	b.clock.Advance(10*time.Second - time.Millisecond)
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatal("claimed a millisecond before the lease ended")
	}
	b.clock.Advance(time.Millisecond)
	second := b.claim(t, co{Queue: "q"})
	if second == nil || second.Messages[0].Attempt != 2 || second.ID <= first.ID {
		t.Fatalf("second claim %+v, want attempt 2 under a larger fencing token", second)
	}
	for name, finish := range map[string]func() error{
		"ack":     func() error { return b.store.Ack(b.ctx, first) },
		"nack":    func() error { _, err := b.store.Nack(b.ctx, first, queuestore.NackOptions{}); return err },
		"extend":  func() error { return b.store.Extend(b.ctx, first, time.Minute) },
		"release": func() error { return b.store.Release(b.ctx, first) },
	} {
		err := finish()
		var lost *queuestore.LostError
		if !errors.Is(err, queuestore.ErrLeaseLost) || !errors.As(err, &lost) || !slices.Equal(lost.IDs, first.IDs()) {
			t.Errorf("%s under the lost lease: %v, want a LostError naming %v", name, err, first.IDs())
		}
	}
	if st := b.stats(t, "q"); st.InFlight != 1 {
		t.Fatalf("a lost lease changed something: %+v", st)
	}
	if _, err := b.store.LeaseByToken(b.ctx, first.Token); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Fatalf("the lost lease by token: %v, want ErrLeaseLost", err)
	}
	if err := b.store.Ack(b.ctx, second); err != nil {
		t.Fatal(err)
	}
	m := b.metrics(t, "q")
	if m.Settled[queuestore.OutcomeExpired] != 1 || m.Claimed != 2 || m.Settled[queuestore.OutcomeAcked] != 1 {
		t.Fatalf("metrics %+v, want 2 claims, 1 expired, 1 acked", m)
	}
}

func testAckOfExpiredUnclaimed(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, msg("q", "m"), msg("q", "other"))
	lease := b.claim(t, co{Queue: "q", Lease: time.Second, Max: 1})
	b.clock.Advance(time.Minute)
	// A claim of something else moves the expired message into the ready
	// set on the way.
	b.claim(t, co{Queue: "q", Group: "none-such"})
	if err := b.store.Ack(b.ctx, lease); err != nil {
		t.Fatalf("nobody took the message over, the ack should hold: %v", err)
	}
	if st := b.stats(t, "q"); st.Ready != 1 || st.InFlight != 0 || st.Leases != 0 {
		t.Fatalf("stats %+v, want the other message ready and nothing else", st)
	}
}

// A heartbeat after the lease ran out keeps the messages no other claim
// took, even ones a claim already moved into the ready set.
func testExtendRevives(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, msg("q", "m"))
	lease := b.claim(t, co{Queue: "q", Lease: time.Second})
	b.clock.Advance(2 * time.Second)
	if st := b.stats(t, "q"); st.Ready != 1 || st.InFlight != 0 {
		t.Fatalf("stats after the lease ran out %+v, want 1 ready", st)
	}
	b.claim(t, co{Queue: "q", Group: "none-such"}) // moves it into the ready set
	if l, err := b.store.LeaseByToken(b.ctx, lease.Token); err != nil || !slices.Equal(l.IDs(), lease.IDs()) {
		t.Fatalf("the lease by token once its message was moved: %+v %v, want its message", l, err)
	}
	if err := b.store.Extend(b.ctx, lease, time.Minute); err != nil {
		t.Fatalf("extend of an expired lease nobody took: %v", err)
	}
	if st := b.stats(t, "q"); st.Ready != 0 || st.InFlight != 1 || st.Leases != 1 {
		t.Fatalf("stats after the extend %+v, want 1 in flight under 1 lease", st)
	}
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatalf("claimed a message under a revived lease: %+v", l)
	}
	if err := b.store.Ack(b.ctx, lease); err != nil {
		t.Fatal(err)
	}
}

// A lease that ran out counts against the queue's in-flight limit again
// once a heartbeat takes its messages back, also after a finish of part of
// it found nothing of it in flight.
func testExtendRevivesUnderLimit(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	if err := b.store.SetLimit(b.ctx, "q", 1); err != nil {
		t.Fatal(err)
	}
	ids := b.enqueue(t, msg("q", "a"), msg("q", "b"))
	lease := b.claim(t, co{Queue: "q", Max: 2, Lease: time.Second})
	b.clock.Advance(2 * time.Second)
	if err := b.store.Ack(b.ctx, lease, ids[0]); err != nil {
		t.Fatalf("ack of part of an expired lease nobody took: %v", err)
	}
	if err := b.store.Extend(b.ctx, lease, time.Minute, ids[1]); err != nil {
		t.Fatalf("extend of the rest: %v", err)
	}
	b.enqueue(t, msg("q", "c"))
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatalf("a second lease under limit 1 beside a revived one: %+v", l)
	}
	if st := b.stats(t, "q"); st.InFlight != 1 || st.Leases != 1 {
		t.Fatalf("stats %+v, want 1 in flight under 1 lease", st)
	}
	if err := b.store.Ack(b.ctx, lease, ids[1]); err != nil {
		t.Fatal(err)
	}
	if l := b.claim(t, co{Queue: "q"}); l == nil {
		t.Fatal("the limit's slot stayed taken after the revived lease was acked")
	}
}

// A lease claimed before its queue got an in-flight limit, then extended,
// takes no slot once it is finished (ack, nack or release): the next claim
// under the limit gets one.
func testLimitSetMidBatch(t *testing.T, s *suite) {
	finishes := map[string]func(b *bundle, l *queuestore.Lease) error{
		"ack": func(b *bundle, l *queuestore.Lease) error { return b.store.Ack(b.ctx, l) },
		"nack": func(b *bundle, l *queuestore.Lease) error {
			_, err := b.store.Nack(b.ctx, l, queuestore.NackOptions{Delay: -1})
			return err
		},
		"release": func(b *bundle, l *queuestore.Lease) error { return b.store.Release(b.ctx, l) },
	}
	for name, finish := range finishes {
		t.Run(name, func(t *testing.T) {
			b := s.setup(t, queuestore.Options{})
			b.enqueue(t, msg("q", "a"))
			lease := b.claim(t, co{Queue: "q", Lease: time.Minute})
			if err := b.store.SetLimit(b.ctx, "q", 1); err != nil {
				t.Fatal(err)
			}
			if err := b.store.Extend(b.ctx, lease, 10*time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := finish(b, lease); err != nil {
				t.Fatal(err)
			}
			if st := b.stats(t, "q"); st.InFlight != 0 || st.Leases != 0 {
				t.Fatalf("stats after the %s: %+v, want nothing in flight and no lease", name, st)
			}
			b.enqueue(t, msg("q", "b"))
			if l := b.claim(t, co{Queue: "q"}); l == nil {
				t.Fatalf("the limit's slot stayed taken after the %s of a lease claimed before the limit", name)
			}
		})
	}
}

// When another claim takes some, not all, of a lease's messages after it
// expired, extend sees it at once, and ack, nack and release finish what the
// lease still holds and name what it does not.
func testPartLostLease(t *testing.T, s *suite) {
	for _, finish := range []string{"ack", "nack", "release"} {
		t.Run(finish, func(t *testing.T) {
			b := s.setup(t, queuestore.Options{})
			ids := b.enqueue(t, msg("q", "a"), msg("q", "b"), msg("q", "c"))
			first := b.claim(t, co{Queue: "q", Lease: 10 * time.Second})
			b.clock.Advance(11 * time.Second)
			taken := b.claim(t, co{Queue: "q", Max: 1})
			if taken == nil || taken.Messages[0].ID != ids[0] || taken.ID <= first.ID {
				t.Fatalf("takeover claim %+v, want message %d under a larger token", taken, ids[0])
			}
			var lost *queuestore.LostError
			err := b.store.Extend(b.ctx, first, time.Minute)
			if !errors.As(err, &lost) || !errors.Is(err, queuestore.ErrLeaseLost) || !slices.Equal(lost.IDs, ids[:1]) || lost.Lease != first.Token {
				t.Fatalf("extend after a part takeover: %v, want a LostError naming %d", err, ids[0])
			}
			switch finish {
			case "ack":
				err = b.store.Ack(b.ctx, first)
			case "nack":
				var res queuestore.NackResult
				res, err = b.store.Nack(b.ctx, first, queuestore.NackOptions{Error: "boom"})
				if !slices.Equal(res.Retried, ids[1:]) {
					t.Errorf("nack result %+v, want the 2 held messages retried", res)
				}
			case "release":
				err = b.store.Release(b.ctx, first)
			}
			if !errors.As(err, &lost) || !slices.Equal(lost.IDs, ids[:1]) {
				t.Fatalf("%s: %v, want a LostError naming only %d", finish, err, ids[0])
			}
			if st := b.stats(t, "q"); st.InFlight != 1 || st.Leases != 1 {
				t.Fatalf("%s: stats %+v, want only the taken message in flight, under the new lease", finish, st)
			}
			if err := b.store.Ack(b.ctx, taken); err != nil {
				t.Fatalf("the new holder's ack: %v", err)
			}
		})
	}
}

func testPartialAckAndNack(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	ids := b.enqueue(t, msg("q", "1"), msg("q", "2"), msg("q", "3"))
	lease := b.claim(t, co{Queue: "q"})
	if err := b.store.Ack(b.ctx, lease, ids[0], ids[2]); err != nil {
		t.Fatal(err)
	}
	if st := b.stats(t, "q"); st.InFlight != 1 || st.Leases != 1 {
		t.Fatalf("stats %+v, want 1 in flight: the lease holds the rest", st)
	}
	if err := b.store.Ack(b.ctx, lease, ids[0]); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Fatalf("second ack of one message: %v, want ErrLeaseLost", err)
	}
	res, err := b.store.Nack(b.ctx, lease, queuestore.NackOptions{IDs: []int64{ids[1]}, Error: "boom"})
	if err != nil || !slices.Equal(res.Retried, []int64{ids[1]}) {
		t.Fatalf("nack: %+v %v", res, err)
	}
	if st := b.stats(t, "q"); st.Delayed != 1 || st.Leases != 0 {
		t.Fatalf("stats %+v, want the nacked message delayed and the finished lease gone", st)
	}
	if _, err := b.store.LeaseByToken(b.ctx, lease.Token); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Fatalf("finished lease by token: %v, want ErrLeaseLost", err)
	}
}

func testNackBackoffDeadRedrive(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, nm{Queue: "q", Body: []byte("poison"), MaxAttempts: 3})
	var lease *queuestore.Lease
	for attempt := 1; attempt <= 3; attempt++ {
		lease = b.claim(t, co{Queue: "q"})
		if lease == nil || lease.Messages[0].Attempt != attempt || lease.Messages[0].MaxAttempts != 3 {
			t.Fatalf("attempt %d: lease %+v", attempt, lease)
		}
		res, err := b.store.Nack(b.ctx, lease, queuestore.NackOptions{Error: "handler exited 1"})
		if err != nil {
			t.Fatal(err)
		}
		if attempt < 3 {
			if len(res.Retried) != 1 || len(res.Dead) != 0 {
				t.Fatalf("attempt %d: %+v, want a retry", attempt, res)
			}
			// The test backoff waits attempt seconds: not ready a moment before.
			b.clock.Advance(time.Duration(attempt)*time.Second - time.Millisecond)
			if l := b.claim(t, co{Queue: "q"}); l != nil {
				t.Fatalf("attempt %d: retried before its backoff", attempt)
			}
			if st := b.stats(t, "q"); st.Delayed != 1 {
				t.Fatalf("attempt %d: stats %+v, want 1 delayed", attempt, st)
			}
			b.clock.Advance(time.Millisecond)
		} else if len(res.Dead) != 1 || len(res.Retried) != 0 {
			t.Fatalf("last attempt: %+v, want dead", res)
		}
	}
	if st := b.stats(t, "q"); st.Dead != 1 || st.Ready+st.Delayed+st.InFlight != 0 || st.Leases != 0 {
		t.Fatalf("stats %+v, want 1 dead only", st)
	}
	dead, err := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{State: queuestore.StateDead})
	if err != nil || len(dead) != 1 || dead[0].LastError != "handler exited 1" || dead[0].Attempt != 3 ||
		string(dead[0].Body) != "poison" || dead[0].State != queuestore.StateDead || !dead[0].VisibleAt.Equal(b.clock.Now()) {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatal("claimed a dead letter")
	}
	if n, err := b.store.Redrive(b.ctx, "q"); err != nil || n != 1 {
		t.Fatalf("redrive: %d %v", n, err)
	}
	again := b.claim(t, co{Queue: "q"})
	if again == nil || again.Messages[0].Attempt != 1 {
		t.Fatalf("redriven message: %+v, want attempt 1 again", again)
	}
	m := b.metrics(t, "q")
	if m.Settled[queuestore.OutcomeRetried] != 2 || m.Settled[queuestore.OutcomeDead] != 1 || m.Redriven != 1 || m.Claimed != 4 {
		t.Fatalf("metrics %+v, want 2 retried, 1 dead, 1 redriven, 4 claims", m)
	}
}

// A message enqueued without its own max attempts takes the store's, and a
// nack without a delay takes the store's backoff for the attempt.
func testNackStoreOptions(t *testing.T, s *suite) {
	var asked []int
	b := s.setup(t, queuestore.Options{MaxAttempts: 2, Backoff: func(attempt int) time.Duration {
		asked = append(asked, attempt)
		return time.Minute
	}})
	b.enqueue(t, msg("q", "m"))
	l := b.claim(t, co{Queue: "q"})
	if l.Messages[0].MaxAttempts != 2 {
		t.Fatalf("max attempts %d, want the store's 2", l.Messages[0].MaxAttempts)
	}
	if res, err := b.store.Nack(b.ctx, l, queuestore.NackOptions{}); err != nil || len(res.Retried) != 1 {
		t.Fatalf("nack: %+v %v", res, err)
	}
	if !slices.Equal(asked, []int{1}) {
		t.Fatalf("backoff asked for attempts %v, want [1]", asked)
	}
	delayed, err := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{State: queuestore.StateDelayed})
	if err != nil || len(delayed) != 1 || !delayed[0].VisibleAt.Equal(b.clock.Now().Add(time.Minute)) {
		t.Fatalf("delayed %+v %v, want visible a minute from now", delayed, err)
	}
	b.clock.Advance(time.Minute)
	l = b.claim(t, co{Queue: "q"})
	if res, err := b.store.Nack(b.ctx, l, queuestore.NackOptions{}); err != nil || len(res.Dead) != 1 {
		t.Fatalf("second nack: %+v %v, want dead", res, err)
	}
}

func testNackOptions(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, msg("q", "a"), msg("q", "b"))
	lease := b.claim(t, co{Queue: "q", Max: 1})
	if _, err := b.store.Nack(b.ctx, lease, queuestore.NackOptions{Delay: -1}); err != nil {
		t.Fatal(err)
	}
	if st := b.stats(t, "q"); st.Ready != 2 {
		t.Fatalf("negative delay should retry at once: %+v", st)
	}
	lease = b.claim(t, co{Queue: "q", Max: 2})
	// "a" is on its second attempt, "b" on its first.
	res, err := b.store.Nack(b.ctx, lease, queuestore.NackOptions{MaxAttempts: 2, Delay: time.Hour})
	if err != nil || len(res.Dead) != 1 || len(res.Retried) != 1 {
		t.Fatalf("max attempts override: %+v %v, want one dead and one retried", res, err)
	}
	dead, _ := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{State: queuestore.StateDead})
	if len(dead) != 1 || string(dead[0].Body) != "a" || dead[0].MaxAttempts != 2 {
		t.Fatalf("dead %+v, want a with the limit that applied", dead)
	}
	delayed, _ := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{State: queuestore.StateDelayed})
	if len(delayed) != 1 || string(delayed[0].Body) != "b" || !delayed[0].VisibleAt.Equal(b.clock.Now().Add(time.Hour)) || delayed[0].MaxAttempts != 2 {
		t.Fatalf("delayed %+v, want b in an hour", delayed)
	}
}

func testExtendKeepsTheLease(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	ids := b.enqueue(t, msg("q", "m"), msg("q", "n"))
	lease := b.claim(t, co{Queue: "q", Lease: 10 * time.Second})
	b.clock.Advance(8 * time.Second)
	if err := b.store.Extend(b.ctx, lease, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if want := b.clock.Now().Add(10 * time.Second); !lease.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt %s, want %s", lease.ExpiresAt, want)
	}
	b.clock.Advance(8 * time.Second)
	if l := b.claim(t, co{Queue: "q"}); l != nil {
		t.Fatal("claimed a message under an extended lease")
	}
	// Extending some messages only: the others run out.
	if err := b.store.Extend(b.ctx, lease, 10*time.Second, ids[1]); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(5 * time.Second)
	if l := b.claim(t, co{Queue: "q"}); l == nil || !slices.Equal(l.IDs(), ids[:1]) {
		t.Fatalf("claim after a partial extend: %+v, want message %d", l, ids[0])
	}
	if err := b.store.Extend(b.ctx, lease, 0); !errors.Is(err, queuestore.ErrInvalid) {
		t.Fatalf("zero extension: %v", err)
	}
	if err := b.store.Extend(b.ctx, nil, time.Second); !errors.Is(err, queuestore.ErrInvalid) {
		t.Fatalf("extension of no lease: %v", err)
	}
}

func testReleaseKeepsTheAttempt(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, msg("q", "m"))
	lease := b.claim(t, co{Queue: "q"})
	if err := b.store.Release(b.ctx, lease); err != nil {
		t.Fatal(err)
	}
	if st := b.stats(t, "q"); st.Ready != 1 || st.InFlight != 0 || st.Leases != 0 {
		t.Fatalf("stats after release %+v, want 1 ready and no lease", st)
	}
	again := b.claim(t, co{Queue: "q"})
	if again == nil || again.Messages[0].Attempt != 1 {
		t.Fatalf("after release: %+v, want attempt 1 again", again)
	}
	if m := b.metrics(t, "q"); m.Settled[queuestore.OutcomeReleased] != 1 {
		t.Fatalf("metrics %+v, want 1 released", m)
	}
}

func testLeaseByToken(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	ids := b.enqueue(t, nm{Queue: "q", Body: []byte(`{"n":1}`), Group: "g", DedupeKey: "k1"}, msg("q", `{"n":2}`))
	lease := b.claim(t, co{Queue: "q", Consumer: "fanout"})
	loaded, err := b.store.LeaseByToken(b.ctx, lease.Token)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ID != lease.ID || loaded.Queue != "q" || !slices.Equal(loaded.IDs(), ids) ||
		string(loaded.Messages[1].Body) != `{"n":2}` || !loaded.ExpiresAt.Equal(lease.ExpiresAt) {
		t.Fatalf("loaded %+v, want %+v", loaded, lease)
	}
	if m := loaded.Messages[0]; m.Group != "g" || m.DedupeKey != "k1" || m.Attempt != 1 || m.State != queuestore.StateInFlight {
		t.Fatalf("loaded message %+v", m)
	}
	if err := b.store.Ack(b.ctx, loaded); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.LeaseByToken(b.ctx, lease.Token); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Fatalf("finished lease: %v, want ErrLeaseLost", err)
	}
	for _, bad := range []string{"", "abc", "x.y", "-5", "0"} {
		if _, err := b.store.LeaseByToken(b.ctx, bad); !errors.Is(err, queuestore.ErrInvalid) {
			t.Errorf("token %q: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := b.store.LeaseByToken(b.ctx, "987654321987"); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Errorf("a token no claim printed: %v, want ErrLeaseLost", err)
	}
	// A token of schema 1 ("id.secret") names the lease by its id.
	b.enqueue(t, msg("q", "m"))
	live := b.claim(t, co{Queue: "q"})
	if l, err := b.store.LeaseByToken(b.ctx, fmt.Sprintf("%d.9f86d081884c7d65", live.ID)); err != nil || l.ID != live.ID {
		t.Errorf("an id.secret token: %+v %v, want the live lease", l, err)
	}
}

func testFinishValidation(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	ids := b.enqueue(t, msg("q", "1"), msg("q", "2"))
	lease := b.claim(t, co{Queue: "q"})
	calls := map[string]func(ids ...int64) error{
		"ack": func(ids ...int64) error { return b.store.Ack(b.ctx, lease, ids...) },
		"nack": func(ids ...int64) error {
			_, err := b.store.Nack(b.ctx, lease, queuestore.NackOptions{IDs: ids})
			return err
		},
		"extend":  func(ids ...int64) error { return b.store.Extend(b.ctx, lease, time.Second, ids...) },
		"release": func(ids ...int64) error { return b.store.Release(b.ctx, lease, ids...) },
	}
	for name, call := range calls {
		if err := call(12345); !errors.Is(err, queuestore.ErrInvalid) {
			t.Errorf("%s of an id outside the lease: %v, want ErrInvalid", name, err)
		}
		if err := call(ids[0], ids[0]); !errors.Is(err, queuestore.ErrInvalid) {
			t.Errorf("%s naming one id twice: %v, want ErrInvalid", name, err)
		}
	}
	if err := b.store.Ack(b.ctx, nil); !errors.Is(err, queuestore.ErrInvalid) {
		t.Errorf("ack of no lease: %v, want ErrInvalid", err)
	}
	if st := b.stats(t, "q"); st.InFlight != 2 {
		t.Fatalf("refused finishes changed something: %+v", st)
	}
}
