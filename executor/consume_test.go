package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// copyHandler copies each batch file into out/ under its batch id.
const copyHandler = `mkdir -p out && cp "$DAGUQ_BATCH_FILE" "out/$DAGUQ_BATCH_ID"` + "\n"

// handledBatches reads the batches copyHandler saved.
func handledBatches(tb testing.TB, dir string) [][]ClaimedMessage {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*"))
	var batches [][]ClaimedMessage
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			tb.Fatal(err)
		}
		var batch []ClaimedMessage
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var m ClaimedMessage
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				tb.Fatalf("%s: %v", f, err)
			}
			batch = append(batch, m)
		}
		fh.Close()
		batches = append(batches, batch)
	}
	return batches
}

func TestConsumeDrainHandlesEveryMessageOnce(t *testing.T) {
	t.Parallel()
	te := setup(t)
	ids := te.enqueueN("jobs", 200)
	te.script("h.sh", copyHandler)
	r := te.run(KindQueue, map[string]any{"queue": "jobs", "batch_size": "7", "concurrency": 4, "run": "./h.sh"})
	wantExit(t, r.err, 0)
	s := consumeSummary(t, r)
	if s.Acked != 200 || s.Messages != 200 || s.Batches != 29 || s.Retried+s.Dead+s.Released+s.Lost != 0 {
		t.Fatalf("summary %+v", s)
	}
	assertHandledOnceAndDrained(t, te, "jobs", ids, 7)
}

// assertHandledOnceAndDrained checks that copyHandler saw each of ids once,
// in batches of at most batchSize, and that queue is empty.
func assertHandledOnceAndDrained(t *testing.T, te *testEnv, queue string, ids []int64, batchSize int) {
	t.Helper()
	seen := map[int64]int{}
	for _, b := range handledBatches(t, te.dir) {
		if len(b) > batchSize {
			t.Errorf("batch of %d messages, batch_size %d", len(b), batchSize)
		}
		for _, m := range b {
			seen[m.ID]++
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("message %d handled %d times", id, seen[id])
		}
	}
	if st := te.stats(queue); st.Ready+st.InFlight+st.Delayed+st.Dead != 0 {
		t.Fatalf("queue not empty after drain: %+v", st)
	}
}

func TestHandlerContract(t *testing.T) {
	t.Parallel()
	te := setup(t)
	s := te.store()
	res, err := s.Enqueue(context.Background(),
		queuestore.NewMessage{Queue: "mail", Body: []byte(`{"to":"a@b.c","text":"it's $HOME; rm -rf /"}`), Priority: 3, Group: "g1"},
		queuestore.NewMessage{Queue: "mail", Body: []byte(`"plain"`), Priority: 3, Group: "g1"})
	if err != nil {
		t.Fatal(err)
	}
	te.script("h.sh", `cat > stdin.jsonl
cp "$DAGUQ_BATCH_FILE" batchfile.jsonl
env | grep -E '^(DAGUQ_|STEP_VAR=)' | sort > env.txt
for a in "$@"; do printf '%s\n' "$a"; done > args.txt
echo "handler says hi"
`)
	for _, form := range []struct {
		name string
		run  any
	}{
		{"argv", []any{"./h.sh", "{batch_file}", "{result_file}", "{batch_id}", "{queue}", "{attempt}", "{batch_size}", "x{batch_size}y"}},
		{"line", "./h.sh {batch_file} {result_file} {batch_id} {queue} {attempt} {batch_size} x{batch_size}y"},
	} {
		t.Run(form.name, func(t *testing.T) {
			if form.name == "line" { // the argv run acked them: enqueue again
				if _, err := s.Enqueue(context.Background(),
					queuestore.NewMessage{Queue: "mail", Body: []byte(`{"to":"a@b.c","text":"it's $HOME; rm -rf /"}`), Priority: 3, Group: "g1"},
					queuestore.NewMessage{Queue: "mail", Body: []byte(`"plain"`), Priority: 3, Group: "g1"}); err != nil {
					t.Fatal(err)
				}
			}
			e := te.exec(KindQueue, map[string]any{"queue": "mail", "run": form.run}, func(sp *Spec) {
				sp.Env = []string{"STEP_VAR=from-spec"}
			})
			r := runExecutor(t, e, context.Background())
			wantExit(t, r.err, 0)
			if sum := consumeSummary(t, r); sum.Acked != 2 {
				t.Fatalf("summary %+v", sum)
			}
			if strings.Contains(r.stdout, "handler says hi") || !strings.Contains(r.stderr, "handler says hi") {
				t.Fatalf("handler stdout must go to stderr only\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
			}
			stdin, _ := os.ReadFile(filepath.Join(te.dir, "stdin.jsonl"))
			file, _ := os.ReadFile(filepath.Join(te.dir, "batchfile.jsonl"))
			if string(stdin) != string(file) {
				t.Fatalf("stdin and DAGUQ_BATCH_FILE differ:\n%s\n%s", stdin, file)
			}
			lines := strings.Split(strings.TrimSpace(string(stdin)), "\n")
			if len(lines) != 2 {
				t.Fatalf("want 2 lines, got %q", stdin)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"id", "queue", "priority", "attempt", "group", "enqueued_at", "body"} {
				if _, ok := m[key]; !ok {
					t.Errorf("batch line lacks %q: %s", key, lines[0])
				}
			}
			if m["queue"] != "mail" || m["priority"] != 3.0 || m["attempt"] != 1.0 || m["group"] != "g1" {
				t.Errorf("batch line %s", lines[0])
			}
			if body := m["body"].(map[string]any); body["to"] != "a@b.c" {
				t.Errorf("body %v", body)
			}
			env, _ := os.ReadFile(filepath.Join(te.dir, "env.txt"))
			vars := map[string]string{}
			for _, kv := range strings.Split(strings.TrimSpace(string(env)), "\n") {
				k, v, _ := strings.Cut(kv, "=")
				vars[k] = v
			}
			if vars["DAGUQ_QUEUE"] != "mail" || vars["DAGUQ_BATCH_SIZE"] != "2" || vars["DAGUQ_ATTEMPT"] != "1" ||
				vars["STEP_VAR"] != "from-spec" || vars["DAGUQ_BATCH_ID"] == "" || vars["DAGUQ_RESULT_FILE"] == "" {
				t.Errorf("environment %v", vars)
			}
			args, _ := os.ReadFile(filepath.Join(te.dir, "args.txt"))
			want := strings.Join([]string{vars["DAGUQ_BATCH_FILE"], vars["DAGUQ_RESULT_FILE"], vars["DAGUQ_BATCH_ID"], "mail", "1", "2", "x2y"}, "\n") + "\n"
			if string(args) != want {
				t.Errorf("placeholders: got args\n%s\nwant\n%s", args, want)
			}
		})
	}
	_ = res
}

func TestShellQuotePlaceholders(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"plain", "/tmp/with space/x", "it's", "", "a'b\"c$d`e"} {
		got := shellQuote(s)
		out, err := execShell("printf %s " + got)
		if err != nil || out != s {
			t.Errorf("shellQuote(%q) = %s: shell printed %q (%v)", s, got, out, err)
		}
	}
}

func TestPartialSuccessThroughResultFile(t *testing.T) {
	t.Parallel()
	te := setup(t)
	ids := te.enqueueN("q", 5)
	te.script("h.sh", `set -- $(sed 's/^{"id":\([0-9]*\),.*/\1/' "$DAGUQ_BATCH_FILE")
echo "$1" > "$DAGUQ_RESULT_FILE"
echo "{\"id\":$2,\"error\":\"mailbox full\"}" >> "$DAGUQ_RESULT_FILE"
`)
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "mode": "once", "backoff": "1h"})
	wantExit(t, r.err, 0)
	s := consumeSummary(t, r)
	if s.Acked != 3 || s.Retried != 2 {
		t.Fatalf("summary %+v", s)
	}
	delayed := te.peek("q", queuestore.StateDelayed)
	errs := map[int64]string{}
	for _, m := range delayed {
		errs[m.ID] = m.LastError
	}
	if len(errs) != 2 || errs[ids[1]] != "mailbox full" || errs[ids[0]] == "" {
		t.Fatalf("retried messages and errors: %v", errs)
	}
}

func TestBrokenResultFileNacksWholeBatch(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 3)
	te.script("h.sh", `echo "not-an-id" > "$DAGUQ_RESULT_FILE"`+"\n")
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "mode": "once", "backoff": "1h"})
	wantExit(t, r.err, 0)
	if s := consumeSummary(t, r); s.Acked != 0 || s.Retried != 3 {
		t.Fatalf("summary %+v", s)
	}
	for _, m := range te.peek("q", queuestore.StateDelayed) {
		if !strings.Contains(m.LastError, "result file") {
			t.Errorf("last error %q", m.LastError)
		}
	}
}

func TestFailingHandlerRetriesThenDeadLetters(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 1)
	te.script("h.sh", "echo 'smtp said no' >&2\nexit 3\n")
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "max_attempts": 2, "backoff": "none", "fail_on": "dead"})
	wantExit(t, r.err, ExitHandlerFailed)
	s := consumeSummary(t, r)
	if s.Batches != 2 || s.Retried != 1 || s.Dead != 1 {
		t.Fatalf("summary %+v", s)
	}
	dead := te.peek("q", queuestore.StateDead)
	if len(dead) != 1 || dead[0].Attempt != 2 || !strings.Contains(dead[0].LastError, "exit status 3") || !strings.Contains(dead[0].LastError, "smtp said no") {
		t.Fatalf("dead letters %+v", dead)
	}
}

func TestBatchTimeoutKillsHandlerAndNacks(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 2)
	te.script("h.sh", "echo started > started\nsleep 30\n")
	start := time.Now()
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "mode": "once", "batch_timeout": "300ms", "grace": "5s", "backoff": "none"})
	wantExit(t, r.err, 0)
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("batch_timeout took %s: the handler group did not die on SIGTERM", d)
	}
	if s := consumeSummary(t, r); s.Retried != 2 || s.Acked != 0 {
		t.Fatalf("summary %+v", s)
	}
	ready := te.peek("q", queuestore.StateReady)
	if len(ready) != 2 || ready[0].Attempt != 1 || !strings.Contains(ready[0].LastError, "batch_timeout") {
		t.Fatalf("messages after timeout: %+v", ready)
	}
}

// TestKillDuringHandler stops a step as Dagu does: Kill(SIGTERM) from another
// goroutine while handlers run, the context left alone.
func TestKillDuringHandler(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 20)
	marks := filepath.Join(te.dir, "marks")
	os.Mkdir(marks, 0o755)
	// The loop keeps the script from ending before its trap runs.
	te.script("h.sh", `trap 'echo term > "marks/term.$DAGUQ_BATCH_ID"; exit 143' TERM
touch "marks/started.$DAGUQ_BATCH_ID"
while :; do sleep 1; done
`)
	const grace = 5 * time.Second
	e := te.exec(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "batch_size": 5, "concurrency": 2, "grace": grace.String()}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitMarks(t, marks, "started.", 2)
	killed := time.Now()
	go e.Kill(syscall.SIGTERM)
	var r result
	select {
	case r = <-done:
	case <-time.After(grace + 5*time.Second):
		t.Fatal("Run did not return after Kill")
	}
	if d := time.Since(killed); d > grace {
		t.Fatalf("Run returned %s after Kill, grace is %s", d, grace)
	}
	wantExit(t, r.err, ExitStopped)
	s := consumeSummary(t, r)
	// The two running batches, and the next one when it was claimed ahead.
	if !s.Stopped || s.Batches != 2 || (s.Released != 10 && s.Released != 15) || s.Acked+s.Retried+s.Dead != 0 {
		t.Fatalf("summary %+v", s)
	}
	if n := countMarks(t, marks, "term."); n != 2 {
		m, _ := filepath.Glob(filepath.Join(marks, "*"))
		t.Fatalf("%d handlers got SIGTERM, want 2\nstderr: %s\nsummary: %s\nmarks: %v", n, r.stderr, r.stdout, m)
	}
	assertAllReadyUnspent(t, te, "q", 20)
}

// TestKillEscalatesToSIGKILL: a handler that ignores SIGTERM dies after grace.
func TestKillEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 3)
	te.script("h.sh", "trap '' TERM\ntouch started\nsleep 30\n")
	e := te.exec(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "grace": "300ms"}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitFile(t, filepath.Join(te.dir, "started"), 10*time.Second)
	e.Kill(syscall.SIGTERM)
	select {
	case r := <-done:
		wantExit(t, r.err, ExitStopped)
		if s := consumeSummary(t, r); s.Released != 3 {
			t.Fatalf("summary %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return: SIGKILL after grace did not happen")
	}
	assertAllReadyUnspent(t, te, "q", 3)
}

// TestContextCancelStopsLikeKill: Dagu's step timeout cancels the context.
func TestContextCancelStopsLikeKill(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 4)
	te.script("h.sh", "touch started\nsleep 30\n")
	e := te.exec(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "batch_size": 2}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, ctx) }()
	waitFile(t, filepath.Join(te.dir, "started"), 10*time.Second)
	cancel()
	select {
	case r := <-done:
		wantExit(t, r.err, ExitStopped)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the context was cancelled")
	}
	assertAllReadyUnspent(t, te, "q", 4)
}

// TestKillReleasesLingeringBatch: messages held for max_wait go back too.
func TestKillReleasesLingeringBatch(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 5)
	e := te.exec(KindQueue, map[string]any{"queue": "q", "run": "true", "batch_size": 100, "max_wait": "1h", "poll_interval": "20ms"}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	for te.stats("q").InFlight != 5 {
		if time.Now().After(deadline) {
			t.Fatal("messages never claimed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.Kill(syscall.SIGTERM)
	r := <-done
	wantExit(t, r.err, ExitStopped)
	if s := consumeSummary(t, r); s.Batches != 0 || s.Released != 5 {
		t.Fatalf("summary %+v", s)
	}
	assertAllReadyUnspent(t, te, "q", 5)
}

func TestKillBeforeRun(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 2)
	e := te.exec(KindQueue, map[string]any{"queue": "q", "run": "true"}, nil)
	e.Kill(syscall.SIGTERM)
	r := runExecutor(t, e, context.Background())
	wantExit(t, r.err, ExitStopped)
	assertAllReadyUnspent(t, te, "q", 2)
}

func TestHeartbeatKeepsLeaseOfSlowHandler(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 1)
	te.script("h.sh", "touch started\nsleep 2.5\n")
	e := te.exec(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "lease": "1s", "progress_interval": "500ms"}, nil)
	done := make(chan result, 1)
	go func() { done <- runExecutor(t, e, context.Background()) }()
	waitFile(t, filepath.Join(te.dir, "started"), 10*time.Second)
	time.Sleep(1500 * time.Millisecond) // past the first lease end
	lease, err := te.store().Claim(context.Background(), queuestore.ClaimOptions{Queue: "q", Max: 1})
	if err != nil {
		t.Fatal(err)
	}
	if lease != nil {
		t.Fatal("another consumer claimed a message whose handler is still running: no heartbeat")
	}
	r := <-done
	wantExit(t, r.err, 0)
	if s := consumeSummary(t, r); s.Acked != 1 || s.Lost != 0 {
		t.Fatalf("summary %+v", s)
	}
	if !strings.Contains(r.stderr, "daguq: queue q: 1 batches, 1 messages") || !strings.Contains(r.stderr, "messages/s") {
		t.Fatalf("no progress line on stderr: %q", r.stderr)
	}
}

func TestLingerCompletesBatchByWait(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 3)
	te.script("h.sh", copyHandler)
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "batch_size": 10, "max_wait": "200ms", "poll_interval": "50ms", "mode": "once"})
	wantExit(t, r.err, 0)
	if s := consumeSummary(t, r); s.Batches != 1 || s.Acked != 3 {
		t.Fatalf("summary %+v", s)
	}
}

func TestGroupByGivesOneGroupPerBatch(t *testing.T) {
	t.Parallel()
	te := setup(t)
	var msgs []queuestore.NewMessage
	for i, g := range []string{"a", "b", "a", "c", "b", "a"} {
		msgs = append(msgs, queuestore.NewMessage{Queue: "q", Body: []byte(itoa(i)), Group: g})
	}
	if _, err := te.store().Enqueue(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	te.script("h.sh", copyHandler)
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "group_by": "true", "batch_size": 10})
	wantExit(t, r.err, 0)
	batches := handledBatches(t, te.dir)
	var sizes []string
	for _, b := range batches {
		for _, m := range b {
			if m.Group != b[0].Group {
				t.Fatalf("batch mixes groups %q and %q", b[0].Group, m.Group)
			}
		}
		sizes = append(sizes, b[0].Group+":"+itoa(len(b)))
	}
	sort.Strings(sizes)
	if strings.Join(sizes, " ") != "a:3 b:2 c:1" {
		t.Fatalf("batches %v", sizes)
	}
}

func TestLimitsAndPriorityBand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		config   map[string]any
		messages int
	}{
		{"max_batches", map[string]any{"batch_size": 10, "max_batches": 2}, 20},
		{"max_messages", map[string]any{"batch_size": 10, "max_messages": 15}, 15},
		{"once", map[string]any{"batch_size": 10, "mode": "once"}, 10},
		{"min_priority", map[string]any{"batch_size": 100, "min_priority": 1}, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			te := setup(t)
			var msgs []queuestore.NewMessage
			for i := 0; i < 50; i++ {
				msgs = append(msgs, queuestore.NewMessage{Queue: "q", Body: []byte("{}"), Priority: int64(i % 2)})
			}
			if _, err := te.store().Enqueue(context.Background(), msgs...); err != nil {
				t.Fatal(err)
			}
			cfg := map[string]any{"queue": "q", "run": "true"}
			for k, v := range tc.config {
				cfg[k] = v
			}
			r := te.run(KindQueue, cfg)
			wantExit(t, r.err, 0)
			if s := consumeSummary(t, r); s.Acked != tc.messages {
				t.Fatalf("acked %d, want %d (%+v)", s.Acked, tc.messages, s)
			}
			if st := te.stats("q"); st.Ready != int64(50-tc.messages) || st.InFlight != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestSkippedReasons(t *testing.T) {
	t.Parallel()
	te := setup(t)
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": "true"})
	wantExit(t, r.err, 0)
	if s := consumeSummary(t, r); s.SkippedReason != "empty" {
		t.Fatalf("summary %+v", s)
	}
	te.enqueueN("q", 1)
	if err := te.store().Pause(context.Background(), "q"); err != nil {
		t.Fatal(err)
	}
	r = te.run(KindQueue, map[string]any{"queue": "q", "run": "true"})
	if s := consumeSummary(t, r); s.SkippedReason != "paused" || s.Batches != 0 {
		t.Fatalf("summary %+v", s)
	}
	r = te.run(KindQueue, map[string]any{"queue": "empty", "run": "true", "mode": "watch", "poll_interval": "20ms", "idle_timeout": "100ms"})
	wantExit(t, r.err, 0)
	if s := consumeSummary(t, r); s.SkippedReason != "empty" {
		t.Fatalf("watch summary %+v", s)
	}
}

func TestScriptHandlerAndShell(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 3)
	r := te.run(KindQueue, map[string]any{"queue": "q", "script": "n=$(wc -l < \"$DAGUQ_BATCH_FILE\")\necho \"$n\" > count.txt\n", "shell": "sh -e"})
	wantExit(t, r.err, 0)
	b, _ := os.ReadFile(filepath.Join(te.dir, "count.txt"))
	if strings.TrimSpace(string(b)) != "3" {
		t.Fatalf("script saw %q lines", b)
	}
}

func TestStepCommandIsFallbackHandler(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 2)
	e := te.exec(KindQueue, map[string]any{"queue": "q"}, func(s *Spec) { s.Command = "cat > got.jsonl" })
	r := runExecutor(t, e, context.Background())
	wantExit(t, r.err, 0)
	if n := countLines(t, filepath.Join(te.dir, "got.jsonl")); n != 2 {
		t.Fatalf("handler got %d lines", n)
	}
}

func waitMarks(tb testing.TB, dir, prefix string, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for countMarks(tb, dir, prefix) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("only %d of %d %s markers", countMarks(tb, dir, prefix), n, prefix)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func countMarks(tb testing.TB, dir, prefix string) int {
	m, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	return len(m)
}

// assertAllReadyUnspent checks that all n messages are ready with no
// attempt spent: nothing lost, nothing in flight.
func assertAllReadyUnspent(tb testing.TB, te *testEnv, queue string, n int) {
	tb.Helper()
	st := te.stats(queue)
	if st.Ready != int64(n) || st.InFlight != 0 || st.Delayed != 0 || st.Dead != 0 {
		tb.Fatalf("want %d ready, got %+v", n, st)
	}
	for _, m := range te.peek(queue, queuestore.StateReady) {
		if m.Attempt != 0 {
			tb.Fatalf("message %d has attempt %d after release, want 0", m.ID, m.Attempt)
		}
	}
}

var shellMu sync.Mutex

func execShell(line string) (string, error) {
	shellMu.Lock()
	defer shellMu.Unlock()
	out, err := execCommand("sh", "-c", line)
	return out, err
}
