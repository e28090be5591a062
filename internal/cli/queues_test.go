package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stderrOneLine fails unless r exited with code and its stderr is one line
// holding every want.
func stderrOneLine(tb testing.TB, r result, code int, what string, want ...string) {
	tb.Helper()
	if r.Code != code {
		tb.Errorf("%s: exit %d, want %d\n%s", what, r.Code, code, r)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			tb.Errorf("%s: stderr does not name %q:\n%s", what, w, r.Stderr)
		}
	}
	if lines := strings.Count(strings.TrimSpace(r.Stderr), "\n") + 1; lines != 1 {
		tb.Errorf("%s: stderr has %d lines, want one:\n%s", what, lines, r.Stderr)
	}
}

// An admin command on a queue the database does not know (no messages, no
// settings) is refused: a typo must not create a paused queue or print
// zeros. --create makes pause, resume and limit set up a new queue.
func TestUnknownQueueIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "emails", "--message", "1")
	for _, args := range [][]string{
		{"pause", "emials"},
		{"resume", "emials"},
		{"limit", "emials"},
		{"limit", "emials", "4"},
		{"stats", "emials"},
		{"stats", "emails", "emials"},
		{"peek", "emials"},
		{"dlq", "list", "emials"},
		{"dlq", "redrive", "emials"},
		{"dlq", "purge", "emials", "--yes"},
		{"purge", "emials", "--yes"},
	} {
		r := e.run(nil, args...)
		stderrOneLine(t, r, 2, strings.Join(args, " "), `unknown queue "emials"`, "daguq stats")
		if r.Stdout != "" {
			t.Errorf("%s: stdout %q, want none", strings.Join(args, " "), r.Stdout)
		}
	}
	if r := e.run(nil, "pause", "emials"); !strings.Contains(r.Stderr, "--create") {
		t.Errorf("pause of an unknown queue does not point at --create:\n%s", r)
	}
	if queues := decode[struct{ Queues []queueStats }](t, e.ok(nil, "stats", "--json")).Queues; len(queues) != 1 {
		t.Errorf("a refused command created a queue: %+v", queues)
	}

	// --create: the queue is set up, and known from then on.
	e.ok(nil, "pause", "new", "--create")
	e.ok(nil, "resume", "new")
	e.ok(nil, "limit", "pool", "2", "--create")
	e.ok(nil, "resume", "other", "--create")
	if s := e.stats("pool"); s.InFlightLimit != 2 {
		t.Errorf("limit --create: %+v", s)
	}
	e.ok(nil, "stats", "new", "other", "emails")
	e.ok(nil, "peek", "new")
	if r := e.run(nil, "limit", "x", "--create"); r.Code != 2 || !strings.Contains(r.Stderr, "--create") {
		t.Errorf("limit --create without N: want exit 2\n%s", r)
	}
}

// Without a database file no queue is known; the look does not create it.
func TestUnknownQueueWithoutDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, args := range [][]string{{"peek", "q"}, {"dlq", "list", "q"}, {"stats", "q"}, {"pause", "q"}, {"limit", "q"}} {
		stderrOneLine(t, e.run(nil, args...), 2, strings.Join(args, " "), `unknown queue "q"`, e.db)
	}
	if _, err := os.Stat(e.db); !os.IsNotExist(err) {
		t.Errorf("a refused command created %s (%v)", e.db, err)
	}
	e.ok(nil, "pause", "q", "--create")
	if s := e.stats("q"); !s.Paused {
		t.Errorf("pause --create on a new database: %+v", s)
	}
}

// An empty --db is an error naming the flag, not the default database.
func TestEmptyDBIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, args := range [][]string{
		{"--db", "", "stats"},
		{"--db=", "migrate"},
		{"--db", " ", "enqueue", "--queue", "q", "--message", "1"},
		{"enqueue", "--with", `{"queue":"q","message":1,"db":""}`},
		{"consume", "--with", `{"queue":"q","run":"true","db":""}`},
	} {
		stderrOneLine(t, e.run(nil, args...), 2, strings.Join(args, " "), "db", "empty")
	}
	if _, err := os.Stat(e.db); !os.IsNotExist(err) {
		t.Errorf("an empty --db used the default database %s", e.db)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "home")); !os.IsNotExist(err) {
		t.Errorf("an empty --db used the XDG default (%v)", err)
	}
}

// Queue names start with a letter or digit: ".", ".." and "-dash" are
// refused by every command, with the rule.
func TestQueueNamesStartWithALetterOrDigit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{".", "..", "-dash", "_x"} {
		stderrOneLine(t, e.run(nil, "enqueue", "--queue="+name, "--message", "1"), 2, "enqueue --queue="+name, "starting with a letter or digit")
		stderrOneLine(t, e.run(nil, "pause", "--create", "--", name), 2, "pause -- "+name, "starting with a letter or digit")
		stderrOneLine(t, e.run(nil, "stats", "--", name), 2, "stats -- "+name, "starting with a letter or digit")
	}
}

// limit's N out of range, negative ones included, names the value and the
// allowed range (cobra took -1 for a flag).
func TestLimitOutOfRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "q", "--message", "1")
	for _, n := range []string{"-1", "-25", "1000001", "-0.5"} {
		stderrOneLine(t, e.run(nil, "limit", "q", n), 2, "limit q "+n, `"`+n+`"`, "0..1000000", "0 = no limit")
	}
}
