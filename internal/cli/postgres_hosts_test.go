package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/internal/proctest"
)

// host is a machine simulated on this one: its own home, working and
// temporary directories, and no file shared with another host. Its
// handler's records of what it handled stay in its own directory.
type host struct {
	name    string
	dir     string
	records string
	vars    []string
}

func newHost(tb testing.TB, e *env, name, dbURL string) *host {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), name)
	for _, d := range []string{"home", "work", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	vars := proctest.Setenv(e.vars, "HOME", filepath.Join(dir, "home"))
	vars = proctest.Setenv(vars, "TMPDIR", filepath.Join(dir, "tmp"))
	vars = proctest.Setenv(vars, "DAGUQ_DB", dbURL)
	return &host{name: name, dir: dir, records: filepath.Join(dir, "records"), vars: vars}
}

// consume is daguq consume on the host, in its working directory.
func (h *host) consume(tb testing.TB, queue string, lease time.Duration) *exec.Cmd {
	args := []string{"consume", "--queue", queue, "--batch-size", "25", "--concurrency", "2",
		"--lease", lease.String(), "--progress-interval", "0s", "--consumer", h.name, "--"}
	cmd := exec.Command(daguqBin, append(args, proctest.RecordingHandler(tb, h.records, h.name, "0.05")...)...)
	cmd.Env = h.vars
	cmd.Dir = filepath.Join(h.dir, "work")
	return cmd
}

// Four hosts drain one queue on PostgreSQL, sharing nothing but its URL;
// one is killed with SIGKILL in the middle of a batch. From the handlers'
// records: every message was handled; the only ones handled twice are
// ones the killed host held, handled again after it died (when its lease
// could run out), as the next attempt.
func TestPostgresManyHostsOneKilled(t *testing.T) {
	t.Parallel()
	const total, lease = 3000, 2 * time.Second
	dbURL := pgtest.NewDatabase(t)
	e := newEnv(t)
	e.setenv("DAGUQ_DB", dbURL)
	e.ok(strings.NewReader(jsonLines(total)), "enqueue", "--queue", "hosts", "--file", "-")
	var hosts []*host
	for i := range 4 {
		hosts = append(hosts, newHost(t, e, fmt.Sprintf("host%d", i), dbURL))
	}

	victim := hosts[0].consume(t, "hosts", lease)
	var victimErr syncBuffer
	victim.Stderr = &victimErr
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, h := range hosts[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := proctest.Run(t, h.consume(t, "hosts", lease), 2*time.Minute); r.Code != 0 {
				t.Errorf("%s: %s", h.name, r)
			}
		}()
	}
	// A kill right after the victim saved a batch lands while its handler
	// still holds it.
	deadline := time.Now().Add(30 * time.Second)
	for proctest.HandledCount(hosts[0].records) == 0 {
		if time.Now().After(deadline) {
			victim.Process.Kill()
			t.Fatalf("the victim handled nothing in 30 s\n%s", &victimErr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	victim.Process.Kill() // SIGKILL
	killed := time.Now()
	victim.Wait()
	wg.Wait()

	// What the victim held comes back once its lease ran out; a last
	// consumer, on another host, takes it.
	time.Sleep(time.Until(killed.Add(lease + 500*time.Millisecond)))
	if r := proctest.Run(t, hosts[1].consume(t, "hosts", lease), time.Minute); r.Code != 0 {
		t.Fatalf("sweeper: %s", r)
	}

	var dirs []string
	for _, h := range hosts {
		dirs = append(dirs, h.records)
	}
	doubles := proctest.CheckKilledConsumer(t, proctest.ReadDeliveries(t, dirs...), total, hosts[0].name, killed)
	if doubles == 0 {
		t.Errorf("no message the victim held was handled again: its batch was lost or never held")
	}
	t.Logf("%d hosts, %d messages; %d held by the killed host handled again after it died", len(hosts), total, doubles)
	if s := e.stats("hosts"); s.Ready+s.InFlight+s.Delayed+s.Dead != 0 {
		t.Errorf("left in the queue: %+v", s)
	}
}
