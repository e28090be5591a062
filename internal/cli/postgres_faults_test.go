package cli_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/internal/proctest"
)

// faultsEnv runs the PostgreSQL fault tests (make test-postgres-faults):
// each takes a server down for seconds.
const faultsEnv = "DAGUQ_PG_FAULTS"

func needFaults(t *testing.T) {
	t.Helper()
	if os.Getenv(faultsEnv) == "" {
		t.Skip("PostgreSQL fault test skipped: set " + faultsEnv + "=1 (make test-postgres-faults)")
	}
}

// The server restarts in the middle of a drain (down for 5 s, then up on
// the same port): the consumers wait for it and go on, an enqueue while it
// is down fails with exit 3, naming the host and not the password, and
// stores nothing, and every message is handled; twice only on a later
// attempt (a lease that ran out), never twice under one attempt.
func TestPostgresRestartMidDrain(t *testing.T) {
	needFaults(t)
	t.Parallel()
	const total, late = 3000, 200
	srv := pgtest.NewServer(t)
	db := srv.NewDatabase(t)
	u, _ := url.Parse(db)
	e := newEnv(t)
	e.setenv("DAGUQ_DB", db)
	e.ok(strings.NewReader(jsonLines(total)), "enqueue", "--queue", "jobs", "--file", "-")
	out := filepath.Join(e.dir, "out")
	consume := func(name string) []string {
		args := []string{"consume", "--queue", "jobs", "--batch-size", "10", "--concurrency", "2",
			"--lease", "15s", "--progress-interval", "0s", "--consumer", name, "--"}
		return append(args, proctest.RecordingHandler(t, out, name, "0.01")...)
	}
	noPassword := func(what string, r result) {
		t.Helper()
		if strings.Contains(r.Stdout+r.Stderr, pgtest.Password) {
			t.Errorf("%s shows the password:\n%s", what, r)
		}
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var noticed int // consumers that said the server went away and came back
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.run(nil, consume(fmt.Sprintf("c%d", i))...)
			noPassword("a consumer", r)
			if strings.Contains(r.Stderr, "unreachable") && strings.Contains(r.Stderr, "reachable again after") {
				mu.Lock()
				if noticed++; noticed == 1 {
					t.Logf("c%d said:\n%s", i, r.Stderr)
				}
				mu.Unlock()
			}
			if r.Code != 0 {
				t.Errorf("consumer c%d did not survive the restart: %s", i, r)
			}
		}()
	}
	proctest.WaitHandled(t, total/4, time.Minute, out)
	srv.Stop(t)
	down := time.Now()
	handledAtStop := proctest.HandledCount(out)

	// While the server is down: an enqueue fails at once and stores
	// nothing (its messages would be n >= total+late).
	start := time.Now()
	r := e.run(strings.NewReader(jsonLinesFrom(total+late, total+late+10)), "enqueue", "--queue", "jobs", "--file", "-")
	took := time.Since(start)
	noPassword("an enqueue while the server is down", r)
	if r.Code != 3 || !strings.Contains(r.Stderr, u.Host) || took > 15*time.Second {
		t.Errorf("enqueue while the server is down: want exit 3 within seconds naming %s, took %s\n%s", u.Host, took, r)
	}
	t.Logf("an enqueue while the server was down exited %d after %s", r.Code, took.Round(time.Millisecond))
	time.Sleep(time.Until(down.Add(5 * time.Second)))
	srv.Start(t)
	if handled := proctest.HandledCount(out); handled >= total {
		t.Fatalf("the drain ended while the server was down (%d handled): the restart came too late to test anything", handled)
	}
	e.ok(strings.NewReader(jsonLinesFrom(total, total+late)), "enqueue", "--queue", "jobs", "--file", "-")
	wg.Wait()
	if noticed == 0 {
		t.Errorf("no consumer said on stderr that the database was unreachable, then reachable again")
	}
	t.Logf("%d messages handled before the stop, %d after the restart", handledAtStop, proctest.HandledCount(out)-handledAtStop)

	// A claim whose commit's answer was lost leaves its lease to run out:
	// a last consumer takes what the drains left.
	if s := e.stats("jobs"); s.InFlight > 0 {
		t.Logf("%d messages leased by no consumer: waiting for their lease to run out", s.InFlight)
		time.Sleep(16 * time.Second)
	}
	noPassword("the last consumer", e.ok(nil, consume("last")...))
	byN := proctest.ReadDeliveries(t, out)
	twice := 0
	for n := range total + late {
		ds := byN[n]
		if len(ds) == 0 {
			t.Errorf("message %d was never handled", n)
			continue
		}
		if len(ds) > 1 {
			twice++
		}
		seen := map[int]bool{}
		for _, d := range ds {
			if seen[d.Attempt] {
				t.Errorf("message %d handled twice as attempt %d (two valid leases): %+v", n, d.Attempt, ds)
			}
			seen[d.Attempt] = true
		}
	}
	t.Logf("%d messages handled more than once (after a lease ran out)", twice)
	for n := range byN {
		if n >= total+late {
			t.Errorf("message %d of the enqueue that failed was stored", n)
		}
	}
	if s := e.stats("jobs"); s.Ready+s.InFlight+s.Delayed+s.Dead != 0 {
		t.Errorf("left in the queue: %+v", s)
	}
}
