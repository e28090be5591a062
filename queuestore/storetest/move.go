package storetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// Moving queues between two databases (queuestore.Move), run for each
// pair of backends by RunMoves.

// RunMoves runs the move tests from stores that from opens to stores that
// to opens; both must implement queuestore.Mover.
func RunMoves(t *testing.T, from, to Opener) {
	for _, tc := range moveTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := NewClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
			opts := queuestore.Options{Now: clock.Now,
				Backoff: func(attempt int) time.Duration { return time.Duration(attempt) * time.Second }}
			src, ok1 := from(t, opts).(queuestore.Mover)
			dst, ok2 := to(t, opts).(queuestore.Mover)
			if !ok1 || !ok2 {
				t.Fatal("the stores do not implement queuestore.Mover")
			}
			tc.run(t, &movePair{src: src, dst: dst, clock: clock, ctx: context.Background()})
		})
	}
}

// OpenSQLite is an Opener of SQLite stores, each a new file in the test's
// temporary directory.
func OpenSQLite(t *testing.T, opts queuestore.Options) queuestore.Backend {
	s, err := queuestore.Open(filepath.Join(t.TempDir(), "daguq.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type movePair struct {
	src, dst queuestore.Mover
	clock    *Clock
	ctx      context.Context
}

type moveTest struct {
	name string
	run  func(t *testing.T, p *movePair)
}

var moveTests = []moveTest{
	{"MoveKeepsEveryField", testMoveKeepsEveryField},
	{"MoveLeavesInFlight", testMoveLeavesInFlight},
	{"MoveWaitsForInFlight", testMoveWaitsForInFlight},
	{"MoveFinishesAnInterruptedMove", testMoveFinishesInterrupted},
	{"MoveDropsOriginsLeftBehind", testMoveDropsLeftOrigins},
	{"MoveReportsMessagesInBoth", testMoveReportsInBoth},
	{"MoveReportsDedupeClashes", testMoveReportsClashes},
	{"MoveCopiesOrKeepsSettings", testMoveSettings},
	{"MoveInBatches", testMoveInBatches},
	{"MoveRefusesBadInput", testMoveRefusesBadInput},
}

func (p *movePair) move(t *testing.T, opts queuestore.MoveOptions) queuestore.MoveReport {
	t.Helper()
	report, err := queuestore.Move(p.ctx, p.src, p.dst, opts)
	if err != nil {
		t.Fatalf("move: %v", err)
	}
	return report
}

func enqueueIn(t *testing.T, st queuestore.Backend, msgs ...queuestore.NewMessage) []int64 {
	t.Helper()
	res, err := st.Enqueue(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	return res.IDs
}

func statsOf(t *testing.T, st queuestore.Backend, queue string) queuestore.Stats {
	t.Helper()
	s, err := st.Stats(context.Background(), queue)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func peekAll(t *testing.T, st queuestore.Backend, queue string, state queuestore.State) []queuestore.Message {
	t.Helper()
	msgs, err := st.Peek(context.Background(), queue, queuestore.PeekOptions{State: state, Limit: queuestore.MaxClaim})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// same compares what a move keeps: everything but the id (and the Dagu run
// names, which a destination without them drops).
func same(a, b queuestore.Message, runNames bool) string {
	a.ID, b.ID = 0, 0
	if !runNames {
		a.EnqueuedBy, a.ClaimedBy, b.EnqueuedBy, b.ClaimedBy = "", "", "", ""
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		return fmt.Sprintf("\n have %+v\n want %+v", b, a)
	}
	return ""
}

func testMoveKeepsEveryField(t *testing.T, p *movePair) {
	now := p.clock.Now()
	enqueueIn(t, p.src,
		nm{Queue: "q", Body: []byte("low"), Priority: -3, Group: "g1", EnqueuedBy: "dag/run-1"},
		nm{Queue: "q", Body: []byte("high"), Priority: 7, DedupeKey: "k-high", MaxAttempts: 9},
		nm{Queue: "q", Body: []byte(""), Group: "g2"},
		nm{Queue: "q", Body: []byte("later"), NotBefore: now.Add(time.Hour), DedupeKey: "k-later"},
		nm{Queue: "q", Body: []byte("doomed"), Priority: 100, MaxAttempts: 1},
		nm{Queue: "q", Body: []byte("retried"), Priority: 50, MaxAttempts: 3})
	// doomed dies, retried waits for its retry with one attempt spent.
	lease, err := p.src.Claim(p.ctx, queuestore.ClaimOptions{Queue: "q", Max: 2, ClaimedBy: "dag/run-2"})
	if err != nil || lease == nil || len(lease.Messages) != 2 {
		t.Fatalf("claim: %+v %v", lease, err)
	}
	if _, err := p.src.Nack(p.ctx, lease, queuestore.NackOptions{Error: "boom", Delay: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(time.Second)
	before := map[queuestore.State][]queuestore.Message{}
	for _, st := range []queuestore.State{queuestore.StateReady, queuestore.StateDelayed, queuestore.StateDead} {
		before[st] = peekAll(t, p.src, "q", st)
	}
	if len(before[queuestore.StateReady]) != 3 || len(before[queuestore.StateDelayed]) != 2 || len(before[queuestore.StateDead]) != 1 {
		t.Fatalf("source before: %+v", before)
	}

	report := p.move(t, queuestore.MoveOptions{})
	want := queuestore.QueueMove{Queue: "q", Ready: 3, Delayed: 2, Dead: 1, Settings: "none"}
	got := report.Queues[0]
	want.DroppedRunNames = got.DroppedRunNames
	if len(report.Queues) != 1 || fmt.Sprint(got) != fmt.Sprint(want) || !report.Complete() {
		t.Fatalf("report %+v, want %+v", report, want)
	}
	// The destination keeps Dagu run names if it can, or says how many it
	// dropped: 3 messages have one.
	runNames := got.DroppedRunNames == 0
	if !runNames && got.DroppedRunNames != 3 {
		t.Fatalf("dropped run names of %d messages, want 0 or 3", got.DroppedRunNames)
	}
	for st, msgs := range before {
		after := peekAll(t, p.dst, "q", st)
		if len(after) != len(msgs) {
			t.Fatalf("%s in the destination: %d, want %d", st, len(after), len(msgs))
		}
		for i := range msgs {
			if diff := same(msgs[i], after[i], runNames); diff != "" {
				t.Errorf("%s message %d:%s", st, i, diff)
			}
		}
	}
	if st := statsOf(t, p.src, "q"); st.Ready+st.Delayed+st.InFlight+st.Dead != 0 || !st.Paused {
		t.Errorf("source after the move: %+v, want empty and paused", st)
	}
	if st := statsOf(t, p.dst, "q"); st.Ready != 3 || st.Delayed != 2 || st.Dead != 1 || st.Paused {
		t.Errorf("destination stats %+v", st)
	}
	// The destination serves them in the source's claim order; the dedupe
	// keys hold there.
	l := claimIn(t, p.dst, queuestore.ClaimOptions{Queue: "q", Max: 10})
	if got := bodies(l); !slices.Equal(got, []string{"high", "", "low"}) {
		t.Errorf("destination claims %q, want high, \"\", low", got)
	}
	res, err := p.dst.Enqueue(p.ctx, nm{Queue: "q", DedupeKey: "k-later"}, nm{Queue: "q", DedupeKey: "k-high"})
	if err != nil || res.Duplicates != 2 {
		t.Errorf("enqueue of the moved dedupe keys: %+v %v, want 2 duplicates", res, err)
	}
	if err := p.dst.Ack(p.ctx, l); err != nil {
		t.Fatal(err)
	}
	// The dead message can be redriven there, the retry comes at its time.
	if n, err := p.dst.Redrive(p.ctx, "q"); err != nil || n != 1 {
		t.Errorf("redrive in the destination: %d %v", n, err)
	}
	p.clock.Advance(10 * time.Minute)
	if l := claimIn(t, p.dst, queuestore.ClaimOptions{Queue: "q", Max: 10}); !slices.Equal(bodies(l), []string{"doomed", "retried"}) {
		t.Errorf("after the retry time: %q, want doomed and retried", bodies(l))
	} else if l.Messages[1].Attempt != 2 || l.Messages[1].MaxAttempts != 3 {
		t.Errorf("retried message: attempt %d of %d, want 2 of 3", l.Messages[1].Attempt, l.Messages[1].MaxAttempts)
	}
}

func claimIn(t *testing.T, st queuestore.Backend, opts queuestore.ClaimOptions) *queuestore.Lease {
	t.Helper()
	l, err := st.Claim(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testMoveLeavesInFlight(t *testing.T, p *movePair) {
	enqueueIn(t, p.src, msg("q", "held"), msg("q", "free"))
	lease := claimIn(t, p.src, queuestore.ClaimOptions{Queue: "q", Max: 1, Lease: time.Minute})
	report := p.move(t, queuestore.MoveOptions{})
	if q := report.Queues[0]; q.Ready != 1 || q.InFlight != 1 || report.Complete() {
		t.Fatalf("report %+v, want 1 moved and 1 left in flight", report)
	}
	// The consumer still finishes its message in the source.
	if err := p.src.Ack(p.ctx, lease); err != nil {
		t.Fatalf("ack in the source after the move: %v", err)
	}
	// A lease that ran out holds nothing: its message moves as ready.
	enqueueIn(t, p.src, msg("q", "expires"))
	if err := p.src.Resume(p.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	claimIn(t, p.src, queuestore.ClaimOptions{Queue: "q", Max: 1, Lease: time.Minute})
	p.clock.Advance(2 * time.Minute)
	report = p.move(t, queuestore.MoveOptions{})
	if q := report.Queues[0]; q.Ready != 1 || q.InFlight != 0 || !report.Complete() {
		t.Fatalf("report %+v, want the expired one moved", report)
	}
	if l := claimIn(t, p.dst, queuestore.ClaimOptions{Queue: "q", Max: 10}); !slices.Equal(bodies(l), []string{"free", "expires"}) {
		t.Fatalf("destination holds %q", bodies(l))
	}
}

func testMoveWaitsForInFlight(t *testing.T, p *movePair) {
	enqueueIn(t, p.src, msg("q", "a"), msg("q", "b"), msg("q", "c"))
	lease := claimIn(t, p.src, queuestore.ClaimOptions{Queue: "q", Max: 2, Lease: time.Hour})
	// The consumer gives its batch back once the move has moved the rest
	// and waits.
	moved := make(chan struct{}, 1)
	released := make(chan error, 1)
	go func() {
		<-moved
		released <- p.src.Release(p.ctx, lease)
	}()
	report := p.move(t, queuestore.MoveOptions{Wait: time.Minute, PollInterval: 5 * time.Millisecond,
		Progress: func(queuestore.MoveProgress) {
			select {
			case moved <- struct{}{}:
			default:
			}
		}})
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if q := report.Queues[0]; q.Ready != 3 || q.InFlight != 0 || !report.Complete() {
		t.Fatalf("report %+v, want all 3 moved", report)
	}
	l := claimIn(t, p.dst, queuestore.ClaimOptions{Queue: "q", Max: 10})
	if got := slices.Sorted(slices.Values(bodies(l))); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("destination holds %q", got)
	}
}

// interrupt stores the first n messages of queue in the destination and
// then fails the source's transaction, as a move killed between the two
// commits leaves them: in both databases, with origin records.
func (p *movePair) interrupt(t *testing.T, queue string, n int, deleteInSource bool) {
	t.Helper()
	source, err := p.src.StoreID(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	killed := errors.New("killed")
	err = p.src.MoveOut(p.ctx, queue, 0, n, func(msgs []queuestore.MovingMessage) ([]int64, error) {
		res, err := p.dst.PutIn(p.ctx, source, msgs)
		if err != nil {
			return nil, err
		}
		if deleteInSource {
			return res.Stored, nil
		}
		return nil, killed
	})
	if !errors.Is(err, killed) && (err != nil || !deleteInSource) {
		t.Fatalf("interrupted move: %v", err)
	}
}

func testMoveFinishesInterrupted(t *testing.T, p *movePair) {
	for i := range 10 {
		enqueueIn(t, p.src, msg("q", fmt.Sprint(i)))
	}
	p.interrupt(t, "q", 4, false)
	if a, b := statsOf(t, p.src, "q"), statsOf(t, p.dst, "q"); a.Ready != 10 || b.Ready != 4 {
		t.Fatalf("after the interruption: source %+v, destination %+v", a, b)
	}
	report := p.move(t, queuestore.MoveOptions{BatchSize: 3})
	if q := report.Queues[0]; q.Resumed != 4 || q.Ready != 6 || !report.Complete() {
		t.Fatalf("report %+v, want 4 resumed and 6 moved", report)
	}
	l := claimIn(t, p.dst, queuestore.ClaimOptions{Queue: "q", Max: 100})
	if want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}; !slices.Equal(bodies(l), want) {
		t.Fatalf("destination holds %q, want %q once each", bodies(l), want)
	}
	if st := statsOf(t, p.src, "q"); st.Ready != 0 {
		t.Fatalf("source still has %+v", st)
	}
	p.noOrigins(t, "q")
}

func (p *movePair) noOrigins(t *testing.T, queue string) {
	t.Helper()
	source, err := p.src.StoreID(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	left, err := p.dst.Origins(p.ctx, source, queue, 0, 100)
	if err != nil || len(left) != 0 {
		t.Fatalf("origin records left: %+v %v", left, err)
	}
}

func testMoveDropsLeftOrigins(t *testing.T, p *movePair) {
	for i := range 5 {
		enqueueIn(t, p.src, msg("q", fmt.Sprint(i)))
	}
	// Killed after the source deleted the batch, before the destination
	// dropped the origin records.
	p.interrupt(t, "q", 2, true)
	report := p.move(t, queuestore.MoveOptions{})
	if q := report.Queues[0]; q.Ready != 3 || q.Resumed != 0 || !report.Complete() {
		t.Fatalf("report %+v", report)
	}
	p.noOrigins(t, "q")
	if st := statsOf(t, p.dst, "q"); st.Ready != 5 {
		t.Fatalf("destination %+v, want 5 ready", st)
	}
}

func testMoveReportsInBoth(t *testing.T, p *movePair) {
	enqueueIn(t, p.src, msg("q", "a"), msg("q", "b"))
	p.interrupt(t, "q", 2, false)
	// Someone resumed the source queue before the move ran again, and a
	// consumer took a message.
	if err := p.src.Resume(p.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	lease := claimIn(t, p.src, queuestore.ClaimOptions{Queue: "q", Max: 1})
	report := p.move(t, queuestore.MoveOptions{})
	q := report.Queues[0]
	if q.Resumed != 1 || q.InFlight != 1 || len(q.InBoth) != 1 || q.InBoth[0].SourceID != lease.Messages[0].ID || report.Complete() {
		t.Fatalf("report %+v, want a resumed one and the leased one in both", report)
	}
}

func testMoveReportsClashes(t *testing.T, p *movePair) {
	enqueueIn(t, p.dst, nm{Queue: "q", Body: []byte("theirs"), DedupeKey: "k"})
	ids := enqueueIn(t, p.src, nm{Queue: "q", Body: []byte("ours"), DedupeKey: "k"}, msg("q", "plain"))
	report := p.move(t, queuestore.MoveOptions{})
	q := report.Queues[0]
	if q.Ready != 1 || len(q.Clashed) != 1 || q.Clashed[0] != (queuestore.Clash{ID: ids[0], DedupeKey: "k"}) || report.Complete() {
		t.Fatalf("report %+v, want the clash named and the plain one moved", report)
	}
	if left := peekAll(t, p.src, "q", queuestore.StateReady); len(left) != 1 || string(left[0].Body) != "ours" {
		t.Fatalf("source keeps %+v, want the clashing message", left)
	}
	if l := claimIn(t, p.dst, queuestore.ClaimOptions{Queue: "q", Max: 10}); !slices.Equal(bodies(l), []string{"theirs", "plain"}) {
		t.Fatalf("destination holds %q", bodies(l))
	}
	// Once the destination's message is acked the key is free: a second
	// move takes the message.
	if err := p.dst.Ack(p.ctx, claimedLease(t, p, "q")); err != nil {
		t.Fatal(err)
	}
	report = p.move(t, queuestore.MoveOptions{})
	if q := report.Queues[0]; q.Ready != 1 || len(q.Clashed) != 0 || !report.Complete() {
		t.Fatalf("second move %+v", report)
	}
}

// claimedLease is the destination's live lease of queue's messages, taken
// again after its lease ran out.
func claimedLease(t *testing.T, p *movePair, queue string) *queuestore.Lease {
	t.Helper()
	p.clock.Advance(time.Hour)
	return claimIn(t, p.dst, queuestore.ClaimOptions{Queue: queue, Max: 10})
}

func testMoveSettings(t *testing.T, p *movePair) {
	for _, q := range []string{"new", "known"} {
		enqueueIn(t, p.src, msg(q, "x"))
		if err := p.src.SetLimit(p.ctx, q, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.src.Pause(p.ctx, "new"); err != nil {
		t.Fatal(err)
	}
	// The source's consumers age the queue's messages.
	claimIn(t, p.src, queuestore.ClaimOptions{Queue: "known", Max: 1, Aging: time.Minute})
	if err := p.dst.SetLimit(p.ctx, "known", 5); err != nil {
		t.Fatal(err)
	}
	enqueueIn(t, p.src, msg("plain", "y"))
	report := p.move(t, queuestore.MoveOptions{Queues: []string{"new", "known", "plain"}})
	byQueue := map[string]queuestore.QueueMove{}
	for _, q := range report.Queues {
		byQueue[q.Queue] = q
	}
	if q := byQueue["new"]; q.Settings != "copied" || !q.DestinationPaused || q.Ready != 1 {
		t.Errorf("new: %+v, want settings copied (paused)", q)
	}
	if set, found, err := p.dst.QueueSettings(p.ctx, "new"); err != nil || !found || set != (queuestore.QueueSettings{Paused: true, InFlightLimit: 3}) {
		t.Errorf("new in the destination: %+v %v %v", set, found, err)
	}
	want := []string{"in-flight limit: source 3, destination 5", "aging: source 1m0s, destination 0s"}
	if q := byQueue["known"]; q.Settings != "kept" || !slices.Equal(q.Differences, want) || q.DestinationPaused || q.InFlight != 1 {
		t.Errorf("known: %+v, want settings kept with differences %q", q, want)
	}
	if q := byQueue["plain"]; q.Settings != "none" || q.Ready != 1 {
		t.Errorf("plain: %+v", q)
	}
	for _, q := range []string{"new", "known", "plain"} {
		if !statsOf(t, p.src, q).Paused {
			t.Errorf("source queue %s not paused after the move", q)
		}
	}
}

func testMoveInBatches(t *testing.T, p *movePair) {
	const n = 2500
	var msgs []queuestore.NewMessage
	for i := range n {
		msgs = append(msgs, nm{Queue: "bulk", Body: []byte(fmt.Sprint(i)), Priority: int64(i % 3)})
	}
	enqueueIn(t, p.src, msgs...)
	var progress []int64
	report := p.move(t, queuestore.MoveOptions{BatchSize: 1000, Progress: func(mp queuestore.MoveProgress) {
		progress = append(progress, mp.Moved)
	}})
	if q := report.Queues[0]; q.Ready != n || !slices.Equal(progress, []int64{1000, 2000, 2500}) {
		t.Fatalf("report %+v, progress %v", report, progress)
	}
	if st := statsOf(t, p.dst, "bulk"); st.Ready != n {
		t.Fatalf("destination %+v", st)
	}
	seen := map[string]bool{}
	for {
		l := claimIn(t, p.dst, queuestore.ClaimOptions{Queue: "bulk", Max: queuestore.MaxClaim})
		if l == nil {
			break
		}
		for _, m := range l.Messages {
			if seen[string(m.Body)] {
				t.Fatalf("message %s twice", m.Body)
			}
			seen[string(m.Body)] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("claimed %d distinct messages, want %d", len(seen), n)
	}
}

func testMoveRefusesBadInput(t *testing.T, p *movePair) {
	enqueueIn(t, p.src, msg("q", "x"))
	tests := []struct {
		name     string
		from, to queuestore.Mover
		opts     queuestore.MoveOptions
		text     string
	}{
		{"same database", p.src, p.src, queuestore.MoveOptions{}, "same database"},
		{"unknown queue", p.src, p.dst, queuestore.MoveOptions{Queues: []string{"nope"}}, `queue "nope"`},
		{"bad queue name", p.src, p.dst, queuestore.MoveOptions{Queues: []string{"a/b"}}, "queue name"},
		{"batch too large", p.src, p.dst, queuestore.MoveOptions{BatchSize: queuestore.MaxClaim + 1}, "batch size must be"},
		{"negative wait", p.src, p.dst, queuestore.MoveOptions{Wait: -time.Second}, "wait must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := queuestore.Move(p.ctx, tt.from, tt.to, tt.opts)
			if !errors.Is(err, queuestore.ErrInvalid) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %v, want ErrInvalid mentioning %q", err, tt.text)
			}
		})
	}
	if st := statsOf(t, p.src, "q"); st.Ready != 1 || st.Paused {
		t.Errorf("source after refused moves: %+v, want untouched", st)
	}
}
