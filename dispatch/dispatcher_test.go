package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daguq/daguq/dispatch/daguapitest"
	"github.com/daguq/daguq/internal/proctest"
	"github.com/daguq/daguq/queuestore"
)

// bundle is one test's database, stand-in Dagu and dispatcher settings.
type bundle struct {
	tb    testing.TB
	store *queuestore.Store
	dagu  *daguapitest.Server
	state string
	log   *syncBuffer
}

type syncBuffer = proctest.SyncBuffer

func setup(tb testing.TB) *bundle {
	tb.Helper()
	dir := tb.TempDir()
	st, err := queuestore.Open(filepath.Join(dir, "daguq.db"), queuestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return &bundle{tb: tb, store: st, dagu: daguapitest.New(tb, testToken), state: filepath.Join(dir, "dispatch.json"), log: &syncBuffer{}}
}

const testToken = "dagu_test_secret"

func (b *bundle) client() *Client {
	b.tb.Helper()
	c, err := NewClient(b.dagu.URL, Auth{Token: testToken}, nil)
	if err != nil {
		b.tb.Fatal(err)
	}
	return c
}

func (b *bundle) enqueue(queue string, n int) {
	b.tb.Helper()
	msgs := make([]queuestore.NewMessage, n)
	for i := range msgs {
		msgs[i] = queuestore.NewMessage{Queue: queue, Body: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	if _, err := b.store.Enqueue(context.Background(), msgs...); err != nil {
		b.tb.Fatal(err)
	}
}

// dispatcher starts a dispatcher with the rules; stop cancels it and waits.
func (b *bundle) dispatcher(rules ...Rule) (d *Dispatcher, stop func()) {
	b.tb.Helper()
	d, err := New(Options{Store: b.store, Dagu: b.client(), Rules: rules, StatePath: b.state,
		Namespace: "test", Poll: 5 * time.Millisecond, Watch: 10 * time.Millisecond,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, Stderr: b.log})
	if err != nil {
		b.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				b.tb.Error(err)
			}
		})
	}
	b.tb.Cleanup(stop)
	return d, stop
}

func (b *bundle) stats(queue string) queuestore.Stats {
	b.tb.Helper()
	st, err := b.store.Stats(context.Background(), queue)
	if err != nil {
		b.tb.Fatal(err)
	}
	return st
}

// eventually waits for cond, failing after 10 s.
func (b *bundle) eventually(what string, cond func() bool) {
	b.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.tb.Fatalf("timed out waiting for %s; dispatcher said:\n%s", what, b.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *bundle) drained(queue string) func() bool {
	return func() bool {
		st := b.stats(queue)
		return st.Ready+st.Delayed+st.InFlight == 0
	}
}

// onePostPerRun checks that no run id was started twice.
func (b *bundle) onePostPerRun(wantRuns int) {
	b.tb.Helper()
	runs, posts := b.dagu.Snapshot()
	if len(runs) != wantRuns {
		b.tb.Errorf("%d runs, want %d", len(runs), wantRuns)
	}
	for id, n := range posts {
		if n != 1 {
			b.tb.Errorf("run %s started %d times", id, n)
		}
	}
}

func TestTenBatchesTenRunsAllAcked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("orders", 500)
	// Each run reads its batch by token, like a `type: queue` action get.
	var mu sync.Mutex
	seen := map[string]int{}
	b.dagu.OnRun(func(run *daguapitest.Run) {
		lease, err := b.store.LeaseByToken(context.Background(), run.Param("DAGUQ_TOKEN"))
		if err != nil {
			t.Errorf("run %s: get its batch: %v", run.ID, err)
			return
		}
		if run.Param("DAGUQ_BATCH_ID") != run.ID || run.Param("DAGUQ_QUEUE") != "orders" || run.Param("DAGUQ_COUNT") != "50" {
			t.Errorf("run params %q", run.Params)
		}
		mu.Lock()
		seen[run.ID] = len(lease.Messages)
		mu.Unlock()
		go func() {
			time.Sleep(20 * time.Millisecond)
			b.dagu.Set(run.ID, StatusSucceeded)
		}()
	})
	d, stop := b.dispatcher(Rule{Queue: "orders", DAG: "process-orders", BatchSize: 50, Concurrency: 4})
	b.eventually("all 500 acked", b.drained("orders"))
	stop()
	b.onePostPerRun(10)
	for id, n := range seen {
		if n != 50 || !strings.HasPrefix(id, "daguq-") || len(id) > 64 {
			t.Errorf("run %s got %d messages", id, n)
		}
	}
	if c := d.Counts(); c.Acked != 500 || c.Runs != 10 || c.Succeeded != 10 || c.Dead != 0 {
		t.Errorf("counts %+v", c)
	}
	if strings.Contains(b.log.String(), testToken) {
		t.Errorf("the API key was printed:\n%s", b.log.String())
	}
	if st := b.stats("orders"); st.Leases != 0 {
		t.Errorf("leases left %+v", st)
	}
}

func TestFailedRunIsRetriedThenDead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("emails", 3)
	b.dagu.OnRun(func(run *daguapitest.Run) { go b.dagu.Set(run.ID, StatusFailed) })
	d, stop := b.dispatcher(Rule{Queue: "emails", DAG: "send", BatchSize: 10, MaxAttempts: 3,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	b.eventually("3 dead letters", func() bool { return b.stats("emails").Dead == 3 })
	stop()
	b.onePostPerRun(3) // one run per delivery, each with its own id
	if c := d.Counts(); c.Failed != 3 || c.Retried != 6 || c.Dead != 3 || c.Acked != 0 {
		t.Errorf("counts %+v", c)
	}
	dead, err := b.store.Peek(context.Background(), "emails", queuestore.PeekOptions{State: queuestore.StateDead})
	if err != nil || len(dead) != 3 || !strings.Contains(dead[0].LastError, "ended failed") {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
}

func TestFailedRunWithDaguRetryLeftIsNotFinal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("q", 2)
	limit := 1
	b.dagu.OnRun(func(run *daguapitest.Run) {
		go b.dagu.Update(run.ID, func(run *daguapitest.Run) { run.Status, run.AutoRetryLimit = StatusFailed, &limit })
	})
	d, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag"})
	b.eventually("the run", func() bool { runs, _ := b.dagu.Snapshot(); return len(runs) == 1 })
	time.Sleep(100 * time.Millisecond) // many watch rounds
	if st := b.stats("q"); st.InFlight != 2 {
		t.Fatalf("a failed run with an automatic retry left finished the batch: %+v\n%s", st, b.log.String())
	}
	// Dagu's retry succeeds.
	runs, _ := b.dagu.Snapshot()
	for id := range runs {
		b.dagu.Update(id, func(run *daguapitest.Run) { run.AutoRetryCount, run.Status = 1, StatusSucceeded })
	}
	b.eventually("acked", b.drained("q"))
	stop()
	if c := d.Counts(); c.Acked != 2 || c.Failed != 0 {
		t.Errorf("counts %+v", c)
	}
}

func TestRestartLooksTheRunUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("q", 5)
	_, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag", BatchSize: 5, Lease: time.Second})
	b.eventually("a run", func() bool { runs, _ := b.dagu.Snapshot(); return len(runs) == 1 })
	stop() // like a kill mid-run: the run goes on, the lease stays, the record stays
	data, err := os.ReadFile(b.state)
	if err != nil || !strings.Contains(string(data), `"run_id": "daguq-`) {
		t.Fatalf("state file %s %v", data, err)
	}
	gets := b.dagu.Gets.Load()
	d, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag", BatchSize: 5, Lease: time.Second})
	b.eventually("the run looked up", func() bool { return b.dagu.Gets.Load() > gets })
	time.Sleep(1500 * time.Millisecond) // past the lease: the restarted dispatcher extends it
	if st := b.stats("q"); st.InFlight != 5 {
		t.Fatalf("after restart %+v", st)
	}
	b.dagu.SetAll(StatusSucceeded)
	b.eventually("acked", b.drained("q"))
	stop()
	b.onePostPerRun(1)
	if c := d.Counts(); c.Acked != 5 || c.Runs != 0 {
		t.Errorf("counts after restart %+v (no start expected)", c)
	}
	if data, _ := os.ReadFile(b.state); strings.Contains(string(data), "daguq-") {
		t.Errorf("finished batch still recorded: %s", data)
	}
}

func TestRestartAfterRecordBeforeStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("q", 3)
	// The dispatcher recorded the batch, then died before Dagu got the start.
	lease, err := b.store.Claim(context.Background(), queuestore.ClaimOptions{Queue: "q", Max: 10, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	st, err := openState(b.state)
	if err != nil {
		t.Fatal(err)
	}
	id := RunID("test", "q", lease.ID)
	if err := st.put(record{Queue: "q", DAG: "dag", DAGName: "dag", Token: lease.Token, RunID: id, Count: 3, RecordedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b.dagu.OnRun(func(run *daguapitest.Run) { go b.dagu.Set(run.ID, StatusSucceeded) })
	_, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag"})
	b.eventually("acked", b.drained("q"))
	stop()
	b.onePostPerRun(1)
	if runs, _ := b.dagu.Snapshot(); runs[id].ID != id {
		t.Errorf("the run has not the recorded id %s: %v", id, runs)
	}
}

func TestDaguDownLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("q", 20)
	b.dagu.Down.Store(true)
	b.dagu.OnRun(func(run *daguapitest.Run) { go b.dagu.Set(run.ID, StatusSucceeded) })
	d, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag", BatchSize: 5, Concurrency: 2, Lease: time.Second})
	b.eventually("refused calls", func() bool { return b.dagu.Refused.Load() >= 3 })
	time.Sleep(1500 * time.Millisecond) // past the lease: kept alive by Extend
	st := b.stats("q")
	// One batch claimed; no more while Dagu does not answer.
	if st.Dead != 0 || st.InFlight != 5 || st.Ready+st.Delayed+st.InFlight != 20 {
		t.Fatalf("while Dagu is down %+v", st)
	}
	if st.InFlight == 0 {
		t.Fatalf("the claimed batches were not kept leased %+v", st)
	}
	if !strings.Contains(b.log.String(), "leases kept") {
		t.Errorf("nothing said about Dagu being down:\n%s", b.log.String())
	}
	b.dagu.Down.Store(false)
	b.eventually("all acked", b.drained("q"))
	stop()
	b.onePostPerRun(4)
	if c := d.Counts(); c.Acked != 20 || c.Dead != 0 || c.Retried != 0 {
		t.Errorf("counts %+v", c)
	}
}

func TestStartThatDidNotStartThen409(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("q", 4)
	// Dagu creates the run but answers 500 "DAG did not start", and the run
	// shows only later: the lookup finds nothing, the second start gets 409.
	b.dagu.LateStarts.Store(1)
	_, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag"})
	b.eventually("a 409", func() bool { return strings.Contains(b.log.String(), "exists already") })
	b.dagu.SetAll(StatusSucceeded)
	b.eventually("acked", b.drained("q"))
	stop()
	runs, posts := b.dagu.Snapshot()
	if len(runs) != 1 {
		t.Fatalf("%d runs for one batch", len(runs))
	}
	for id, n := range posts {
		if n != 2 {
			t.Errorf("run %s: %d start requests, want 2 (500, then 409)", id, n)
		}
	}
}

func TestRunFinishesSomeMessagesItself(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("q", 5)
	b.dagu.OnRun(func(run *daguapitest.Run) {
		// A step of the DAG acks two messages and nacks one by token.
		ctx := context.Background()
		lease, err := b.store.LeaseByToken(ctx, run.Param("DAGUQ_TOKEN"))
		if err != nil {
			t.Error(err)
			return
		}
		ids := lease.IDs()
		if err := b.store.Ack(ctx, lease, ids[0], ids[1]); err != nil {
			t.Error(err)
		}
		if _, err := b.store.Nack(ctx, lease, queuestore.NackOptions{IDs: ids[2:3], Error: "bad row", MaxAttempts: 1}); err != nil {
			t.Error(err)
		}
		go b.dagu.Set(run.ID, StatusSucceeded)
	})
	d, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag", Lease: time.Second})
	b.eventually("finished", func() bool {
		st := b.stats("q")
		return st.Ready+st.Delayed+st.InFlight == 0 && st.Dead == 1
	})
	stop()
	if c := d.Counts(); c.Acked != 2 {
		t.Errorf("counts %+v: the dispatcher acks only the 2 messages the lease still holds", c)
	}
}

func TestListFallsBackToPerRunLookups(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.dagu.NoList.Store(true)
	b.enqueue("q", 6)
	b.dagu.OnRun(func(run *daguapitest.Run) {
		go func() {
			time.Sleep(30 * time.Millisecond)
			b.dagu.Set(run.ID, StatusSucceeded)
		}()
	})
	_, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag", BatchSize: 2, Concurrency: 3})
	b.eventually("acked", b.drained("q"))
	stop()
	b.onePostPerRun(3)
}

func TestStopReleasesUnstartedBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("q", 5)
	d, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag", BatchSize: 100, MaxWait: time.Hour})
	b.eventually("a lingering batch", func() bool { return b.stats("q").InFlight == 5 })
	stop()
	if st := b.stats("q"); st.Ready != 5 || st.InFlight != 0 {
		t.Fatalf("after stop %+v", st)
	}
	msgs, _ := b.store.Peek(context.Background(), "q", queuestore.PeekOptions{State: queuestore.StateReady})
	if len(msgs) != 5 || msgs[0].Attempt != 0 {
		t.Errorf("released messages %+v: the attempt is given back", msgs)
	}
	if c := d.Counts(); c.Released != 5 || c.Runs != 0 {
		t.Errorf("counts %+v", c)
	}
}

func TestWrongKeyIsRefusedAndNotPrinted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue("q", 2)
	c, err := NewClient(b.dagu.URL, Auth{Token: "dagu_wrong_key"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Store: b.store, Dagu: c, Rules: []Rule{{Queue: "q", DAG: "dag"}}, StatePath: b.state,
		Poll: 5 * time.Millisecond, Watch: 10 * time.Millisecond, RetryMin: 10 * time.Millisecond, RetryMax: time.Hour, Stderr: b.log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	b.eventually("refused", func() bool { return d.Counts().Released == 2 })
	cancel()
	<-done
	if st := b.stats("q"); st.Ready != 2 {
		t.Errorf("after a refused start %+v", st)
	}
	out := b.log.String()
	if !strings.Contains(out, "HTTP 401") || strings.Contains(out, "dagu_wrong_key") {
		t.Errorf("log:\n%s", out)
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "basic")
	os.WriteFile(file, []byte("admin:s3cret\n"), 0o600)
	auth, err := DaguConfig{BasicAuthFile: file}.ReadAuth()
	if err != nil || auth.User != "admin" || auth.Password != "s3cret" {
		t.Fatalf("%+v %v", auth, err)
	}
	seen := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		select {
		case seen <- u + ":" + p:
		default:
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(context.Background(), "dag", "nope"); !errors.Is(err, ErrRunNotFound) {
		t.Fatalf("want not found, got %v", err)
	}
	if got := <-seen; got != "admin:s3cret" {
		t.Errorf("basic auth sent %q", got)
	}
	if _, err := NewClient("http://user:pw@127.0.0.1:8080", Auth{}, nil); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("a URL with credentials: %v", err)
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig([]byte(`
dagu:
  url: http://127.0.0.1:8080
  token_file: /etc/daguq/dagu-token
rules:
  - queue: orders
    dag: process-orders
    batch_size: 50
    max_wait: 5s
    concurrency: 4
    lease: 10m
  - {queue: emails, dag: send-emails.yaml, min_priority: 5}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rules) != 2 || c.Rules[0].MaxWait != 5*time.Second || c.Rules[0].Lease != 10*time.Minute || *c.Rules[1].MinPriority != 5 {
		t.Fatalf("%+v", c)
	}
	if r := c.Rules[1].withDefaults(); r.DAG != "send-emails" || r.DAGName != "send-emails" || r.BatchSize != 10 {
		t.Errorf("defaults %+v", r)
	}
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", "rules: [{queue: q, dag: d, batchsize: 5}]", "batchsize"},
		{"no rules", "dagu: {url: http://x}", "no rules"},
	} {
		if _, err := ParseConfig([]byte(tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	_, err = New(Options{Store: &queuestore.Store{}, Dagu: &Client{}, StatePath: "x",
		Rules: []Rule{{Queue: "q", DAG: "d", BatchSize: -1, Concurrency: 5000}}})
	if err == nil || !strings.Contains(err.Error(), "batch_size must be 1..10000, got -1") || !strings.Contains(err.Error(), "concurrency") {
		t.Errorf("validation: %v", err)
	}
}

func TestRunIDShape(t *testing.T) {
	t.Parallel()
	id := RunID("/var/lib/dagu/daguq/daguq.db", "a.queue-name_with.dots", 1<<62)
	if !runIDRE.MatchString(id) || len(id) > maxRunIDLen {
		t.Errorf("run id %q", id)
	}
	if RunID("a", "q", 1) == RunID("b", "q", 1) || RunID("a", "q", 1) == RunID("a", "r", 1) {
		t.Error("run ids of different databases or queues collide")
	}
}

// How each final status of a run finishes its batch, through /start or
// /enqueue.
func TestRunOutcomes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		status  int
		enqueue bool
		acked   bool
	}{
		{"succeeded", StatusSucceeded, false, true},
		{"partially succeeded", StatusPartialSuccess, true, true},
		{"aborted", StatusAborted, false, false},
		{"rejected", StatusRejected, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.enqueue("q", 3)
			b.dagu.OnRun(func(run *daguapitest.Run) { go b.dagu.Set(run.ID, tc.status) })
			d, stop := b.dispatcher(Rule{Queue: "q", DAG: "dag", Enqueue: tc.enqueue, BackoffBase: time.Hour})
			b.eventually("the batch finished", func() bool { c := d.Counts(); return c.Acked+c.Retried == 3 })
			stop()
			c := d.Counts()
			if tc.acked != (c.Acked == 3) || tc.acked != (c.Succeeded == 1) {
				t.Errorf("counts %+v", c)
			}
			if st := b.stats("q"); !tc.acked && st.Delayed != 3 {
				t.Errorf("nacked batch %+v: want 3 delayed by the backoff", st)
			}
			if n := b.dagu.Enqueues.Load(); (n == 1) != tc.enqueue {
				t.Errorf("%d starts through /enqueue", n)
			}
		})
	}
}

func TestOneDispatcherPerStateFile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.dispatcher(Rule{Queue: "q", DAG: "dag"})
	b.eventually("the first dispatcher's lock", func() bool { _, err := os.Stat(b.state + ".lock"); return err == nil })
	time.Sleep(20 * time.Millisecond)
	d, err := New(Options{Store: b.store, Dagu: b.client(), Rules: []Rule{{Queue: "q", DAG: "dag"}}, StatePath: b.state, Stderr: b.log})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "in use by another dispatcher") {
		t.Errorf("a second dispatcher on one state file: %v", err)
	}
}
