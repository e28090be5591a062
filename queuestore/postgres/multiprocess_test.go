package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/internal/proctest"
	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// The multi-process test runs the test binary again as claimer processes:
// procRoleEnv names the role and procArgsEnv carries its arguments as JSON.
// TestMain runs the role instead of the tests.
const (
	procRoleEnv = "DAGUQ_PG_HELPER"
	procArgsEnv = "DAGUQ_PG_HELPER_ARGS"
	// heavyEnv makes the multi-process test ten times larger
	// (make test-postgres-heavy).
	heavyEnv = "DAGUQ_PG_HEAVY"
)

type procArgs struct {
	URL          string        `json:"url"`
	Queue        string        `json:"queue"`
	Name         string        `json:"name"`
	Workers      int           `json:"workers"` // claimers (goroutines) in the process
	Batch        int           `json:"batch"`
	Lease        time.Duration `json:"lease"`
	AbandonEvery int           `json:"abandon_every"` // every n-th claim of a worker is left to expire
	AbandonLease time.Duration `json:"abandon_lease"`
	Log          string        `json:"log"`
	DoneFile     string        `json:"done_file"` // exists once every message is enqueued
}

func runProcRole(role string) int {
	var args procArgs
	if err := json.Unmarshal([]byte(os.Getenv(procArgsEnv)), &args); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: bad %s: %v\n", role, procArgsEnv, err)
		return 2
	}
	if role != "claimer" {
		fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
		return 2
	}
	if err := claimer(args); err != nil {
		fmt.Fprintf(os.Stderr, "claimer %s: %v\n", args.Name, err)
		return 1
	}
	return 0
}

// 64 claimers in 4 OS processes take messages from one queue with FOR
// UPDATE SKIP LOCKED while the test enqueues more. From every claimer's
// records: no claim returned more than it asked for, no message was
// delivered while an earlier lease on it was valid, fencing tokens grew
// with every delivery of a message, and every message was acked exactly
// once. Every 7th claim of a claimer is left to expire before its ack (a stalled
// consumer): those messages are delivered again and the late ack must find
// the lease lost.
func TestMultiProcessSkipLockedClaims(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 4 processes; skipped with -short")
	}
	t.Parallel()
	const (
		procs   = 4
		workers = 16
		batch   = 5
	)
	messages := 4000
	if os.Getenv(heavyEnv) != "" {
		messages = 40000
	}
	url := pgtest.NewDatabase(t)
	s, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	dir := t.TempDir()
	doneFile := filepath.Join(dir, "enqueued")

	enqueue := func(from, to int) []int64 {
		var msgs []queuestore.NewMessage
		for i := from; i < to; i++ {
			msgs = append(msgs, queuestore.NewMessage{Queue: "mp", Body: []byte(strconv.Itoa(i)), Priority: rand.Int64N(3)})
		}
		res, err := s.Enqueue(ctx, msgs...)
		if err != nil {
			t.Fatal(err)
		}
		return res.IDs
	}
	ids := enqueue(0, messages/2)
	start := time.Now()
	var cmds []*exec.Cmd
	var stderrs []*bytes.Buffer
	for p := range procs {
		args := procArgs{URL: url, Queue: "mp", Name: fmt.Sprintf("p%d", p), Workers: workers, Batch: batch,
			Lease: time.Minute, AbandonEvery: 7, AbandonLease: 300 * time.Millisecond,
			Log: filepath.Join(dir, fmt.Sprintf("p%d.log", p)), DoneFile: doneFile}
		encoded, _ := json.Marshal(args)
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), procRoleEnv+"=claimer", procArgsEnv+"="+string(encoded))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		cmds, stderrs = append(cmds, cmd), append(stderrs, &stderr)
	}
	// The second half arrives while the claimers work, in small batches.
	for from := messages / 2; from < messages; from += 100 {
		ids = append(ids, enqueue(from, from+100)...)
	}
	if err := os.WriteFile(doneFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		timer := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
		err := cmd.Wait()
		timer.Stop()
		if err != nil {
			t.Fatalf("claimer p%d: %v; stderr:\n%s", i, err, stderrs[i])
		}
	}
	t.Logf("%d messages through %d claimers in %d processes in %s", messages, procs*workers, procs, time.Since(start).Round(time.Millisecond))

	deliveries := map[int64][]proctest.LeaseDelivery{}
	for p := range procs {
		for _, d := range readDeliveries(t, filepath.Join(dir, fmt.Sprintf("p%d.log", p))) {
			deliveries[d.ID] = append(deliveries[d.ID], d)
		}
	}
	fail := proctest.Problems(t, 20)
	redelivered, lost := 0, 0
	for _, id := range ids {
		ds := deliveries[id]
		if len(ds) == 0 {
			fail("message %d was never delivered", id)
			continue
		}
		acked, lostHere := proctest.CheckLeaseHistory(fail, strconv.FormatInt(id, 10), ds, true)
		lost += lostHere
		if acked != 1 {
			fail("message %d acked %d times, want once: %+v; stored: %s", id, acked, ds, storedRow(s, id))
		}
		redelivered += len(ds) - 1
	}
	if len(deliveries) != len(ids) {
		fail("%d messages delivered, %d enqueued", len(deliveries), len(ids))
	}
	t.Logf("%d deliveries after an abandoned lease expired; %d late acks refused with ErrLeaseLost", redelivered, lost)
	if redelivered == 0 {
		t.Errorf("no message was delivered twice: the abandoned leases did not exercise expiry")
	}
	st, err := s.Stats(ctx, "mp")
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready+st.Delayed+st.InFlight+st.Dead != 0 {
		t.Errorf("messages left behind: %+v", st)
	}
	m, err := s.Metrics(ctx)
	if err != nil || len(m) != 1 || m[0].Settled[queuestore.OutcomeAcked] != int64(messages) || m[0].Enqueued != int64(messages) {
		t.Errorf("metrics %+v %v, want %d enqueued and acked", m, err, messages)
	}
}

// storedRow describes a message's row, for failures.
func storedRow(s *postgres.Store, id int64) string {
	var state, attempts int
	var visible int64
	var lease *int64
	err := s.ConnPool().QueryRow(context.Background(), `SELECT state, attempts, visible_at, lease_id FROM daguq_messages WHERE id = $1`, id).
		Scan(&state, &attempts, &visible, &lease)
	if err != nil {
		return err.Error()
	}
	l := "none"
	if lease != nil {
		l = strconv.FormatInt(*lease, 10)
	}
	return fmt.Sprintf("state %d, attempts %d, visible at %d, lease %s", state, attempts, visible, l)
}

// readDeliveries reads a claimer's records: "id lease claimed_at lease_end
// attempt worker result" a line.
func readDeliveries(tb testing.TB, path string) []proctest.LeaseDelivery {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []proctest.LeaseDelivery
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var d proctest.LeaseDelivery
		if _, err := fmt.Sscan(sc.Text(), &d.ID, &d.LeaseID, &d.ClaimedAt, &d.LeaseEnd, &d.Attempt, &d.Consumer, &d.Result); err != nil {
			tb.Fatalf("%s: record %q: %v", path, sc.Text(), err)
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// claimer runs args.Workers claimers on one store until every message is
// enqueued and the queue is empty, recording every delivery.
func claimer(args procArgs) error {
	s, err := postgres.Open(args.URL, postgres.Options{MaxConns: int32(args.Workers)})
	if err != nil {
		return err
	}
	defer s.Close()
	log, err := os.Create(args.Log)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(log)
	var mu sync.Mutex // guards w
	ctx := context.Background()
	// record writes a lease's deliveries: acked, or lost for the messages
	// the ack's LostError names (another claim took them; the ack did the
	// rest).
	record := func(worker string, l *queuestore.Lease, leaseFor time.Duration, ackErr error) error {
		lost := map[int64]bool{}
		var le *queuestore.LostError
		switch {
		case errors.As(ackErr, &le):
			for _, id := range le.IDs {
				lost[id] = true
			}
		case ackErr != nil:
			return ackErr
		}
		mu.Lock()
		defer mu.Unlock()
		for _, m := range l.Messages {
			result := "acked"
			if lost[m.ID] {
				result = "lost"
			}
			fmt.Fprintf(w, "%d %d %d %d %d %s %s\n", m.ID, l.ID, l.ExpiresAt.UnixMilli()-leaseFor.Milliseconds(),
				l.ExpiresAt.UnixMilli(), m.Attempt, worker, result)
		}
		return nil
	}
	errs := make(chan error, args.Workers)
	var wg sync.WaitGroup
	for i := range args.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- work(ctx, s, args, fmt.Sprintf("%s.%d", args.Name, i), record)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return log.Close()
}

func work(ctx context.Context, s *postgres.Store, args procArgs, name string,
	record func(string, *queuestore.Lease, time.Duration, error) error) error {
	type abandoned struct {
		lease    *queuestore.Lease
		leaseFor time.Duration
		ackAfter time.Time
	}
	var stale []abandoned
	for claims := 0; ; {
		kept := stale[:0]
		for _, a := range stale {
			if time.Now().Before(a.ackAfter) {
				kept = append(kept, a)
				continue
			}
			if err := record(name, a.lease, a.leaseFor, s.Ack(ctx, a.lease)); err != nil {
				return err
			}
		}
		stale = kept
		leaseFor := args.Lease
		abandon := (claims+1)%args.AbandonEvery == 0
		if abandon {
			leaseFor = args.AbandonLease
		}
		l, err := s.Claim(ctx, queuestore.ClaimOptions{Queue: args.Queue, Max: args.Batch, Lease: leaseFor, Consumer: name})
		if err != nil {
			return err
		}
		if l == nil {
			if _, err := os.Stat(args.DoneFile); err == nil && len(stale) == 0 {
				st, err := s.Stats(ctx, args.Queue)
				if err != nil {
					return err
				}
				if st.Ready+st.Delayed+st.InFlight == 0 {
					return nil
				}
			}
			time.Sleep(2*time.Millisecond + rand.N(3*time.Millisecond))
			continue
		}
		claims++
		if len(l.Messages) > args.Batch {
			return fmt.Errorf("a claim of at most %d returned %d messages", args.Batch, len(l.Messages))
		}
		if abandon {
			stale = append(stale, abandoned{lease: l, leaseFor: leaseFor, ackAfter: time.Now().Add(2 * leaseFor)})
			continue
		}
		if err := record(name, l, leaseFor, s.Ack(ctx, l)); err != nil {
			return err
		}
	}
}
