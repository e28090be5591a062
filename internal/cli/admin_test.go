package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/daguq/daguq/queuestore"
)

func TestHelpHasExamples(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	commands := [][]string{{}, {"enqueue"}, {"consume"}, {"stats"}, {"peek"}, {"dlq"}, {"dlq", "list"},
		{"dlq", "redrive"}, {"dlq", "purge"}, {"pause"}, {"resume"}, {"limit"}, {"purge"}, {"migrate"}, {"vacuum"}, {"dagu-config"}, {"version"}}
	for _, c := range commands {
		r := e.ok(nil, append(c, "--help")...)
		if !strings.Contains(r.Stdout, "Examples:") || !strings.Contains(r.Stdout, "Usage:") {
			t.Errorf("daguq %s --help has no usage or example:\n%s", strings.Join(c, " "), r.Stdout)
		}
	}
}

func TestStatsNamesDatabaseAndRule(t *testing.T) {
	t.Parallel()
	type want struct{ path, source string }
	tests := []struct {
		name  string
		setup func(e *env) ([]string, want)
	}{
		{"flag", func(e *env) ([]string, want) {
			p := filepath.Join(e.dir, "flag.db")
			return []string{"--db", p}, want{p, "flag"}
		}},
		{"DAGUQ_DB", func(e *env) ([]string, want) { return nil, want{e.db, "DAGUQ_DB"} }},
		{"DAGU_HOME", func(e *env) ([]string, want) {
			e.setenv("DAGUQ_DB", "")
			e.setenv("DAGU_HOME", filepath.Join(e.dir, "dagu"))
			return nil, want{filepath.Join(e.dir, "dagu", "daguq", "daguq.db"), "DAGU_HOME"}
		}},
		{"XDG_DATA_HOME", func(e *env) ([]string, want) {
			e.setenv("DAGUQ_DB", "")
			e.setenv("XDG_DATA_HOME", filepath.Join(e.dir, "xdg"))
			return nil, want{filepath.Join(e.dir, "xdg", "daguq", "daguq.db"), "XDG_DATA_HOME"}
		}},
		{"HOME", func(e *env) ([]string, want) {
			e.setenv("DAGUQ_DB", "")
			return nil, want{filepath.Join(e.dir, "home", ".local", "share", "daguq", "daguq.db"), "XDG_DATA_HOME"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			args, w := tt.setup(e)
			e.ok(nil, append(args, "pause", "q1", "--create")...) // creates the file
			if _, err := os.Stat(w.path); err != nil {
				t.Fatalf("pause did not create %s: %v", w.path, err)
			}
			report := decode[struct {
				DB       string       `json:"db"`
				DBSource string       `json:"db_source"`
				Queues   []queueStats `json:"queues"`
			}](t, e.ok(nil, append(args, "stats", "--json")...))
			if report.DB != w.path || report.DBSource != w.source {
				t.Errorf("stats --json: db %q from %q, want %q from %q", report.DB, report.DBSource, w.path, w.source)
			}
			if len(report.Queues) != 1 || report.Queues[0].Queue != "q1" || !report.Queues[0].Paused {
				t.Errorf("stats --json queues = %+v, want q1 paused", report.Queues)
			}
			table := e.ok(nil, append(args, "stats")...).Stdout
			if !strings.Contains(table, w.path) || !strings.Contains(table, "QUEUE") {
				t.Errorf("stats table does not name %s:\n%s", w.path, table)
			}
		})
	}
}

func TestStatsDoesNotCreateDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.ok(nil, "stats")
	if !strings.Contains(r.Stdout, "no database file yet") {
		t.Errorf("stats on a missing file:\n%s", r)
	}
	// No database, no queue: refused (exit 2), and still no file.
	for _, args := range [][]string{{"peek", "q"}, {"dlq", "list", "q"}, {"limit", "q"}} {
		if r := e.run(nil, args...); r.Code != 2 {
			t.Errorf("daguq %s on a missing file: %s", strings.Join(args, " "), r)
		}
	}
	if _, err := os.Stat(e.db); !os.IsNotExist(err) {
		t.Errorf("a read-only command created %s (%v)", e.db, err)
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "jobs", "--messages", `[1,2,3]`)
	e.ok(nil, "pause", "jobs")
	if s := e.stats("jobs"); !s.Paused || s.Ready != 3 {
		t.Fatalf("after pause: %+v", s)
	}
	out := filepath.Join(e.dir, "handled")
	r := e.ok(nil, "consume", "--queue", "jobs", "--", "sh", "-c", "cat >> "+out)
	summary := decode[consumeSummary](t, r)
	if summary.Messages != 0 {
		t.Fatalf("a paused queue delivered %d messages: %s", summary.Messages, r)
	}
	e.ok(nil, "resume", "jobs")
	summary = decode[consumeSummary](t, e.ok(nil, "consume", "--queue", "jobs", "--", "sh", "-c", "cat >> "+out))
	if summary.Acked != 3 {
		t.Fatalf("after resume acked %d, want 3", summary.Acked)
	}
	if s := e.stats("jobs"); s.Paused || s.Ready != 0 {
		t.Fatalf("after resume and drain: %+v", s)
	}
}

func TestLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if r := e.ok(nil, "limit", "jobs", "1", "--create"); !strings.Contains(r.Stdout, "at most 1") {
		t.Errorf("limit jobs 1: %s", r)
	}
	if s := e.stats("jobs"); s.InFlightLimit != 1 {
		t.Errorf("in_flight_limit = %d, want 1", s.InFlightLimit)
	}
	if r := e.ok(nil, "limit", "jobs"); !strings.Contains(r.Stdout, "at most 1") {
		t.Errorf("limit jobs (show): %s", r)
	}

	// With the limit at 1, four handler slots never run two batches at once:
	// each handler takes a lock directory and notes when it is already taken.
	e.ok(strings.NewReader(jsonLines(40)), "enqueue", "--queue", "jobs", "--file", "-")
	lock, overlaps := filepath.Join(e.dir, "lock"), filepath.Join(e.dir, "overlaps")
	script := "mkdir " + lock + " 2>/dev/null || echo overlap >> " + overlaps + "; cat >/dev/null; sleep 0.02; rmdir " + lock + " 2>/dev/null; true"
	r := e.ok(nil, "consume", "--queue", "jobs", "--batch-size", "4", "--concurrency", "4", "--poll-interval", "10ms", "--", "sh", "-c", script)
	if s := decode[consumeSummary](t, r); s.Acked != 40 {
		t.Errorf("acked %d of 40: %s", s.Acked, r)
	}
	if b, err := os.ReadFile(overlaps); err == nil {
		t.Errorf("limit 1 let batches overlap %d time(s)", strings.Count(string(b), "overlap"))
	}

	e.ok(nil, "limit", "jobs", "0")
	if s := e.stats("jobs"); s.InFlightLimit != 0 {
		t.Errorf("after limit 0: in_flight_limit = %d", s.InFlightLimit)
	}
}

func TestPurgeAsksForYes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "scratch", "--messages", `["a","b"]`)
	r := e.run(nil, "purge", "scratch")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--yes") {
		t.Fatalf("purge without --yes: %s", r)
	}
	if s := e.stats("scratch"); s.Ready != 2 {
		t.Fatalf("purge without --yes deleted messages: %+v", s)
	}
	if r := e.ok(nil, "purge", "scratch", "--yes"); !strings.Contains(r.Stdout, "deleted 2") {
		t.Errorf("purge --yes: %s", r)
	}
	if s := e.stats("scratch"); s.Ready != 0 {
		t.Errorf("after purge: %+v", s)
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.ok(nil, "migrate")
	if !strings.Contains(r.Stdout, fmt.Sprintf("schema version %d", queuestore.SchemaVersion())) || !strings.Contains(r.Stdout, e.db) {
		t.Errorf("migrate: %s", r)
	}
	info, err := os.Stat(e.db)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("database file %v, mode %v: want 0600", err, info.Mode())
	}
	// Not a daguq database: refused, left as it is, exit 3.
	other := filepath.Join(e.dir, "notes.txt")
	os.WriteFile(other, []byte("not sqlite at all, just some text that is long enough to be read"), 0o600)
	r = e.run(nil, "--db", other, "migrate")
	if r.Code != 3 || !strings.Contains(r.Stderr, "not a daguq database") || !strings.Contains(r.Stderr, other) {
		t.Errorf("migrate on a text file: %s", r)
	}
}
