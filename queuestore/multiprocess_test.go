package queuestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/proctest"
)

// Four producer and four consumer processes share one database file. Every
// consumer records each delivery it got; the test then checks from the
// records that every message was acked exactly once, that none was lost,
// and that no message was handed to a second consumer while an earlier
// lease on it was still valid. To put that last rule to work, every
// mpAbandonEvery-th claim takes a short lease and leaves it to expire before
// trying to ack (a stalled consumer): those messages are delivered again,
// and the late ack must fail with ErrLeaseLost once they were.
const (
	mpProducers    = 4
	mpConsumers    = 4
	mpMessages     = 50_000
	mpEnqueueBatch = 500
	mpClaimBatch   = 100
	mpLease        = time.Minute
	mpAbandonEvery = 20
	mpAbandonLease = 300 * time.Millisecond
	mpQueue        = "mp"
)

func init() {
	procRoles["mp-produce"] = mpProduce
	procRoles["mp-consume"] = mpConsume
}

func TestMultiProcessEveryMessageAckedOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 processes; skipped with -short")
	}
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "mp.db")
	s, err := Open(dbPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	doneFile := filepath.Join(dir, "producers-done")

	var consumers, producers []*proc
	for i := range mpConsumers {
		consumers = append(consumers, startProc(t, "mp-consume", procArgs{
			DB: dbPath, Queue: mpQueue, Name: fmt.Sprintf("c%d", i), Batch: mpClaimBatch, Lease: mpLease,
			Log: filepath.Join(dir, fmt.Sprintf("c%d.log", i)), DoneFile: doneFile,
			AbandonEvery: mpAbandonEvery, AbandonLease: mpAbandonLease,
		}))
	}
	for i := range mpProducers {
		producers = append(producers, startProc(t, "mp-produce", procArgs{
			DB: dbPath, Queue: mpQueue, Name: fmt.Sprintf("p%d", i), Count: mpMessages / mpProducers,
			Batch: mpEnqueueBatch, Log: filepath.Join(dir, fmt.Sprintf("p%d.log", i)),
		}))
	}
	start := time.Now()
	for _, p := range producers {
		p.waitWithin(t, 3*time.Minute)
	}
	produced := time.Since(start)
	if err := os.WriteFile(doneFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range consumers {
		c.waitWithin(t, 3*time.Minute)
	}
	t.Logf("%d messages enqueued in %s, all acked after %s", mpMessages, produced.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for _, p := range append(producers, consumers...) {
		t.Logf("%s: %s", p.name, strings.Join(p.output, "; "))
	}

	enqueued := map[string]int64{} // uid -> message id
	for i := range mpProducers {
		for _, f := range readRecords(t, filepath.Join(dir, fmt.Sprintf("p%d.log", i)), 2) {
			id, _ := strconv.ParseInt(f[1], 10, 64)
			if _, dup := enqueued[f[0]]; dup {
				t.Fatalf("uid %s enqueued twice", f[0])
			}
			enqueued[f[0]] = id
		}
	}
	if len(enqueued) != mpMessages {
		t.Fatalf("producers recorded %d messages, want %d", len(enqueued), mpMessages)
	}

	deliveries := map[string][]proctest.LeaseDelivery{} // by uid
	for i := range mpConsumers {
		for _, f := range readRecords(t, filepath.Join(dir, fmt.Sprintf("c%d.log", i)), 9) {
			uid, d := parseDelivery(t, f)
			deliveries[uid] = append(deliveries[uid], d)
		}
	}
	fail := proctest.Problems(t, 20)
	redelivered, lateAcksLost := 0, 0
	for uid, id := range enqueued {
		ds := deliveries[uid]
		if len(ds) == 0 {
			fail("message %s (id %d) was never delivered", uid, id)
			continue
		}
		for _, d := range ds {
			if d.ID != id {
				fail("message %s delivered with id %d, enqueued as %d", uid, d.ID, id)
			}
		}
		acked, lost := proctest.CheckLeaseHistory(fail, uid, ds, false)
		if acked != 1 {
			fail("message %s acked %d times, want once: %+v", uid, acked, ds)
		}
		lateAcksLost += lost
		redelivered += len(ds) - 1
	}
	for uid := range deliveries {
		if _, ok := enqueued[uid]; !ok {
			fail("delivered message %s that no producer enqueued", uid)
		}
	}
	t.Logf("%d deliveries after an abandoned lease expired; %d late acks refused with ErrLeaseLost", redelivered, lateAcksLost)
	if redelivered == 0 {
		t.Errorf("no message was delivered twice: the abandoned leases did not exercise expiry")
	}
	st, err := s.Stats(context.Background(), mpQueue)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready+st.Delayed+st.InFlight+st.Dead != 0 {
		t.Errorf("messages left behind: %+v", st)
	}
	if info, err := os.Stat(dbPath + "-wal"); err == nil {
		t.Logf("WAL file: %.1f MB", float64(info.Size())/(1<<20))
	}
	if left, listed := bodiesLeft(t, s); left != listed || listed >= bodyTrashMax {
		t.Errorf("%d bodies left, %d of them listed for deletion (at most %d may be)", left, listed, bodyTrashMax-1)
	}
}

// deliveryRecord is a consumer's record of one delivered message: its uid,
// the delivery, and when the ack was made (the store's milliseconds).
func deliveryRecord(uid string, d proctest.LeaseDelivery, ackedAt int64) string {
	return fmt.Sprintf("%s %d %d %d %d %d %s %d %s", uid, d.ID, d.LeaseID, d.ClaimedAt, d.LeaseEnd,
		d.Attempt, d.Consumer, ackedAt, d.Result)
}

// parseDelivery reads the fields of a deliveryRecord; the ack time is not
// checked.
func parseDelivery(tb testing.TB, f []string) (uid string, d proctest.LeaseDelivery) {
	tb.Helper()
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			tb.Fatalf("bad record %q: %v", f, err)
		}
		return n
	}
	return f[0], proctest.LeaseDelivery{ID: num(f[1]), LeaseID: num(f[2]), ClaimedAt: num(f[3]), LeaseEnd: num(f[4]),
		Attempt: int(num(f[5])), Consumer: f[6], Result: f[8]}
}

// readRecords reads a helper's record file: one record per line, fields
// separated by spaces.
func readRecords(tb testing.TB, path string, fields int) [][]string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		r := strings.Fields(sc.Text())
		if len(r) != fields {
			tb.Fatalf("%s: record %q has %d fields, want %d", path, sc.Text(), len(r), fields)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// mpProduce enqueues args.Count messages in batches, each body carrying a
// unique id, and records "uid id" per message.
func mpProduce(args procArgs) error {
	s, err := Open(args.DB, Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	log, err := os.Create(args.Log)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(log)
	ctx := context.Background()
	start := time.Now()
	for sent := 0; sent < args.Count; {
		batch := make([]NewMessage, 0, args.Batch)
		for i := sent; i < min(sent+args.Batch, args.Count); i++ {
			uid := fmt.Sprintf("%s-%06d", args.Name, i)
			batch = append(batch, NewMessage{Queue: args.Queue, Priority: rand.Int64N(3),
				Body: []byte(`{"uid":"` + uid + `","pad":"` + strings.Repeat("x", 64) + `"}`)})
		}
		res, err := s.Enqueue(ctx, batch...)
		if err != nil {
			return err
		}
		for i, id := range res.IDs {
			fmt.Fprintf(w, "%s-%06d %d\n", args.Name, sent+i, id)
		}
		sent += len(batch)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	procOutput("enqueued", args.Count, "in", time.Since(start).Round(time.Millisecond), "busy-retries", s.busyRetries.Load())
	return log.Close()
}

// mpConsume claims and acks until the producers are done and the queue is
// empty, recording every delivery.
func mpConsume(args procArgs) error {
	s, err := Open(args.DB, Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	log, err := os.Create(args.Log)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(log)
	ctx := context.Background()

	type abandoned struct {
		lease    *Lease
		leaseFor time.Duration
		ackAfter time.Time
	}
	var stale []abandoned
	claims, delivered, emptyPolls := 0, 0, 0
	record := func(l *Lease, leaseFor time.Duration, ackErr error) error {
		// An ack acks what the lease still holds and names the rest.
		lost := map[int64]bool{}
		var lostErr *LostError
		switch {
		case errors.As(ackErr, &lostErr):
			for _, id := range lostErr.IDs {
				lost[id] = true
			}
		case ackErr != nil:
			return ackErr
		}
		ackedAt := time.Now().UnixMilli()
		for _, m := range l.Messages {
			result := "acked"
			if lost[m.ID] {
				result = "lost"
			}
			uid, err := bodyUID(m.Body)
			if err != nil {
				return err
			}
			d := proctest.LeaseDelivery{ID: m.ID, LeaseID: l.ID, LeaseEnd: l.ExpiresAt.UnixMilli(),
				ClaimedAt: l.ExpiresAt.UnixMilli() - leaseFor.Milliseconds(), Attempt: m.Attempt,
				Consumer: args.Name, Result: result}
			fmt.Fprintln(w, deliveryRecord(uid, d, ackedAt))
		}
		return nil
	}
	for {
		now := time.Now()
		kept := stale[:0]
		for _, a := range stale {
			if now.Before(a.ackAfter) {
				kept = append(kept, a)
				continue
			}
			if err := record(a.lease, a.leaseFor, s.Ack(ctx, a.lease)); err != nil {
				return err
			}
		}
		stale = kept

		leaseFor := args.Lease
		abandon := args.AbandonEvery > 0 && (claims+1)%args.AbandonEvery == 0
		if abandon {
			leaseFor = args.AbandonLease
		}
		l, err := s.Claim(ctx, ClaimOptions{Queue: args.Queue, Max: args.Batch, Lease: leaseFor, Consumer: args.Name})
		if err != nil {
			return err
		}
		if l == nil {
			emptyPolls++
			if len(stale) == 0 && fileExists(args.DoneFile) {
				st, err := s.Stats(ctx, args.Queue)
				if err != nil {
					return err
				}
				if st.Ready+st.Delayed+st.InFlight == 0 {
					break
				}
			}
			time.Sleep(time.Millisecond + rand.N(time.Millisecond))
			continue
		}
		claims++
		delivered += len(l.Messages)
		if abandon {
			stale = append(stale, abandoned{lease: l, leaseFor: leaseFor, ackAfter: time.Now().Add(2 * leaseFor)})
			continue
		}
		if err := record(l, leaseFor, s.Ack(ctx, l)); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	procOutput("claims", claims, "deliveries", delivered, "empty-polls", emptyPolls, "busy-retries", s.busyRetries.Load())
	return log.Close()
}

func bodyUID(body []byte) (string, error) {
	const prefix = `{"uid":"`
	rest, ok := strings.CutPrefix(string(body), prefix)
	uid, _, found := strings.Cut(rest, `"`)
	if !ok || !found {
		return "", fmt.Errorf("body %q carries no uid", body)
	}
	return uid, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
