package cli_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/daguq/daguq/queuestore"
)

// spanHandler is a handler (argv, no shell text from messages) that
// appends "<ns> +1" when it starts and "<ns> -1" when it ends to file, and
// runs for about 150 ms in between.
func spanHandler(file string) []string {
	return []string{"sh", "-c", `echo "$(date +%s%N) 1" >> "$0"; sleep 0.15; echo "$(date +%s%N) -1" >> "$0"`, file}
}

// mostAtOnce reads a spanHandler file and returns the most handlers that
// ran at one time, and how many ran in all.
func mostAtOnce(tb testing.TB, file string) (most, runs int) {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	type event struct{ at, step int64 }
	var events []event
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			tb.Fatalf("bad span line %q", line)
		}
		at, _ := strconv.ParseInt(f[0], 10, 64)
		step, _ := strconv.ParseInt(f[1], 10, 64)
		events = append(events, event{at, step})
		if step > 0 {
			runs++
		}
	}
	// Ends before starts at the same instant.
	sort.Slice(events, func(i, j int) bool {
		if events[i].at != events[j].at {
			return events[i].at < events[j].at
		}
		return events[i].step < events[j].step
	})
	var now int64
	for _, e := range events {
		now += e.step
		most = max(most, int(now))
	}
	return most, runs
}

// `daguq limit Q 2` means at most 2 handler runs at once across every
// consumer of Q, whatever cuts the batches: two consumer processes with
// concurrency 3 each, one cutting batches by bytes, one by linger while a
// producer trickles messages in.
func TestInFlightLimitCapsHandlerRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "capped", "--messages", `["seed"]`)
	e.ok(nil, "limit", "capped", "2")
	var bodies []string
	for i := range 40 {
		bodies = append(bodies, strconv.Quote(strings.Repeat("x", 5+i%7)))
	}
	e.ok(nil, "enqueue", "--queue", "capped", "--messages", "["+strings.Join(bodies, ",")+"]")
	spans := filepath.Join(e.dir, "spans")

	stopProducer := make(chan struct{})
	var producer sync.WaitGroup
	producer.Add(1)
	go func() {
		defer producer.Done()
		for i := 0; ; i++ {
			select {
			case <-stopProducer:
				return
			case <-time.After(30 * time.Millisecond):
			}
			e.ok(nil, "enqueue", "--queue", "capped", "--message", fmt.Sprintf(`"late %d"`, i))
			if i == 20 {
				return
			}
		}
	}()
	consumers := [][]string{
		// Batches cut by bytes: up to 4 messages, but at most 12 bytes.
		{"--batch-size", "4", "--max-bytes", "12", "--concurrency", "3"},
		// Batches cut by linger: claims add to a batch for up to 300 ms.
		{"--batch-size", "50", "--max-wait", "300ms", "--concurrency", "3"},
	}
	var wg sync.WaitGroup
	for i, flags := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"consume", "--queue", "capped", "--mode", "watch", "--idle-timeout", "2s",
				"--lease", "5s", "--consumer", fmt.Sprint("c", i), "--progress-interval", "0s"}, flags...)
			r := e.run(nil, append(append(args, "--"), spanHandler(spans)...)...)
			if r.Code != 0 {
				t.Errorf("consumer %d: %s", i, r)
			}
		}()
	}
	producer.Wait()
	wg.Wait()
	close(stopProducer)
	most, runs := mostAtOnce(t, spans)
	if most > 2 {
		t.Errorf("%d handlers ran at once under limit 2", most)
	}
	if s := e.stats("capped"); s.Ready+s.InFlight+s.Delayed != 0 {
		t.Errorf("messages left: %+v", s)
	}
	t.Logf("%d handler runs, at most %d at once", runs, most)
}

// The case that broke before: limit 1 with max_bytes cutting one claim's
// messages into several batches that ran at once.
func TestInFlightLimitOneWithMaxBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "one", "--messages", `["a","b","c","d","e","f","g","h"]`)
	e.ok(nil, "limit", "one", "1")
	spans := filepath.Join(e.dir, "spans")
	e.ok(nil, append([]string{"consume", "--queue", "one", "--batch-size", "4", "--max-bytes", "1",
		"--concurrency", "4", "--progress-interval", "0s", "--"}, spanHandler(spans)...)...)
	most, runs := mostAtOnce(t, spans)
	if most != 1 || runs != 8 {
		t.Errorf("%d runs, %d at once: want 8 runs of one message, one at a time", runs, most)
	}
}

// A lease that another claim takes over in part, while the consumer was
// stopped past its lease, is noticed by the heartbeat; when the handler
// ends, the consumer acks what it still holds and reports the rest as lost.
func TestPartTakeoverIsNoticedAndTheRestAcked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "part", "--messages", `["a","b","c"]`)
	started := filepath.Join(e.dir, "started")
	cmd := e.command(nil, "consume", "--queue", "part", "--mode", "once", "--batch-size", "3", "--lease", "1s",
		"--progress-interval", "0s", "--", "sh", "-c", `touch "$0"; sleep 3`, started)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForFile(t, started, cmd)
	cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(1500 * time.Millisecond) // past the lease

	// Another consumer takes one message of the batch and acks it.
	s, err := queuestore.Open(e.db, queuestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other, err := s.Claim(ctx, queuestore.ClaimOptions{Queue: "part", Max: 1})
	if err != nil || other == nil {
		t.Fatalf("takeover claim: %v %v", other, err)
	}
	if err := s.Ack(ctx, other); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cmd.Process.Signal(syscall.SIGCONT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("consume: %v\n%s", err, stderr.String())
	}
	var sum struct {
		Acked, Lost int
	}
	if err := json.Unmarshal([]byte(stdout.String()), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Acked != 2 || sum.Lost != 1 {
		t.Errorf("summary %s: want 2 acked and 1 lost", stdout.String())
	}
	if !strings.Contains(stderr.String(), "taken over by another claim") {
		t.Errorf("stderr does not report the takeover:\n%s", stderr.String())
	}
	if st := e.stats("part"); st.Ready+st.InFlight+st.Delayed != 0 {
		t.Errorf("after the batch: %+v, want every message finished once", st)
	}
}

// Reads answer at once while another process holds the write lock; a write
// that waits says so on stderr, naming the database.
func TestReadsAnswerAndWritesSayTheyWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "locked", "--message", `"m"`)
	db, err := sql.Open("sqlite3", "file:"+e.db+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE queues SET paused = paused`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, args := range [][]string{{"stats", "locked"}, {"peek", "locked"}, {"dlq", "list", "locked"}} {
		e.ok(nil, args...)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("reads took %s while another process held the write lock", took)
	}
	go func() {
		time.Sleep(2 * time.Second)
		tx.Rollback()
	}()
	r := e.ok(nil, "enqueue", "--queue", "locked", "--message", `"m2"`)
	if !strings.Contains(r.Stderr, "waiting") || !strings.Contains(r.Stderr, e.db) {
		t.Errorf("enqueue waited without saying so: %s", r)
	}
}

func waitForFile(tb testing.TB, path string, cmd interface{ String() string }) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not appear (%s)", path, cmd)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
