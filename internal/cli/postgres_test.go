package cli_test

import (
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
)

// The commands work on a PostgreSQL database named by DAGUQ_DB or --db,
// and never print its password.
func TestCommandsOnPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	e := newEnv(t)
	e.setenv("DAGUQ_DB", url)
	noPassword := func(r result) {
		t.Helper()
		if strings.Contains(r.Stdout+r.Stderr, pgtest.Password) {
			t.Fatalf("output shows the password:\n%s", r)
		}
	}
	noPassword(e.ok(nil, "migrate"))
	noPassword(e.ok(strings.NewReader(jsonLines(6)), "enqueue", "--queue", "jobs", "--file", "-"))
	if st := e.stats("jobs"); st.Ready != 6 {
		t.Fatalf("stats %+v, want 6 ready", st)
	}
	e.ok(nil, "pause", "jobs")
	e.ok(nil, "limit", "jobs", "2")
	if st := e.stats("jobs"); !st.Paused || st.InFlightLimit != 2 {
		t.Fatalf("stats %+v, want paused with a limit of 2", st)
	}
	e.ok(nil, "resume", "jobs")
	r := e.run(nil, "consume", "--queue", "jobs", "--batch-size", "3", "--max-attempts", "1", "--", "sh", "-c", "cat >/dev/null; exit 1")
	noPassword(r)
	if st := e.stats("jobs"); st.Dead != 6 || st.Ready+st.InFlight != 0 {
		t.Fatalf("stats %+v after a failing consume, want 6 dead\n%s", st, r)
	}
	if r := e.ok(nil, "dlq", "list", "jobs"); strings.Count(r.Stdout, "\n") < 6 {
		t.Fatalf("dlq list:\n%s", r)
	}
	e.ok(nil, "dlq", "redrive", "jobs")
	r = e.ok(nil, "--db", url, "stats")
	noPassword(r)
	if !strings.Contains(r.Stdout, "daguq:xxxxx@127.0.0.1") || !strings.Contains(r.Stdout, "jobs") {
		t.Fatalf("stats names the database without its password and lists the queue:\n%s", r)
	}
	noPassword(e.ok(nil, "stats", "--json"))
	summary := decode[consumeSummary](t, e.ok(nil, "consume", "--queue", "jobs", "--", "sh", "-c", "cat >/dev/null"))
	if summary.Acked != 6 {
		t.Fatalf("consume after the redrive: %+v", summary)
	}

	r = e.run(nil, "--db", "postgres://u:secret@127.0.0.1:1/db?connect_timeout=5", "stats")
	if r.Code != 3 || strings.Contains(r.Stderr, "secret") || !strings.Contains(r.Stderr, "u:xxxxx@127.0.0.1:1") {
		t.Fatalf("unreachable server: want exit 3 naming the URL without its password\n%s", r)
	}

	// A wrong password fails at once, for every command, naming the host.
	u, _ := neturl.Parse(url)
	u.User = neturl.UserPassword(u.User.Username(), "Wr0ng-pw")
	for _, args := range [][]string{{"stats"}, {"enqueue", "--queue", "jobs", "--message", "1"}, {"consume", "--queue", "jobs", "--", "true"}} {
		start := time.Now()
		r = e.run(nil, append([]string{"--db", u.String()}, args...)...)
		if r.Code != 3 || strings.Contains(r.Stdout+r.Stderr, "Wr0ng-pw") || !strings.Contains(r.Stderr, "xxxxx@"+u.Host) ||
			!strings.Contains(r.Stderr, "password authentication failed") || time.Since(start) > 15*time.Second {
			t.Fatalf("daguq %s with a wrong password, after %s: want exit 3 within seconds naming %s and the cause, without the password\n%s",
				args[0], time.Since(start), u.Host, r)
		}
	}
}
