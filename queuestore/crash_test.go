package queuestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	procRoles["crash-hold"] = crashHold
	procRoles["crash-loop"] = crashLoop
}

// A consumer killed with SIGKILL while it holds a lease: its messages stay
// invisible until the lease ends, then come back with attempt 2, and
// nothing is lost.
func TestCrashWhileHoldingLease(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "crash.db")
	s, err := Open(dbPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const total, held = 20, 8
	bodyOf := map[int64]string{}
	for i := range total {
		body := fmt.Sprintf("m%02d", i)
		res, err := s.Enqueue(ctx, NewMessage{Queue: "crash", Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
		bodyOf[res.IDs[0]] = body
	}

	const lease = 1500 * time.Millisecond
	p := startProc(t, "crash-hold", procArgs{DB: dbPath, Queue: "crash", Name: "victim", Batch: held, Lease: lease})
	fields := strings.Fields(p.readLine(t)) // claimed <lease end ms> <id>...
	if len(fields) != 2+held || fields[0] != "claimed" {
		t.Fatalf("victim says %q, want claimed, the lease end and %d ids", fields, held)
	}
	leaseEnd, _ := strconv.ParseInt(fields[1], 10, 64)
	var heldIDs []int64
	for _, f := range fields[2:] {
		id, _ := strconv.ParseInt(f, 10, 64)
		heldIDs = append(heldIDs, id)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = p.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("victim did not die of SIGKILL: %v", err)
	}
	if time.Now().UnixMilli() >= leaseEnd {
		t.Fatalf("the lease ended before the test could look; lease %s too short for this machine", lease)
	}

	// While the dead consumer's lease runs, only the other messages move.
	st := mustStats(t, s, "crash")
	if st.InFlight != held || st.Ready != total-held {
		t.Fatalf("after the kill: %+v, want %d in flight and %d ready", st, held, total-held)
	}
	others, err := s.Claim(ctx, ClaimOptions{Queue: "crash", Max: total})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range others.Messages {
		if slices.Contains(heldIDs, m.ID) || m.Attempt != 1 {
			t.Fatalf("claimed message %d (attempt %d) during the dead consumer's lease", m.ID, m.Attempt)
		}
	}
	if len(others.Messages) != total-held {
		t.Fatalf("claimed %d messages next to the dead lease, want %d", len(others.Messages), total-held)
	}
	if err := s.Ack(ctx, others); err != nil {
		t.Fatal(err)
	}
	if l, err := s.Claim(ctx, ClaimOptions{Queue: "crash", Max: total}); err != nil || l != nil {
		t.Fatalf("claim during the dead consumer's lease: %v %v", l, err)
	}

	// Waiting for the lease to run out is waiting for a time, not an event.
	time.Sleep(time.Until(time.UnixMilli(leaseEnd)) + 20*time.Millisecond)
	again, err := s.Claim(ctx, ClaimOptions{Queue: "crash", Max: total})
	if err != nil || again == nil {
		t.Fatalf("claim after the lease ended: %v %v", again, err)
	}
	if got := again.IDs(); !slices.Equal(got, heldIDs) {
		t.Fatalf("redelivered %v, want the dead consumer's %v", got, heldIDs)
	}
	for _, m := range again.Messages {
		if m.Attempt != 2 || string(m.Body) != bodyOf[m.ID] {
			t.Fatalf("redelivered message %d: attempt %d body %q, want attempt 2 body %q", m.ID, m.Attempt, m.Body, bodyOf[m.ID])
		}
	}
	if err := s.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
	if st := mustStats(t, s, "crash"); st != (Stats{Queue: "crash"}) {
		t.Fatalf("after the redelivery was acked: %+v", st)
	}
	checkIntegrity(t, s)
}

// Consumers killed with SIGKILL at random moments of a claim/ack loop,
// inside write transactions too: the file stays sound, an ack is all or
// nothing, and every message is acked or still there to claim again.
func TestCrashDuringClaimAckLoop(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "crash.db")
	s, err := Open(dbPath, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const total = 20000
	msgs := make([]NewMessage, total)
	for i := range msgs {
		msgs[i] = NewMessage{Queue: "loop", Body: []byte(fmt.Sprintf("m%04d", i))}
	}
	if _, err := s.Enqueue(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	const lease = 500 * time.Millisecond
	acked := map[int64]bool{}
	var uncertain [][]int64 // batches whose ack a kill interrupted
	for round := range 8 {
		logPath := filepath.Join(dir, fmt.Sprintf("loop%d.log", round))
		p := startProc(t, "crash-loop", procArgs{DB: dbPath, Queue: "loop", Name: fmt.Sprint(round), Batch: 25, Lease: lease, Log: logPath})
		if line := p.readLine(t); line != "looping" {
			t.Fatalf("want looping, got %q", line)
		}
		time.Sleep(5*time.Millisecond + rand.N(25*time.Millisecond))
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
		// The log has "acking <ids>" before each ack and "acked" after it.
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		var pending []int64
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 1 && f[0] == "acking":
				pending = pending[:0]
				for _, x := range f[1:] {
					id, _ := strconv.ParseInt(x, 10, 64)
					pending = append(pending, id)
				}
			case len(f) == 1 && f[0] == "acked":
				for _, id := range pending {
					acked[id] = true
				}
				pending = nil
			}
		}
		if len(pending) > 0 {
			uncertain = append(uncertain, slices.Clone(pending))
		}
	}
	checkIntegrity(t, s)

	// Every interrupted ack happened entirely or not at all.
	present := map[int64]bool{}
	rows, err := s.DB().Query(`SELECT id FROM messages WHERE queue = 'loop'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		present[id] = true
	}
	rows.Close()
	committed := 0
	for _, batch := range uncertain {
		n := 0
		for _, id := range batch {
			if present[id] {
				n++
			}
		}
		if n != 0 && n != len(batch) {
			t.Fatalf("a killed ack of %v left %d of its %d messages", batch, n, len(batch))
		}
		if n == 0 {
			committed++
			for _, id := range batch {
				acked[id] = true
			}
		}
	}
	for id := range present {
		if acked[id] {
			t.Fatalf("message %d was acked and is still there", id)
		}
	}
	if len(acked)+len(present) != total {
		t.Fatalf("%d acked + %d left = %d, want %d: messages lost", len(acked), len(present), len(acked)+len(present), total)
	}
	t.Logf("%d acked before the kills, %d left; %d acks cut by a kill, %d of them committed",
		len(acked), len(present), len(uncertain), committed)

	// What is left, leased by the dead consumers or not, drains once the
	// leases end.
	time.Sleep(lease + 20*time.Millisecond)
	drained := 0
	for {
		l, err := s.Claim(ctx, ClaimOptions{Queue: "loop", Max: 500})
		if err != nil {
			t.Fatal(err)
		}
		if l == nil {
			break
		}
		for _, m := range l.Messages {
			if acked[m.ID] || !present[m.ID] {
				t.Fatalf("claimed message %d, which was acked", m.ID)
			}
		}
		drained += len(l.Messages)
		if err := s.Ack(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if drained != len(present) {
		t.Fatalf("drained %d, want %d", drained, len(present))
	}
	if st := mustStats(t, s, "loop"); st != (Stats{Queue: "loop"}) {
		t.Fatalf("after the drain: %+v", st)
	}
}

// crashHold claims one batch, prints "claimed <lease end ms> <ids>" and
// waits to be killed.
func crashHold(args procArgs) error {
	s, err := Open(args.DB, Options{})
	if err != nil {
		return err
	}
	l, err := s.Claim(context.Background(), ClaimOptions{Queue: args.Queue, Max: args.Batch, Lease: args.Lease, Consumer: args.Name})
	if err != nil {
		return err
	}
	if l == nil {
		return errors.New("nothing to claim")
	}
	fields := []any{l.ExpiresAt.UnixMilli()}
	for _, id := range l.IDs() {
		fields = append(fields, id)
	}
	procOutput("claimed", fields...)
	io.Copy(io.Discard, os.Stdin) // until killed
	return errors.New("stdin closed before the kill")
}

// crashLoop claims and acks until killed, writing "acking <ids>" before
// each ack and "acked" after it, unbuffered.
func crashLoop(args procArgs) error {
	s, err := Open(args.DB, Options{})
	if err != nil {
		return err
	}
	log, err := os.OpenFile(args.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	ctx := context.Background()
	procOutput("looping")
	for {
		l, err := s.Claim(ctx, ClaimOptions{Queue: args.Queue, Max: args.Batch, Lease: args.Lease, Consumer: args.Name})
		if err != nil {
			return err
		}
		if l == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		ids := strings.Trim(fmt.Sprint(l.IDs()), "[]")
		if _, err := log.WriteString("acking " + ids + "\n"); err != nil {
			return err
		}
		if err := s.Ack(ctx, l); err != nil {
			return err
		}
		if _, err := log.WriteString("acked\n"); err != nil {
			return err
		}
	}
}

func mustStats(tb testing.TB, s *Store, queue string) Stats {
	tb.Helper()
	st, err := s.Stats(context.Background(), queue)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func checkIntegrity(tb testing.TB, s *Store) {
	tb.Helper()
	var result string
	if err := s.DB().QueryRow(`PRAGMA integrity_check`).Scan(&result); err != nil || result != "ok" {
		tb.Fatalf("integrity check: %q %v", result, err)
	}
}
