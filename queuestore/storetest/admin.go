package storetest

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// Enqueue, dedupe, stats, peek, dead letters, purges, kept counts,
// metrics and history.

func init() {
	add("EnqueueAllOrNothing", testEnqueueAllOrNothing)
	add("EnqueueRejectsBadMessages", testEnqueueRejectsBad)
	add("EnqueueDedupe", testEnqueueDedupe)
	add("EnqueueDedupeWithRetainedAcks", testEnqueueDedupeRetained)
	add("EnqueueBulkKeepsOrderAndIDs", testEnqueueBulk)
	add("EnqueueKeepsWhatItWasGiven", testEnqueueKeeps)
	add("StatsCountsEveryState", testStatsEveryState)
	add("PeekDoesNotLease", testPeekDoesNotLease)
	add("PeekNamesTheDaguRuns", testPeekNamesTheDaguRuns)
	add("DeadLettersRedriveAndPurge", testDeadLettersRedrivePurge)
	add("PurgeQueue", testPurgeQueue)
	add("AckRetentionPurgesOldAcks", testAckRetention)
	add("AdminRejectsBadQueueNames", testAdminRejectsBadNames)
	add("MetricsCountEveryOutcome", testMetrics)
	add("History", testHistory)
	add("KeptCountsMatchTheRows", testKeptCountsMatchRows)
}

func testEnqueueAllOrNothing(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	_, err := b.store.Enqueue(b.ctx, msg("q", "1"), msg("q", "2"), msg("bad queue", "3"))
	if !errors.Is(err, queuestore.ErrInvalid) || !strings.Contains(err.Error(), "message 2") {
		t.Fatalf("error %v, want ErrInvalid naming message 2", err)
	}
	if st := b.stats(t, "q"); st.Ready != 0 {
		t.Fatalf("ready = %d after a failed bulk, want 0", st.Ready)
	}
	res, err := b.store.Enqueue(b.ctx)
	if err != nil || res.Enqueued != 0 || len(res.IDs) != 0 {
		t.Fatalf("empty enqueue: %+v %v", res, err)
	}
}

func testEnqueueRejectsBad(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	tests := []struct {
		name string
		msg  nm
		text string
	}{
		{"empty queue", nm{}, "queue name"},
		{"queue with slash", nm{Queue: "a/b"}, "queue name"},
		{"negative max attempts", nm{Queue: "q", MaxAttempts: -1}, "max_attempts"},
		{"huge dedupe key", nm{Queue: "q", DedupeKey: strings.Repeat("k", 2000)}, "dedupe key"},
		{"huge group", nm{Queue: "q", Group: strings.Repeat("g", 2000)}, "group"},
		{"priority too high", nm{Queue: "q", Priority: queuestore.MaxPriority + 1}, "priority"},
		{"priority too low", nm{Queue: "q", Priority: queuestore.MinPriority - 1}, "priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.store.Enqueue(b.ctx, tt.msg)
			if !errors.Is(err, queuestore.ErrInvalid) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %v, want ErrInvalid mentioning %q", err, tt.text)
			}
		})
	}
}

func testEnqueueDedupe(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{MaxAttempts: 1})
	withKey := func(body, key string) nm { return nm{Queue: "q", Body: []byte(body), DedupeKey: key} }
	res, err := b.store.Enqueue(b.ctx, withKey("a", "k1"), withKey("b", "k1"), withKey("c", "k2"), msg("q", "no key"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Enqueued != 3 || res.Duplicates != 1 || res.IDs[1] != 0 || res.IDs[0] == 0 || res.IDs[3] == 0 {
		t.Fatalf("result %+v, want 3 enqueued, the second skipped", res)
	}
	// The same key in another queue is another message.
	if res, _ := b.store.Enqueue(b.ctx, nm{Queue: "other", DedupeKey: "k1"}); res.Enqueued != 1 {
		t.Fatalf("other queue: %+v", res)
	}
	// While k1 is in flight, delayed or dead it still blocks; once acked it
	// is free again.
	lease := b.claim(t, co{Queue: "q", Max: 1})
	if res, _ := b.store.Enqueue(b.ctx, withKey("d", "k1")); res.Duplicates != 1 {
		t.Fatalf("in flight: %+v, want a duplicate", res)
	}
	if err := b.store.Ack(b.ctx, lease); err != nil {
		t.Fatal(err)
	}
	if res, _ := b.store.Enqueue(b.ctx, withKey("e", "k1")); res.Enqueued != 1 {
		t.Fatalf("after ack: %+v, want enqueued", res)
	}
	b.enqueue(t, nm{Queue: "q", DedupeKey: "later", NotBefore: b.clock.Now().Add(time.Hour)})
	if res, _ := b.store.Enqueue(b.ctx, withKey("f", "later")); res.Duplicates != 1 {
		t.Fatalf("delayed: %+v, want a duplicate", res)
	}
	if st := b.stats(t, "q"); st.Ready != 3 {
		t.Fatalf("stats %+v, want duplicates not counted", st)
	}
	l := b.claim(t, co{Queue: "q", Max: 10})
	if _, err := b.store.Nack(b.ctx, l, queuestore.NackOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, _ := b.store.Enqueue(b.ctx, withKey("g", "k2")); res.Duplicates != 1 {
		t.Fatalf("dead: %+v, want a duplicate", res)
	}
	if m := b.metrics(t, "q"); m.Enqueued != 5 {
		t.Fatalf("metrics %+v, want 5 enqueued: duplicates are not counted", m)
	}
}

func testEnqueueDedupeRetained(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{AckRetention: time.Hour})
	b.enqueue(t, nm{Queue: "q", DedupeKey: "k"})
	if err := b.store.Ack(b.ctx, b.claim(t, co{Queue: "q"})); err != nil {
		t.Fatal(err)
	}
	if res, _ := b.store.Enqueue(b.ctx, nm{Queue: "q", DedupeKey: "k"}); res.Enqueued != 1 {
		t.Fatalf("a retained ack must not block its key: %+v", res)
	}
	if st := b.stats(t, "q"); st.Acked != 1 || st.Ready != 1 {
		t.Fatalf("stats %+v, want 1 acked and 1 ready", st)
	}
}

func testEnqueueBulk(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	var msgs []nm
	for i := range 2500 {
		m := msg("bulk", strings.Repeat("x", i%7))
		if i%10 == 0 {
			m.DedupeKey = "k" + strings.Repeat("x", i%3) // a few keys: most of these are duplicates
		}
		msgs = append(msgs, m)
	}
	res, err := b.store.Enqueue(b.ctx, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Enqueued != 2500-250+3 || res.Duplicates != 250-3 {
		t.Fatalf("result: %d enqueued, %d duplicates; want %d and %d", res.Enqueued, res.Duplicates, 2500-250+3, 250-3)
	}
	var ids []int64
	for i, id := range res.IDs {
		if (id == 0) != (i%10 == 0 && i >= 30) {
			t.Fatalf("id of message %d: %d", i, id)
		}
		if id != 0 {
			ids = append(ids, id)
		}
	}
	if !slices.IsSorted(ids) || slices.Contains(ids, 0) {
		t.Fatalf("ids not increasing in input order: %v...", ids[:5])
	}
	lease := b.claim(t, co{Queue: "bulk", Max: queuestore.MaxClaim})
	if !slices.Equal(lease.IDs(), ids) {
		t.Fatal("claim order differs from enqueue order for equal priorities")
	}
	input := map[int64]int{}
	for i, id := range res.IDs {
		input[id] = i
	}
	for _, m := range lease.Messages {
		if len(m.Body) != input[m.ID]%7 {
			t.Fatalf("message %d (input %d) has a body of %d bytes, want %d", m.ID, input[m.ID], len(m.Body), input[m.ID]%7)
		}
	}
}

// A message keeps what it was enqueued with: body bytes, priority, group,
// dedupe key, max attempts, enqueue time; an empty body is empty, not nil.
func testEnqueueKeeps(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i)
	}
	enqueuedAt := b.clock.Now()
	b.enqueue(t, nm{Queue: "q.x-1_2", Body: body, Priority: -7, Group: "g", DedupeKey: "d", MaxAttempts: 9}, nm{Queue: "q.x-1_2"})
	b.clock.Advance(time.Second)
	l := b.claim(t, co{Queue: "q.x-1_2", Consumer: "c1"})
	if l == nil || len(l.Messages) != 2 || l.Consumer != "c1" {
		t.Fatalf("lease %+v", l)
	}
	m := l.Messages[1] // priority -7 goes after the default 0
	if string(m.Body) != string(body) || m.Priority != -7 || m.Group != "g" || m.DedupeKey != "d" || m.MaxAttempts != 9 ||
		!m.EnqueuedAt.Equal(enqueuedAt) || m.Queue != "q.x-1_2" {
		t.Fatalf("message %+v", m)
	}
	if e := l.Messages[0]; e.Body == nil || len(e.Body) != 0 {
		t.Fatalf("empty body came back as %#v", e.Body)
	}
}

func testStatsEveryState(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{AckRetention: time.Hour})
	now := b.clock.Now()
	b.enqueue(t,
		nm{Queue: "q", Body: []byte("ready-1")},
		nm{Queue: "q", Body: []byte("ready-2")},
		nm{Queue: "q", Body: []byte("to-ack")},
		nm{Queue: "q", Body: []byte("to-kill"), MaxAttempts: 1},
		nm{Queue: "q", Body: []byte("delayed"), NotBefore: now.Add(time.Hour)},
	)
	b.clock.Advance(30 * time.Second)
	lease := b.claim(t, co{Queue: "q", Max: 4})
	ids := lease.IDs()
	if err := b.store.Ack(b.ctx, lease, ids[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Nack(b.ctx, lease, queuestore.NackOptions{IDs: []int64{ids[3]}}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Release(b.ctx, lease, ids[1]); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(5 * time.Second)
	got := b.stats(t, "q")
	want := queuestore.Stats{Queue: "q", Ready: 1, Delayed: 1, InFlight: 1, Dead: 1, Acked: 1, Leases: 1, OldestReadyAge: 5 * time.Second}
	if got != want {
		t.Fatalf("stats\n got %+v\nwant %+v", got, want)
	}
	if err := b.store.Pause(b.ctx, "other"); err != nil {
		t.Fatal(err)
	}
	names, err := b.store.Queues(b.ctx)
	if err != nil || !slices.Equal(names, []string{"other", "q"}) {
		t.Fatalf("queues %v %v, want [other q]", names, err)
	}
	if st := b.stats(t, "never-used"); st != (queuestore.Stats{Queue: "never-used"}) {
		t.Fatalf("stats of an unknown queue: %+v", st)
	}
}

func testPeekDoesNotLease(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, nm{Queue: "q", Body: []byte("a")}, nm{Queue: "q", Body: []byte("b"), Priority: 1},
		nm{Queue: "q", Body: []byte("later"), NotBefore: b.clock.Now().Add(time.Minute)})
	ready, err := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{})
	if err != nil || len(ready) != 2 || string(ready[0].Body) != "b" || ready[0].State != queuestore.StateReady {
		t.Fatalf("peek ready: %+v %v", ready, err)
	}
	delayed, err := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{State: queuestore.StateDelayed, Limit: 5})
	if err != nil || len(delayed) != 1 || string(delayed[0].Body) != "later" {
		t.Fatalf("peek delayed: %+v %v", delayed, err)
	}
	one, err := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{Limit: 1})
	if err != nil || len(one) != 1 {
		t.Fatalf("peek limit 1: %+v %v", one, err)
	}
	l := b.claim(t, co{Queue: "q", Lease: time.Hour})
	if l == nil || len(l.Messages) != 2 {
		t.Fatal("peek leased something")
	}
	inFlight, err := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{State: queuestore.StateInFlight})
	if err != nil || len(inFlight) != 3 {
		t.Fatalf("peek in flight (with delayed): %+v %v", inFlight, err)
	}
	// A due message not yet moved into the ready set peeks as ready.
	b.clock.Advance(time.Minute)
	ready, err = b.store.Peek(b.ctx, "q", queuestore.PeekOptions{})
	if err != nil || len(ready) != 1 || string(ready[0].Body) != "later" {
		t.Fatalf("peek ready after the delay: %+v %v", ready, err)
	}
	for _, bad := range []queuestore.PeekOptions{{State: "gone"}, {Limit: -1}, {Limit: queuestore.MaxClaim + 1}} {
		if _, err := b.store.Peek(b.ctx, "q", bad); !errors.Is(err, queuestore.ErrInvalid) {
			t.Errorf("peek %+v: %v, want ErrInvalid", bad, err)
		}
	}
}

func testDeadLettersRedrivePurge(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	for range 3 {
		b.enqueue(t, nm{Queue: "q", Body: []byte("poison"), MaxAttempts: 1})
	}
	lease := b.claim(t, co{Queue: "q"})
	if res, err := b.store.Nack(b.ctx, lease, queuestore.NackOptions{Error: "bad"}); err != nil || len(res.Dead) != 3 {
		t.Fatalf("nack: %+v %v", res, err)
	}
	ids := lease.IDs()
	n, err := b.store.Redrive(b.ctx, "q", ids[0])
	if err != nil || n != 1 {
		t.Fatalf("redrive one: %d %v", n, err)
	}
	again := b.claim(t, co{Queue: "q"})
	if again == nil || again.Messages[0].ID != ids[0] || again.Messages[0].Attempt != 1 {
		t.Fatalf("redriven message: %+v, want attempt 1 again", again)
	}
	if n, err := b.store.PurgeDead(b.ctx, "q", ids[1]); err != nil || n != 1 {
		t.Fatalf("purge one dead: %d %v", n, err)
	}
	if n, err := b.store.PurgeDead(b.ctx, "q", ids[0]); err != nil || n != 0 {
		t.Fatalf("purge dead of a message that is not dead: %d %v, want 0", n, err)
	}
	if n, err := b.store.Redrive(b.ctx, "q"); err != nil || n != 1 {
		t.Fatalf("redrive all: %d %v", n, err)
	}
	if n, err := b.store.PurgeDead(b.ctx, "q"); err != nil || n != 0 {
		t.Fatalf("purge dead with none left: %d %v", n, err)
	}
	if st := b.stats(t, "q"); st.Ready != 1 || st.InFlight != 1 || st.Dead != 0 {
		t.Fatalf("stats %+v", st)
	}
	if r := b.rows(t, "q"); r.Bodies != 2 {
		t.Fatalf("%d bodies stored, want 2 (the purged message's went with it)", r.Bodies)
	}
}

func testPurgeQueue(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{AckRetention: time.Hour})
	b.enqueue(t, msg("q", "ready"), nm{Queue: "q", Body: []byte("dead"), MaxAttempts: 1}, msg("q", "acked"),
		nm{Queue: "q", Body: []byte("delayed"), NotBefore: b.clock.Now().Add(time.Hour)}, msg("q", "in flight"),
		msg("keep", "other queue"))
	l := b.claim(t, co{Queue: "q", Max: 3, Lease: time.Minute})
	ids := l.IDs()
	if _, err := b.store.Nack(b.ctx, l, queuestore.NackOptions{IDs: ids[1:2]}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Ack(b.ctx, l, ids[2]); err != nil {
		t.Fatal(err)
	}
	b.claim(t, co{Queue: "q", Max: 1})
	if n, err := b.store.Purge(b.ctx, "q"); err != nil || n != 6-1 {
		t.Fatalf("purge queue: %d %v, want 5", n, err)
	}
	if st := b.stats(t, "q"); st != (queuestore.Stats{Queue: "q"}) {
		t.Fatalf("after purge: %+v", st)
	}
	if st := b.stats(t, "keep"); st.Ready != 1 {
		t.Fatalf("purge touched another queue: %+v", st)
	}
	if err := b.store.Ack(b.ctx, l, ids[0]); !errors.Is(err, queuestore.ErrLeaseLost) {
		t.Fatalf("ack of a purged message: %v, want ErrLeaseLost", err)
	}
	if m := b.metrics(t, "q"); m.Purged != 5 {
		t.Fatalf("metrics %+v, want 5 purged", m)
	}
	if r := b.rows(t, "q"); r.Bodies != 1 {
		t.Fatalf("%d bodies left, want the other queue's only", r.Bodies)
	}
}

func testAckRetention(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{AckRetention: time.Hour})
	b.enqueue(t, msg("q", "old"))
	if err := b.store.Ack(b.ctx, b.claim(t, co{Queue: "q"})); err != nil {
		t.Fatal(err)
	}
	acked, err := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{State: queuestore.StateAcked})
	if err != nil || len(acked) != 1 || string(acked[0].Body) != "old" || acked[0].State != queuestore.StateAcked {
		t.Fatalf("retained ack: %+v %v", acked, err)
	}
	b.clock.Advance(2 * time.Hour)
	b.enqueue(t, msg("q", "new"))
	if err := b.store.Ack(b.ctx, b.claim(t, co{Queue: "q"})); err != nil {
		t.Fatal(err)
	}
	if st := b.stats(t, "q"); st.Acked != 1 {
		t.Fatalf("acked = %d, want only the new one kept", st.Acked)
	}
}

func testAdminRejectsBadNames(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	calls := map[string]func() error{
		"pause":      func() error { return b.store.Pause(b.ctx, "bad name") },
		"resume":     func() error { return b.store.Resume(b.ctx, "bad name") },
		"limit":      func() error { return b.store.SetLimit(b.ctx, "bad name", 1) },
		"stats":      func() error { _, err := b.store.Stats(b.ctx, "bad name"); return err },
		"peek":       func() error { _, err := b.store.Peek(b.ctx, "bad name", queuestore.PeekOptions{}); return err },
		"redrive":    func() error { _, err := b.store.Redrive(b.ctx, "bad name"); return err },
		"purge dead": func() error { _, err := b.store.PurgeDead(b.ctx, "bad name"); return err },
		"purge":      func() error { _, err := b.store.Purge(b.ctx, "bad name"); return err },
		"history":    func() error { _, err := b.store.History(b.ctx, "bad name", time.Time{}); return err },
		"claim":      func() error { _, err := b.store.Claim(b.ctx, co{Queue: "bad name", Max: 1}); return err },
		"enqueue":    func() error { _, err := b.store.Enqueue(b.ctx, msg("bad name", "x")); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, queuestore.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// The counters count every outcome of a delivery, and the wait histogram
// the enqueue-to-ack waits, cumulatively.
func testMetrics(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, msg("q", "fast"), msg("q", "slow"), msg("q", "retried"), nm{Queue: "q", Body: []byte("dead"), MaxAttempts: 1},
		msg("q", "released"), msg("q", "expired"))
	l := b.claim(t, co{Queue: "q", Max: 5, Lease: time.Hour})
	ids := l.IDs()
	if err := b.store.Ack(b.ctx, l, ids[0]); err != nil { // waited 0s
		t.Fatal(err)
	}
	if _, err := b.store.Nack(b.ctx, l, queuestore.NackOptions{IDs: ids[2:4]}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Release(b.ctx, l, ids[4]); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Second)
	if err := b.store.Ack(b.ctx, l, ids[1]); err != nil { // waited 2s
		t.Fatal(err)
	}
	e := b.claim(t, co{Queue: "q", Max: 1, Lease: time.Second}) // the released one
	b.clock.Advance(time.Second)
	b.claim(t, co{Queue: "q", Group: "none-such"}) // its lease ran out: counted as expired
	m := b.metrics(t, "q")
	want := map[queuestore.Outcome]int64{queuestore.OutcomeAcked: 2, queuestore.OutcomeRetried: 1, queuestore.OutcomeDead: 1,
		queuestore.OutcomeReleased: 1, queuestore.OutcomeExpired: 1}
	for o, n := range want {
		if m.Settled[o] != n {
			t.Errorf("settled %s = %d, want %d", o, m.Settled[o], n)
		}
	}
	if m.Enqueued != 6 || m.Claimed != 6 || m.WaitCount != 2 || m.WaitSum != 2*time.Second {
		t.Errorf("metrics %+v, want 6 enqueued, 6 claims, 2 waits summing to 2s", m)
	}
	// WaitBuckets: 0.1, 0.5, 1, 5, ... seconds; cumulative.
	if len(m.WaitCounts) != len(queuestore.WaitBuckets) || m.WaitCounts[0] != 1 || m.WaitCounts[2] != 1 ||
		m.WaitCounts[3] != 2 || m.WaitCounts[len(m.WaitCounts)-1] != 2 {
		t.Errorf("wait histogram %v", m.WaitCounts)
	}
	if m.Ready != 3 || m.Dead != 1 || m.Delayed != 0 || m.InFlight != 0 {
		t.Errorf("metrics stats %+v, want 3 ready and 1 dead", m.Stats)
	}
	if e == nil || string(e.Messages[0].Body) != "released" {
		t.Errorf("claim after the release took %+v, want the released message", e)
	}
}

func testHistory(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	start := b.clock.Now()
	b.enqueue(t, msg("q", "a"), msg("q", "b"))
	if err := b.store.RecordHistory(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Minute)
	if err := b.store.Ack(b.ctx, b.claim(t, co{Queue: "q", Max: 1})); err != nil {
		t.Fatal(err)
	}
	if err := b.store.RecordHistory(b.ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.store.RecordHistory(b.ctx); err != nil { // the same moment again: kept once
		t.Fatal(err)
	}
	h, err := b.store.History(b.ctx, "q", start)
	if err != nil || len(h) != 2 {
		t.Fatalf("history %+v %v, want 2 samples", h, err)
	}
	if h[0].Ready != 2 || h[0].Enqueued != 2 || h[0].Acked != 0 || !h[0].At.Equal(start) ||
		h[1].Ready != 1 || h[1].Acked != 1 || h[1].OldestReadyAge != time.Minute {
		t.Fatalf("history %+v", h)
	}
	if h, _ := b.store.History(b.ctx, "q", start.Add(time.Second)); len(h) != 1 {
		t.Fatalf("history since a second later: %+v, want the last sample", h)
	}
	b.clock.Advance(queuestore.HistoryRetention + time.Hour)
	if err := b.store.RecordHistory(b.ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := b.store.History(b.ctx, "q", start); len(h) != 1 {
		t.Fatalf("history after the retention: %+v, want the new sample only", h)
	}
}

// The kept counts equal a count of the rows after any mix of operations,
// with and without ack retention, and the counters add up.
func testKeptCountsMatchRows(t *testing.T, s *suite) {
	for _, retention := range []time.Duration{0, time.Hour} {
		t.Run(retention.String(), func(t *testing.T) {
			b := s.setup(t, queuestore.Options{AckRetention: retention, MaxAttempts: 2})
			b.rows(t, "q") // skips without a row counter
			rng := rand.New(rand.NewPCG(1, uint64(retention)))
			var leases []*queuestore.Lease
			var enqueued int64
			for step := range 300 {
				switch op := rng.IntN(10); {
				case op < 3:
					var msgs []nm
					for range 1 + rng.IntN(5) {
						m := nm{Queue: "q", Body: []byte("m"), Priority: int64(rng.IntN(3))}
						if rng.IntN(3) == 0 {
							m.NotBefore = b.clock.Now().Add(time.Duration(rng.IntN(5)) * time.Second)
						}
						if rng.IntN(4) == 0 {
							m.DedupeKey = string(rune('a' + rng.IntN(5)))
						}
						msgs = append(msgs, m)
					}
					res, err := b.store.Enqueue(b.ctx, msgs...)
					if err != nil {
						t.Fatal(err)
					}
					enqueued += int64(res.Enqueued)
				case op < 5:
					if l := b.claim(t, co{Queue: "q", Max: 1 + rng.IntN(4), Lease: time.Duration(1+rng.IntN(3)) * time.Second}); l != nil {
						leases = append(leases, l)
					}
				case op < 8 && len(leases) > 0:
					i := rng.IntN(len(leases))
					l := leases[i]
					leases = append(leases[:i], leases[i+1:]...)
					switch rng.IntN(5) {
					case 0:
						b.store.Ack(b.ctx, l)
					case 4:
						// A lost ack still claims: the lease comes with the error.
						next, _ := b.store.AckClaim(b.ctx, l, nil, co{Queue: "q", Max: 1 + rng.IntN(4), Lease: time.Second})
						if next != nil {
							leases = append(leases, next)
						}
					case 1:
						b.store.Nack(b.ctx, l, queuestore.NackOptions{Delay: time.Duration(rng.IntN(3)) * time.Second})
					case 2:
						b.store.Release(b.ctx, l)
					case 3:
						b.store.Extend(b.ctx, l, 2*time.Second)
						leases = append(leases, l)
					}
				case op == 8:
					b.clock.Advance(time.Duration(rng.IntN(2000)) * time.Millisecond)
				case op == 9 && rng.IntN(5) == 0:
					if rng.IntN(2) == 0 {
						b.store.Redrive(b.ctx, "q")
					} else {
						b.store.PurgeDead(b.ctx, "q")
					}
				}
				kept, rows := b.stats(t, "q"), b.rows(t, "q")
				if kept.Ready != rows.Ready || kept.Delayed != rows.Delayed || kept.InFlight != rows.InFlight ||
					kept.Dead != rows.Dead || kept.Acked != rows.Acked {
					t.Fatalf("step %d: kept counts %+v, rows say %+v", step, kept, rows)
				}
			}
			m := b.metrics(t, "q")
			if m.Enqueued != enqueued || m.Claimed == 0 || m.Settled[queuestore.OutcomeAcked] == 0 ||
				m.WaitCount != m.Settled[queuestore.OutcomeAcked] {
				t.Fatalf("metrics %+v, want %d enqueued, claims and acks counted", m, enqueued)
			}
			if _, err := b.store.Purge(b.ctx, "q"); err != nil {
				t.Fatal(err)
			}
			if kept := b.stats(t, "q"); kept.Ready+kept.Delayed+kept.InFlight+kept.Dead+kept.Acked != 0 {
				t.Fatalf("after purge: %+v", kept)
			}
		})
	}
}

// A message keeps the Dagu runs that enqueued it and last claimed it, for
// the dashboard's links.
func testPeekNamesTheDaguRuns(t *testing.T, s *suite) {
	b := s.setup(t, queuestore.Options{})
	b.enqueue(t, queuestore.NewMessage{Queue: "q", Body: []byte("a"), EnqueuedBy: "producer/run-1"},
		msg("q", "b"))
	peek := func(st queuestore.State) []queuestore.Message {
		t.Helper()
		msgs, err := b.store.Peek(b.ctx, "q", queuestore.PeekOptions{State: st, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	if m := peek(queuestore.StateReady); len(m) != 2 || m[0].EnqueuedBy != "producer/run-1" || m[1].EnqueuedBy != "" || m[0].ClaimedBy != "" {
		t.Fatalf("ready %+v", m)
	}
	if l := b.claim(t, queuestore.ClaimOptions{Queue: "q", Max: 1, ClaimedBy: "consumer/run-2"}); l == nil {
		t.Fatal("nothing claimed")
	}
	if m := peek(queuestore.StateInFlight); len(m) != 1 || m[0].EnqueuedBy != "producer/run-1" || m[0].ClaimedBy != "consumer/run-2" {
		t.Fatalf("in flight %+v", m)
	}
}
