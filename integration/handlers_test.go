package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// summary is the part of consume's stdout summary these tests read.
type summary struct {
	Batches  int    `json:"batches"`
	Messages int    `json:"messages"`
	Acked    int    `json:"acked"`
	Retried  int    `json:"retried"`
	Dead     int    `json:"dead"`
	Released int    `json:"released"`
	Lost     int    `json:"lost"`
	Skipped  string `json:"skipped_reason"`
	Stopped  bool   `json:"stopped"`
}

func decodeSummary(tb testing.TB, r result) summary {
	tb.Helper()
	var s summary
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		tb.Fatalf("consume summary: %v\n%s", err, r)
	}
	return s
}

// consumeAll runs n consumer processes at once with the same arguments and
// returns their summaries; each must exit 0.
func consumeAll(tb testing.TB, e *env, n int, args ...string) []summary {
	tb.Helper()
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.run(nil, "daguq", append([]string{"consume"}, args...)...)
		}()
	}
	wg.Wait()
	var out []summary
	for i, r := range results {
		if r.Code != 0 {
			tb.Fatalf("consumer %d: %s", i, r)
		}
		out = append(out, decodeSummary(tb, r))
	}
	return out
}

// send-batch.sh, the handler of the consumer and batch DAGs, driven by three
// daguq processes on one database: every good message is sent exactly once,
// each poison message is failed by the handler through $DAGUQ_RESULT_FILE on
// every delivery and ends in the dead letters after max attempts.
func TestSendBatchHandlerThreeConsumers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := openStore(t, e.db)
	const good, poison = 300, 3
	var msgs []queuestore.NewMessage
	for i := range good + poison {
		body := fmt.Sprintf(`{"n":%d}`, i)
		if i%101 == 100 {
			body = fmt.Sprintf(`{"n":%d,"fail":true}`, i)
		}
		msgs = append(msgs, queuestore.NewMessage{Queue: "mail", Body: []byte(body), Priority: int64(i % 3)})
	}
	ids := enqueue(t, st, msgs...)

	sums := consumeAll(t, e, 3, "--queue", "mail", "--batch-size", "20", "--concurrency", "2",
		"--max-attempts", "2", "--backoff", "none", "--poll-interval", "50ms", "--", handler("send-batch.sh"))
	var total summary
	for _, s := range sums {
		total.Acked += s.Acked
		total.Dead += s.Dead
		total.Retried += s.Retried
		total.Lost += s.Lost
	}
	if total.Acked != good || total.Dead != poison || total.Retried != poison || total.Lost != 0 {
		t.Errorf("summaries add up to %+v, want %d acked, %d retried then dead", total, good, poison)
	}
	s := stats(t, st, "mail")
	if s.Ready+s.Delayed+s.InFlight != 0 || s.Dead != poison {
		t.Errorf("stats %+v, want only %d dead", s, poison)
	}
	seen := map[int64][]int64{} // id -> attempts
	for _, m := range sentMessages(t, e.trace, "mail") {
		seen[m.id] = append(seen[m.id], m.try)
	}
	for i, id := range ids {
		want := "[1]"
		if msgs[i].Body[len(msgs[i].Body)-2] == 'e' { // ..."fail":true}
			want = "[1 2]"
		}
		if got := fmt.Sprint(seen[id]); got != want {
			t.Errorf("message %d (%s) was handled at attempts %s, want %s", id, msgs[i].Body, got, want)
		}
	}
}

// call-service.sh, the handler of the pool DAGs: four daguq processes, two
// per group of the shared queue, each allowed 3 handlers at once; the queue's
// in-flight limit 2 (daguq limit) holds across all of them.
func TestPoolLimitAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setenv("CALL_SECONDS", "0.3")
	st := openStore(t, e.db)
	for _, group := range []string{"orders", "customers"} {
		var msgs []queuestore.NewMessage
		for i := range 20 {
			msgs = append(msgs, queuestore.NewMessage{Queue: "geocoder", Group: group, Body: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		}
		enqueue(t, st, msgs...)
	}
	e.daguq(nil, "limit", "geocoder", "2")

	var wg sync.WaitGroup
	for _, group := range []string{"orders", "customers"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			consumeAll(t, e, 2, "--queue", "geocoder", "--group", group, "--batch-size", "5", "--concurrency", "3",
				"--poll-interval", "50ms", "--", handler("call-service.sh"))
		}()
	}
	wg.Wait()
	overlap, calls, messages := serviceCalls(t, e.trace)
	if overlap > 2 || overlap < 1 || calls != 8 || messages != 40 {
		t.Errorf("%d calls with %d messages, at most %d at once; want 8 calls, 40 messages, at most 2 at once", calls, messages, overlap)
	}
	if s := stats(t, st, "geocoder"); s.Ready+s.Delayed+s.InFlight+s.Dead != 0 || s.InFlightLimit != 2 {
		t.Errorf("stats %+v, want empty with limit 2", s)
	}
	t.Logf("calls at once: at most %d", overlap)
}

// A consumer killed with SIGKILL while its handler runs loses nothing: its
// lease runs out and the next consumer gets the whole batch again.
func TestKilledConsumerLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := openStore(t, e.db)
	var msgs []queuestore.NewMessage
	for i := range 10 {
		msgs = append(msgs, queuestore.NewMessage{Queue: "crash", Body: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	enqueue(t, st, msgs...)

	slow := e.command("daguq", "consume", "--queue", "crash", "--batch-size", "10", "--lease", "1s", "--", handler("send-batch.sh"))
	slow.Env = append(slow.Env, "SEND_SECONDS=3")
	out, err := os.Create(filepath.Join(e.dir, "slow.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	slow.Stdout, slow.Stderr = out, out
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the handler to see the batch", func() bool {
		return len(sentMessages(t, e.trace, "crash")) == 10
	})
	if err := syscall.Kill(slow.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	slow.Wait()
	waitFor(t, 5*time.Second, "the lease to run out", func() bool { return stats(t, st, "crash").Ready == 10 })

	s := decodeSummary(t, e.daguq(nil, "consume", "--queue", "crash", "--batch-size", "10", "--", handler("send-batch.sh")))
	if s.Acked != 10 {
		t.Errorf("second consumer: %+v, want 10 acked", s)
	}
	second := 0
	for _, m := range sentMessages(t, e.trace, "crash") {
		if m.try == 2 {
			second++
		}
	}
	if second != 10 {
		t.Errorf("%d messages delivered a second time, want 10", second)
	}
	if s := stats(t, st, "crash"); s.Ready+s.Delayed+s.InFlight+s.Dead != 0 {
		t.Errorf("stats %+v, want empty", s)
	}
}

// process-item.sh, the fan-out child's handler: the body comes in the
// environment; "fail": true fails it.
func TestProcessItemHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setenv("MESSAGE_BODY", `{"img":"a b.png","note":"it's \"q\" $HOME"}`)
	if r := e.run(nil, handler("process-item.sh"), "7"); r.Code != 0 || !strings.Contains(r.Stderr, `"note":"it's \"q\" $HOME"`) {
		t.Errorf("ok item: %s", r)
	}
	e.setenv("MESSAGE_BODY", `{"fail": true}`)
	if r := e.run(nil, handler("process-item.sh"), "8"); r.Code != 1 {
		t.Errorf("failing item: %s", r)
	}
	if got := traceLines(t, e.trace); len(got) != 1 || strings.Join(got[0], " ") != "item 7" {
		t.Errorf("trace %v, want [item 7]", got)
	}
}
