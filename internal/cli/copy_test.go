package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/executor"
	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/queuestore"
)

type copySummary struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Complete bool   `json:"complete"`
	Queues   []struct {
		Queue             string `json:"queue"`
		Ready             int64  `json:"ready"`
		Delayed           int64  `json:"delayed"`
		Dead              int64  `json:"dead"`
		Resumed           int64  `json:"resumed"`
		Settings          string `json:"settings"`
		DestinationPaused bool   `json:"destination_paused"`
		InFlight          int64  `json:"in_flight_left"`
		Clashed           []struct {
			ID        int64  `json:"id"`
			DedupeKey string `json:"dedupe_key"`
		} `json:"dedupe_clashes"`
		DroppedRunNames int `json:"dropped_run_names"`
	} `json:"queues"`
}

// openMover opens a database the way daguq does, for a look from the test.
func openMover(tb testing.TB, db string) queuestore.Mover {
	tb.Helper()
	st, err := executor.OpenBackend(db, executor.StoreOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st.(queuestore.Mover)
}

// stored counts each body of queue's ready, delayed and dead messages.
func stored(tb testing.TB, st queuestore.Backend, queue string) map[string]int {
	tb.Helper()
	out := map[string]int{}
	for _, state := range []queuestore.State{queuestore.StateReady, queuestore.StateDelayed, queuestore.StateDead} {
		msgs, err := st.Peek(context.Background(), queue, queuestore.PeekOptions{State: state, Limit: queuestore.MaxClaim})
		if err != nil {
			tb.Fatal(err)
		}
		if len(msgs) == queuestore.MaxClaim {
			tb.Fatalf("more than %d %s messages: the test cannot see them all", queuestore.MaxClaim, state)
		}
		for _, m := range msgs {
			out[string(m.Body)]++
		}
	}
	return out
}

// noneLostOrTwice checks that the two databases hold each of the first n
// JSON Lines bodies (jsonLines) once between them, except inBoth of them,
// which both hold; none is held twice by one database.
func noneLostOrTwice(tb testing.TB, src, dst queuestore.Backend, queue string, n, inBoth int) {
	tb.Helper()
	a, b := stored(tb, src, queue), stored(tb, dst, queue)
	both := 0
	for i := range n {
		body := fmt.Sprintf(`{"n":%d}`, i)
		switch {
		case a[body] > 1 || b[body] > 1:
			tb.Fatalf("%s stored twice in one database (source %d, destination %d)", body, a[body], b[body])
		case a[body]+b[body] == 0:
			tb.Fatalf("%s lost", body)
		case a[body]+b[body] == 2:
			both++
		}
	}
	if len(a)+len(b) != n+both {
		tb.Fatalf("%d + %d bodies stored, want %d", len(a), len(b), n+both)
	}
	if both != inBoth {
		tb.Fatalf("%d messages in both databases, want %d", both, inBoth)
	}
}

// Messages move from a SQLite file to PostgreSQL and back, keeping their
// state; the summary and the errors never show the password.
func TestCopyBetweenSQLiteAndPostgres(t *testing.T) {
	t.Parallel()
	pg := pgtest.NewDatabase(t)
	e := newEnv(t)
	e.ok(strings.NewReader(jsonLines(20)), "enqueue", "--queue", "jobs", "--file", "-", "--priority", "3")
	e.ok(nil, "enqueue", "--queue", "jobs", "--message", `"later"`, "--delay", "1h", "--dedupe-key", "k1")
	e.ok(nil, "enqueue", "--queue", "fails", "--message", `"doomed"`)
	e.run(nil, "consume", "--queue", "fails", "--max-attempts", "1", "--", "sh", "-c", "cat >/dev/null; echo broken >&2; exit 1")
	e.ok(nil, "limit", "jobs", "4")

	r := e.run(nil, "copy", "--from", e.db, "--to", pg)
	if r.Code != 0 || strings.Contains(r.Stdout+r.Stderr, pgtest.Password) {
		t.Fatalf("copy to PostgreSQL: want exit 0 and no password\n%s", r)
	}
	s := decode[copySummary](t, r)
	if !s.Complete || len(s.Queues) != 2 || s.Queues[0].Queue != "fails" || s.Queues[0].Dead != 1 ||
		s.Queues[1].Ready != 20 || s.Queues[1].Delayed != 1 || s.Queues[1].Settings != "copied" || !strings.Contains(s.To, "xxxxx") {
		t.Fatalf("summary %+v\n%s", s, r)
	}
	if st := e.stats("jobs"); st.Ready+st.Delayed != 0 || !st.Paused {
		t.Fatalf("source after the move: %+v, want empty and paused", st)
	}
	pgEnv := newEnv(t)
	pgEnv.setenv("DAGUQ_DB", pg)
	if st := pgEnv.stats("jobs"); st.Ready != 20 || st.Delayed != 1 || st.InFlightLimit != 4 || st.Paused {
		t.Fatalf("PostgreSQL after the move: %+v", st)
	}
	if r := pgEnv.ok(nil, "dlq", "list", "fails"); !strings.Contains(r.Stdout, "broken") {
		t.Fatalf("the dead message lost its error:\n%s", r)
	}

	// And back, into a new file.
	back := filepath.Join(e.dir, "back.db")
	r = e.run(nil, "copy", "--from", pg, "--to", back, "--queue", "jobs", "--batch-size", "7")
	if s := decode[copySummary](t, r); r.Code != 0 || s.Queues[0].Ready != 20 || s.Queues[0].Delayed != 1 ||
		!strings.Contains(s.From, "xxxxx") || strings.Contains(r.Stdout+r.Stderr, pgtest.Password) {
		t.Fatalf("copy back: want the 21 messages moved and no password\n%+v\n%s", s, r)
	}
	backEnv := newEnv(t)
	backEnv.setenv("DAGUQ_DB", back)
	if st := backEnv.stats("jobs"); st.Ready != 20 || st.Delayed != 1 || st.InFlightLimit != 4 {
		t.Fatalf("SQLite after the move back: %+v", st)
	}
	got := decode[struct {
		Acked int `json:"acked"`
	}](t, backEnv.ok(nil, "consume", "--queue", "jobs", "--", "sh", "-c", "cat >/dev/null"))
	if got.Acked != 20 {
		t.Fatalf("consumed %d after the move back, want 20", got.Acked)
	}
}

// Bad input is refused with exit status 2 before anything moves, and a
// wrong password fails with 3, neither showing the password.
func TestCopyRefusesBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "q", "--message", "1")
	for _, tt := range []struct {
		name string
		args []string
		code int
		text string
	}{
		{"no --from", []string{"--to", "x.db"}, 2, "--from is required"},
		{"no --to", []string{"--from", e.db}, 2, "--to is required"},
		{"missing source file", []string{"--from", "nope.db", "--to", "x.db"}, 2, `--from "nope.db": no such file`},
		{"same file", []string{"--from", e.db, "--to", e.db}, 2, "same database"},
		{"unknown queue", []string{"--from", e.db, "--to", "x.db", "--queue", "nope"}, 2, `queue "nope"`},
		{"bad queue name", []string{"--from", e.db, "--to", "x.db", "--queue", "a/b"}, 2, `--queue "a/b"`},
		{"batch size", []string{"--from", e.db, "--to", "x.db", "--batch-size", "0"}, 2, "--batch-size must be 1..10000"},
		{"negative wait", []string{"--from", e.db, "--to", "x.db", "--wait", "-1s"}, 2, "--wait must be"},
		{"other URL", []string{"--from", e.db, "--to", "mysql://u:hunter2@h/db"}, 3, "--to"},
		{"unreachable", []string{"--from", e.db, "--to", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=5"}, 3, "u:xxxxx@127.0.0.1:1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(nil, append([]string{"copy"}, tt.args...)...)
			if r.Code != tt.code || !strings.Contains(r.Stderr, tt.text) || strings.Contains(r.Stdout+r.Stderr, "hunter2") {
				t.Fatalf("want exit %d naming %q, without the password\n%s", tt.code, tt.text, r)
			}
		})
	}
	if st := e.stats("q"); st.Ready != 1 || st.Paused {
		t.Fatalf("source after refused copies: %+v, want untouched", st)
	}
}

// A move killed with SIGKILL after the destination committed a batch and
// before the source deleted it leaves that batch in both databases; run
// again, it stores none of it twice and loses nothing. The test holds the
// source's body rows locked, so the move's delete waits, and kills it
// there.
func TestCopyKilledBetweenTheCommits(t *testing.T) {
	t.Parallel()
	const total, batch = 3000, 500
	pg := pgtest.NewDatabase(t)
	e := newEnv(t)
	dst := filepath.Join(e.dir, "moved.db")
	e.ok(strings.NewReader(jsonLines(total)), "--db", pg, "enqueue", "--queue", "q", "--file", "-")

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	hold, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, `SELECT 1 FROM daguq_bodies FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	move := e.command(nil, "copy", "--from", pg, "--to", dst, "--batch-size", fmt.Sprint(batch))
	if err := move.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !fileHasReady(dst, "q", batch) {
		if time.Now().After(deadline) {
			move.Process.Kill()
			t.Fatal("the destination did not get the first batch within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	move.Process.Kill() // SIGKILL between the destination's commit and the source's
	move.Wait()
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	src, to := openMover(t, pg), openMover(t, dst)
	noneLostOrTwice(t, src, to, "q", total, batch)

	r := e.run(nil, "copy", "--from", pg, "--to", dst, "--batch-size", fmt.Sprint(batch))
	s := decode[copySummary](t, r)
	if r.Code != 0 || !s.Complete || s.Queues[0].Resumed != batch || s.Queues[0].Ready != total-batch {
		t.Fatalf("the second run: %+v\n%s", s, r)
	}
	noneLostOrTwice(t, src, to, "q", total, 0)
	if st, _ := src.Stats(ctx, "q"); st.Ready != 0 {
		t.Fatalf("source after the second run: %+v", st)
	}
}

// fileHasReady reports whether the SQLite file holds at least n ready
// messages in queue (false while it cannot be read yet).
func fileHasReady(path, queue string, n int64) bool {
	st, err := queuestore.Open(path, queuestore.Options{})
	if err != nil {
		return false
	}
	defer st.Close()
	stats, err := st.Stats(context.Background(), queue)
	return err == nil && stats.Ready >= n
}

// Moves from a SQLite file killed with SIGKILL between the destination's
// commit and the source's, each run again, end with every message moved
// once. Each run is frozen (SIGSTOP) at random moments until the databases
// show it in that window (the destination holds a batch the source still
// has), then killed; after each kill nothing is lost and nothing is twice
// in one database.
func TestCopyKilledAtRandomMoments(t *testing.T) {
	t.Parallel()
	const total, delayed, kills = 9000, 200, 6
	pg := pgtest.NewDatabase(t)
	e := newEnv(t)
	e.ok(strings.NewReader(jsonLines(total-delayed)), "enqueue", "--queue", "q", "--file", "-")
	var later strings.Builder
	for i := total - delayed; i < total; i++ {
		fmt.Fprintf(&later, "{\"n\":%d}\n", i)
	}
	e.ok(strings.NewReader(later.String()), "enqueue", "--queue", "q", "--file", "-", "--delay", "1h")
	src, dst := openMover(t, e.db), openMover(t, pg)
	source, err := src.StoreID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// inBoth is how many messages both databases hold, by the origin
	// records of the destination and what the source still has.
	inBoth := func() int {
		origins, err := dst.Origins(context.Background(), source, "q", 0, queuestore.MaxClaim)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, len(origins))
		for i, o := range origins {
			ids[i] = o.SourceID
		}
		present, err := src.Present(context.Background(), "q", ids)
		if err != nil {
			t.Fatal(err)
		}
		return len(present)
	}
	for kill := range kills {
		move := e.command(nil, "copy", "--from", e.db, "--to", pg, "--batch-size", "100")
		if err := move.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- move.Wait() }()
		// Let it move a share more than the last run, then freeze it again
		// and again, letting it run a few hundred microseconds in between,
		// until it is frozen between the two commits.
		threshold := int64(total) * int64(kill+1) / (kills + 2)
		ended := func() {
			select {
			case err := <-done:
				t.Fatalf("run %d ended before its kill: %v", kill, err)
			default:
			}
		}
		for {
			ended()
			if st, err := dst.Stats(context.Background(), "q"); err == nil && st.Ready+st.Delayed >= threshold {
				break
			}
			time.Sleep(time.Millisecond)
		}
		for tries := 0; ; tries++ {
			ended()
			if tries > 20000 {
				move.Process.Kill()
				t.Fatalf("run %d: not frozen between the two commits in %d tries", kill, tries)
			}
			move.Process.Signal(syscall.SIGSTOP)
			waitStopped(t, move.Process.Pid)
			if inBoth() > 0 {
				break
			}
			move.Process.Signal(syscall.SIGCONT)
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		}
		move.Process.Kill() // SIGKILL, frozen between the destination's commit and the source's
		<-done
		n := inBoth()
		if n == 0 {
			t.Fatalf("run %d: killed in the window, yet no message is in both databases", kill)
		}
		noneLostOrTwice(t, src, dst, "q", total, n)
	}
	r := e.run(nil, "copy", "--from", e.db, "--to", pg, "--batch-size", "100")
	if s := decode[copySummary](t, r); r.Code != 0 || !s.Complete || s.Queues[0].Resumed != 100 {
		t.Fatalf("the last run: want complete, with the batch the last kill left in both resumed: %+v\n%s", s, r)
	}
	noneLostOrTwice(t, src, dst, "q", total, 0)
	if st, _ := dst.Stats(context.Background(), "q"); st.Ready != total-delayed || st.Delayed != delayed {
		t.Fatalf("destination %+v, want %d ready and %d delayed", st, total-delayed, delayed)
	}
}

// SIGINT stops a move between batches with exit status 4: the batch under
// way finishes, so nothing is in both databases, and a second run moves
// the rest.
func TestCopyStopsOnSIGINT(t *testing.T) {
	t.Parallel()
	const total = 5000
	e := newEnv(t)
	dst := filepath.Join(e.dir, "moved.db")
	e.ok(strings.NewReader(jsonLines(total)), "enqueue", "--queue", "q", "--file", "-")
	move := e.command(nil, "copy", "--from", e.db, "--to", dst, "--batch-size", "5")
	var stdout strings.Builder
	stderr := &syncBuffer{}
	move.Stdout, move.Stderr = &stdout, stderr
	if err := move.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first progress line", stderr, func() bool { return strings.Contains(stderr.String(), "moved") })
	move.Process.Signal(syscall.SIGINT)
	err := move.Wait()
	if code := move.ProcessState.ExitCode(); code != 4 || !strings.Contains(stderr.String(), "run the same command again") {
		t.Fatalf("after SIGINT: exit %d (%v), want 4 saying to run again\n%s", code, err, stderr)
	}
	var s copySummary
	if err := json.Unmarshal([]byte(stdout.String()), &s); err != nil || s.Complete || s.Queues[0].Ready == 0 || s.Queues[0].Ready == total {
		t.Fatalf("summary after SIGINT: %+v %v\n%s", s, err, stdout.String())
	}
	src, to := openMover(t, e.db), openMover(t, dst)
	noneLostOrTwice(t, src, to, "q", total, 0)
	r := e.run(nil, "copy", "--from", e.db, "--to", dst, "--batch-size", "5")
	if s2 := decode[copySummary](t, r); r.Code != 0 || s2.Queues[0].Ready+s.Queues[0].Ready != total {
		t.Fatalf("second run: %+v\n%s", s2, r)
	}
	noneLostOrTwice(t, src, to, "q", total, 0)
}

// waitStopped waits until the process pid is stopped by a signal (its state
// in /proc is T), or a moment where /proc cannot say.
func waitStopped(tb testing.TB, pid int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			return
		}
		// The state follows the command name in parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'T' || stat[i+2] == 't') {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
	tb.Fatalf("process %d not stopped 10 s after SIGSTOP", pid)
}
