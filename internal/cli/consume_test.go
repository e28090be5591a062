package cli_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type enqueueSummary struct {
	Queue      string  `json:"queue"`
	Enqueued   int     `json:"enqueued"`
	Duplicates int     `json:"duplicates"`
	IDs        []int64 `json:"ids"`
}

type consumeSummary struct {
	Queue         string `json:"queue"`
	Batches       int    `json:"batches"`
	Messages      int    `json:"messages"`
	Acked         int    `json:"acked"`
	Retried       int    `json:"retried"`
	Dead          int    `json:"dead"`
	SkippedReason string `json:"skipped_reason"`
}

// delivered is one line of a batch as a handler gets it.
type delivered struct {
	ID       int64           `json:"id"`
	Queue    string          `json:"queue"`
	Priority int64           `json:"priority"`
	Attempt  int             `json:"attempt"`
	Body     json.RawMessage `json:"body"`
}

// recordHandler is a handler (argv, no shell) that saves every batch it gets
// to its own new file under dir.
func recordHandler(dir string) []string {
	return []string{"sh", "-c", `cat > "$(mktemp "$0/batch.XXXXXX")"`, dir}
}

// readDelivered reads every message that recordHandler saved under dir.
func readDelivered(tb testing.TB, dir string) []delivered {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "batch.*"))
	if err != nil {
		tb.Fatal(err)
	}
	var out []delivered
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var d delivered
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				tb.Fatalf("%s: a batch line is not JSON: %v: %q", f, err, sc.Text())
			}
			out = append(out, d)
		}
		fh.Close()
	}
	return out
}

func TestEnqueueConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.ok(nil, "enqueue", "--queue", "emails", "--message", `{"to": "a@example.com"}`, "--priority", "5")
	if s := decode[enqueueSummary](t, r); s.Queue != "emails" || s.Enqueued != 1 || len(s.IDs) != 1 {
		t.Fatalf("enqueue summary: %s", r)
	}
	e.ok(strings.NewReader(`{"to":"b@example.com"}`+"\n\n"+`{"to":"c@example.com"}`+"\n"), "enqueue", "--queue", "emails", "--file", "-")
	if s := e.stats("emails"); s.Ready != 3 {
		t.Fatalf("after enqueue: %+v", s)
	}

	out := filepath.Join(e.dir, "out")
	os.Mkdir(out, 0o700)
	r = e.ok(nil, append([]string{"consume", "--queue", "emails", "--batch-size", "2"}, append([]string{"--"}, recordHandler(out)...)...)...)
	summary := decode[consumeSummary](t, r)
	if summary.Batches != 2 || summary.Messages != 3 || summary.Acked != 3 {
		t.Errorf("consume summary: %s", r)
	}
	got := readDelivered(t, out)
	if len(got) != 3 {
		t.Fatalf("handled %d messages, want 3: %+v", len(got), got)
	}
	bodies := map[string]bool{}
	for _, d := range got {
		bodies[string(d.Body)] = true
		if d.Queue != "emails" || d.Attempt != 1 {
			t.Errorf("delivered %+v", d)
		}
	}
	for _, want := range []string{`{"to":"a@example.com"}`, `{"to":"b@example.com"}`, `{"to":"c@example.com"}`} {
		if !bodies[want] {
			t.Errorf("body %s not delivered; got %v", want, bodies)
		}
	}
	if s := e.stats("emails"); s.Ready+s.InFlight+s.Delayed+s.Dead != 0 {
		t.Errorf("after drain: %+v", s)
	}
}

// --with carries the whole with: map as JSON, as Dagu's step_types pass it:
// numbers as JSON numbers or as text, durations as "30s" or seconds, the
// handler as a list; flags given as well override its keys.
func TestWithJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.ok(nil, "enqueue", "--with", `{"queue":"w","messages":[{"id":12345678901234567890},{"n":2}],"priority":"7","delay":0}`)
	if s := decode[enqueueSummary](t, r); s.Enqueued != 2 {
		t.Fatalf("enqueue --with: %s", r)
	}
	out := filepath.Join(e.dir, "out")
	os.Mkdir(out, 0o700)
	run, _ := json.Marshal(recordHandler(out))
	with := `{"queue":"w","batch_size":1,"max_wait":0,"lease":"1m","concurrency":"2","run":` + string(run) + `}`
	r = e.ok(nil, "consume", "--with", with, "--batch-size", "2")
	if s := decode[consumeSummary](t, r); s.Batches != 1 || s.Acked != 2 {
		t.Errorf("--batch-size 2 should override batch_size 1 of --with: %s", r)
	}
	got := readDelivered(t, out)
	if len(got) != 2 || string(got[0].Body) != `{"id":12345678901234567890}` || got[0].Priority != 7 {
		t.Errorf("delivered %+v: want the big number exact and priority 7", got)
	}
}

func TestEnqueueRawAndStdin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "text", "--raw", "--message", `hello "world"`)
	// No --file: a pipe on stdin is read as JSON Lines, here raw lines.
	e.ok(strings.NewReader("line one\nline two\r\n"), "enqueue", "--queue", "text", "--raw")
	r := e.ok(nil, "peek", "text", "--json")
	var bodies []string
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		var m struct{ Body string }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("peek --json line %q: %v", line, err)
		}
		bodies = append(bodies, m.Body)
	}
	want := []string{`hello "world"`, "line one", "line two"}
	if fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Errorf("raw bodies = %q, want %q", bodies, want)
	}

	// JSON Lines from stdin, all or nothing: one bad line enqueues none.
	r = e.run(strings.NewReader("{\"n\":1}\n{\"n\":2\n{\"n\":3}\n"), "enqueue", "--queue", "json", "--file", "-")
	if r.Code != 2 || !strings.Contains(r.Stderr, "line 2") {
		t.Errorf("bad JSON line: want exit 2 naming line 2\n%s", r)
	}
	if s := e.stats("json"); s.Ready != 0 {
		t.Errorf("a failed bulk enqueue stored messages: %+v", s)
	}
	r = e.ok(strings.NewReader(jsonLines(500)), "enqueue", "--queue", "json", "--file", "-")
	if s := decode[enqueueSummary](t, r); s.Enqueued != 500 {
		t.Errorf("stdin JSON Lines: %s", r)
	}
	if s := e.stats("json"); s.Ready != 500 {
		t.Errorf("stats after 500 lines: %+v", s)
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "jobs", "--messages", `[{"ok":true},{"poison":true},{"ok":true}]`)
	// The handler fails the poison message by id, through the result file.
	script := `while IFS= read -r line; do case $line in *poison*) echo "$line" | sed 's/^{"id":\([0-9]*\).*/\1/' >> "$DAGUQ_RESULT_FILE";; esac; done`
	r := e.ok(nil, "consume", "--queue", "jobs", "--max-attempts", "2", "--backoff", "none", "--", "sh", "-c", script)
	if s := decode[consumeSummary](t, r); s.Acked != 2 || s.Dead != 1 {
		t.Fatalf("consume: %s", r)
	}
	list := e.ok(nil, "dlq", "list", "jobs")
	// ATTEMPT shows the limit the message died under: the consumer's 2.
	if !strings.Contains(list.Stdout, `{"poison":true}`) || !strings.Contains(list.Stdout, "failed") || !strings.Contains(list.Stdout, " 2/2 ") {
		t.Errorf("dlq list:\n%s", list.Stdout)
	}
	listJSON := e.ok(nil, "dlq", "list", "jobs", "--json")
	var dead struct {
		ID    int64
		State string
	}
	if err := json.Unmarshal([]byte(listJSON.Stdout), &dead); err != nil || dead.State != "dead" {
		t.Fatalf("dlq list --json: %v\n%s", err, listJSON)
	}

	r = e.ok(nil, "dlq", "redrive", "jobs", "--id", fmt.Sprint(dead.ID))
	if !strings.Contains(r.Stdout, "redrove 1") {
		t.Errorf("redrive: %s", r)
	}
	if s := e.stats("jobs"); s.Ready != 1 || s.Dead != 0 {
		t.Fatalf("after redrive: %+v", s)
	}
	out := filepath.Join(e.dir, "out")
	os.Mkdir(out, 0o700)
	e.ok(nil, append([]string{"consume", "--queue", "jobs", "--"}, recordHandler(out)...)...)
	if got := readDelivered(t, out); len(got) != 1 || got[0].Attempt != 1 || string(got[0].Body) != `{"poison":true}` {
		t.Errorf("redriven message delivered as %+v, want attempt 1 of the poison body", got)
	}

	// Dead again, then purged.
	e.ok(nil, "enqueue", "--queue", "jobs", "--message", `{"poison":true}`, "--max-attempts", "1")
	e.ok(nil, "consume", "--queue", "jobs", "--", "sh", "-c", "exit 1")
	if s := e.stats("jobs"); s.Dead != 1 {
		t.Fatalf("after a failing handler with max attempts 1: %+v", s)
	}
	if r := e.ok(nil, "dlq", "purge", "jobs", "--yes"); !strings.Contains(r.Stdout, "deleted 1") {
		t.Errorf("dlq purge: %s", r)
	}
	if s := e.stats("jobs"); s.Dead != 0 {
		t.Errorf("after dlq purge: %+v", s)
	}
}

// SIGTERM to daguq consume: the handler gets the signal, daguq exits 4
// within the grace period, and the batch is ready again, attempt not spent.
func TestConsumeStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "slow", "--messages", `[1,2,3]`)
	started := filepath.Join(e.dir, "started")
	cmd := e.command(nil, "consume", "--queue", "slow", "--batch-size", "3", "--grace", "2s", "--",
		"sh", "-c", `trap 'echo got-term >> "$0.term"; exit 143' TERM; touch "$0"; while :; do sleep 0.05; done`, started)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("handler did not start\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if took := time.Since(sent); took > 5*time.Second {
		t.Errorf("daguq took %s to stop after SIGTERM", took)
	}
	if code := cmd.ProcessState.ExitCode(); code != 4 {
		t.Errorf("exit %d (%v), want 4\n%s", code, err, stderr.String())
	}
	if b, _ := os.ReadFile(started + ".term"); !strings.Contains(string(b), "got-term") {
		t.Errorf("the handler did not get SIGTERM")
	}
	if s := e.stats("slow"); s.Ready != 3 || s.InFlight != 0 {
		t.Errorf("after stop: %+v, want 3 ready", s)
	}
	r := e.ok(nil, "peek", "slow", "--json")
	if strings.Count(r.Stdout, `"attempt":0`) != 3 {
		t.Errorf("released messages spent an attempt:\n%s", r.Stdout)
	}
}

// A second SIGTERM or SIGINT forces the stop: the handler ignores the
// first, grace is an hour, yet daguq exits 4 at once after the second, with
// the handler's whole tree gone and the batch released, attempt not spent.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cmd, done, stderr := startLeaveBehind(t, e, "--grace", "1h")
			pids := treePids(t, e.dir)
			t.Cleanup(func() { killTree(pids) })

			cmd.Process.Signal(sig)
			deadline := time.Now().Add(10 * time.Second)
			for {
				if b, _ := os.ReadFile(filepath.Join(e.dir, "term")); len(b) > 0 {
					break // the handler got the first signal and carries on
				}
				if time.Now().After(deadline) {
					t.Fatalf("the handler did not get the first %s\n%s", sig, stderr)
				}
				time.Sleep(10 * time.Millisecond)
			}
			select {
			case <-done:
				t.Fatalf("daguq exited (%v) after one signal while its handler runs and grace is 1h\n%s", cmd.ProcessState, stderr)
			case <-time.After(100 * time.Millisecond):
			}
			cmd.Process.Signal(sig)
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatalf("daguq still runs 15 s after a second %s\n%s", sig, stderr)
			}
			if code := cmd.ProcessState.ExitCode(); code != 4 {
				t.Errorf("exit %d, want 4\n%s", code, stderr)
			}
			if alive := aliveOf(pids); len(alive) > 0 {
				t.Errorf("after daguq exited: still alive: %v", alive)
			}
			if s := e.stats("tree"); s.Ready != 3 || s.InFlight != 0 {
				t.Errorf("after stop: %+v, want 3 ready", s)
			}
			if r := e.ok(nil, "peek", "tree", "--json"); strings.Count(r.Stdout, `"attempt":0`) != 3 {
				t.Errorf("released messages spent an attempt:\n%s", r.Stdout)
			}
		})
	}
}

// Four daguq consume processes drain one queue of 20,000 messages: every
// message handled exactly once (the lease is long enough that none expires,
// so a double delivery would be a bug).
func TestFourConsumersDrainOneQueue(t *testing.T) {
	t.Parallel()
	const total = 20_000
	e := newEnv(t)
	r := e.ok(strings.NewReader(jsonLines(total)), "enqueue", "--queue", "bulk", "--file", "-")
	if s := decode[enqueueSummary](t, r); s.Enqueued != total {
		t.Fatalf("enqueue: %d", s.Enqueued)
	}
	out := filepath.Join(e.dir, "out")
	os.Mkdir(out, 0o700)
	summaries := make([]consumeSummary, 4)
	var wg sync.WaitGroup
	for i := range summaries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"consume", "--queue", "bulk", "--batch-size", "200", "--concurrency", "2",
				"--lease", "10m", "--consumer", fmt.Sprintf("c%d", i), "--progress-interval", "0s", "--"}
			r := e.run(nil, append(args, recordHandler(out)...)...)
			if r.Code != 0 {
				t.Errorf("consumer %d: %s", i, r)
				return
			}
			summaries[i] = decode[consumeSummary](t, r)
		}()
	}
	wg.Wait()

	seenID := map[int64]int{}
	seenN := map[int]int{}
	for _, d := range readDelivered(t, out) {
		seenID[d.ID]++
		var body struct{ N int }
		json.Unmarshal(d.Body, &body)
		seenN[body.N]++
	}
	var doubles, missing int
	for n := range total {
		switch seenN[n] {
		case 0:
			missing++
		case 1:
		default:
			doubles++
		}
	}
	if missing != 0 || doubles != 0 || len(seenID) != total {
		t.Errorf("handled %d distinct ids; %d bodies missing, %d handled twice", len(seenID), missing, doubles)
	}
	sum, busy := 0, 0
	for _, s := range summaries {
		sum += s.Acked
		if s.Messages > 0 {
			busy++
		}
	}
	if sum != total {
		t.Errorf("summaries acked %d in all, want %d: %+v", sum, total, summaries)
	}
	t.Logf("acked per consumer: %d %d %d %d", summaries[0].Acked, summaries[1].Acked, summaries[2].Acked, summaries[3].Acked)
	if s := e.stats("bulk"); s.Ready+s.InFlight+s.Delayed+s.Dead != 0 {
		t.Errorf("after the drain: %+v", s)
	}
}
