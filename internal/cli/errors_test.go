package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every bad flag, argument or value: exit 2, one line on stderr naming the
// flag or the argument, nothing on stdout.
func TestBadInputNamesTheFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown flag", []string{"consume", "--queue", "q", "--batch-sizes", "3", "--", "true"}, "--batch-sizes"},
		{"batch size zero", []string{"consume", "--queue", "q", "--batch-size", "0", "--", "true"}, "--batch-size"},
		{"batch size text", []string{"consume", "--queue", "q", "--batch-size", "many", "--", "true"}, "--batch-size"},
		{"bad mode", []string{"consume", "--queue", "q", "--mode", "forever", "--", "true"}, "--mode"},
		{"bad duration", []string{"consume", "--queue", "q", "--lease", "soon", "--", "true"}, "--lease"},
		{"bad boolean", []string{"consume", "--queue", "q", "--group-by=maybe", "--", "true"}, "--group-by"},
		{"no handler", []string{"consume", "--queue", "q"}, "--run or --script"},
		{"two handlers", []string{"consume", "--queue", "q", "--run", "true", "--", "true"}, "handler once"},
		{"argument before dash", []string{"consume", "--queue", "q", "true"}, "\"--\""},
		{"no queue", []string{"enqueue", "--message", "1"}, "--queue"},
		{"bad queue name", []string{"enqueue", "--queue", "a b", "--message", "1"}, "--queue"},
		{"invalid JSON", []string{"enqueue", "--queue", "q", "--message", "{nope"}, "--message"},
		{"negative delay", []string{"enqueue", "--queue", "q", "--message", "1", "--delay", "-5s"}, "--delay"},
		{"bad not-before", []string{"enqueue", "--queue", "q", "--message", "1", "--not-before", "tomorrow"}, "--not-before"},
		{"priority text", []string{"enqueue", "--queue", "q", "--message", "1", "--priority", "high"}, "--priority"},
		{"nothing to enqueue", []string{"enqueue", "--queue", "q"}, "nothing to enqueue"},
		{"missing file", []string{"enqueue", "--queue", "q", "--file", "/nonexistent/x.jsonl"}, "--file"},
		{"with not JSON", []string{"enqueue", "--with", "{queue: q}"}, "--with"},
		{"with unknown key", []string{"enqueue", "--with", `{"queue":"q","message":1,"colour":"red"}`}, `"colour"`},
		{"with bad value", []string{"consume", "--with", `{"queue":"q","run":"true","batch_size":"lots"}`}, "batch_size"},
		{"peek state", []string{"peek", "q", "--state", "lost"}, "--state"},
		{"peek limit", []string{"peek", "q", "--limit", "0"}, "--limit"},
		{"peek no queue", []string{"peek"}, "QUEUE"},
		{"limit fraction", []string{"limit", "q", "1.5"}, "N argument"},
		{"limit text", []string{"limit", "q", "some"}, "N argument"},
		{"pause bad queue", []string{"pause", "a/b"}, "QUEUE"},
		{"dlq purge no yes", []string{"dlq", "purge", "q"}, "--yes"},
		{"dlq no subcommand", []string{"dlq"}, "list, redrive or purge"},
		{"redrive bad id", []string{"dlq", "redrive", "q", "--id", "x"}, "--id"},
		{"unknown command", []string{"consumer"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.run(nil, tt.args...)
			if r.Code != 2 {
				t.Errorf("exit %d, want 2\n%s", r.Code, r)
			}
			if !strings.Contains(r.Stderr, tt.want) {
				t.Errorf("stderr does not name %q:\n%s", tt.want, r.Stderr)
			}
			if lines := strings.Count(strings.TrimSpace(r.Stderr), "\n") + 1; lines != 1 {
				t.Errorf("stderr has %d lines, want one:\n%s", lines, r.Stderr)
			}
			if strings.Contains(r.Stderr, "secret") {
				t.Errorf("stderr shows a password: %s", r.Stderr)
			}
			if r.Stdout != "" {
				t.Errorf("stdout not empty: %q", r.Stdout)
			}
			if _, err := os.Stat(e.db); err == nil && tt.args[0] == "enqueue" {
				if s := e.stats("q"); s.Ready != 0 {
					t.Errorf("a refused enqueue stored %d message(s)", s.Ready)
				}
			}
		})
	}
}

// A database path that cannot be created: exit 3, the path and the rule
// that chose it named, for the store commands and the executors alike.
func TestUnwritableDatabasePath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file := filepath.Join(e.dir, "plain-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(file, "sub", "queues.db") // a directory under a regular file
	for _, args := range [][]string{
		{"--db", bad, "migrate"},
		{"--db", bad, "pause", "q"},
		{"--db", bad, "enqueue", "--queue", "q", "--message", "1"},
		{"--db", bad, "consume", "--queue", "q", "--", "true"},
	} {
		r := e.run(nil, args...)
		if r.Code != 3 || !strings.Contains(r.Stderr, bad) {
			t.Errorf("daguq %s: want exit 3 naming %s\n%s", strings.Join(args, " "), bad, r)
		}
		if lines := strings.Count(strings.TrimSpace(r.Stderr), "\n") + 1; lines != 1 {
			t.Errorf("daguq %s: stderr has %d lines, want one:\n%s", strings.Join(args, " "), lines, r.Stderr)
		}
	}
	e.setenv("DAGUQ_DB", bad)
	if r := e.run(nil, "migrate"); r.Code != 3 || !strings.Contains(r.Stderr, "DAGUQ_DB") {
		t.Errorf("DAGUQ_DB unwritable: want exit 3 naming DAGUQ_DB\n%s", r)
	}
}

// One classifier (executor.ExitCode) gives every command and the executors
// the same exit status for the same database problem: 3, with the rule that
// chose the database named, and never a password.
func TestDatabaseErrorsExitThreeEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	notSQLite := filepath.Join(e.dir, "notes.txt")
	if err := os.WriteFile(notSQLite, []byte("hello, this is not a database file"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, db := range []struct{ name, path, want string }{
		{"a directory", e.dir, "is a directory"},
		{"an unreachable PostgreSQL", "postgres://u:secret@127.0.0.1:1/db?connect_timeout=5", "u:xxxxx@127.0.0.1:1"},
		{"a URL of no backend", "mysql://u:secret@host/db", "database backend not available"},
		{"not SQLite", notSQLite, "not a daguq database"},
	} {
		for _, args := range [][]string{
			{"migrate"},
			{"pause", "q"},
			{"stats"},
			{"enqueue", "--queue", "q", "--message", "1"},
			{"consume", "--queue", "q", "--", "true"},
			{"consume", "--with", `{"queue":"q","run":"true","db":"` + db.path + `"}`},
		} {
			if len(args) < 2 || args[1] != "--with" {
				args = append([]string{"--db", db.path}, args...)
			}
			r := e.run(nil, args...)
			if r.Code != 3 || !strings.Contains(r.Stderr, db.want) {
				t.Errorf("%s: daguq %s: want exit 3 naming %q\n%s", db.name, strings.Join(args, " "), db.want, r)
			}
			if strings.Contains(r.Stderr, "secret") || strings.Contains(r.Stderr, "invalid input") {
				t.Errorf("%s: daguq %s: stderr shows a password or calls the path input:\n%s", db.name, strings.Join(args, " "), r.Stderr)
			}
			if lines := strings.Count(strings.TrimSpace(r.Stderr), "\n") + 1; lines != 1 {
				t.Errorf("%s: daguq %s: stderr has %d lines, want one:\n%s", db.name, strings.Join(args, " "), lines, r.Stderr)
			}
		}
	}
}

// A refused config value names the flags the user typed, every one of them,
// and the with: keys of --with as written there; the executor's errors carry
// their keys, so no text is rewritten to get there.
func TestConfigErrorsSpellFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string // the stderr line
	}{
		{"bound", []string{"consume", "--queue", "q", "--batch-size", "0", "--", "true"},
			"daguq consume: --batch-size must be 1..10000, got 0"},
		{"two flags", []string{"consume", "--queue", "q", "--min-priority", "5", "--max-priority", "3", "--", "true"},
			"daguq consume: --min-priority (5) must be at most --max-priority (3)"},
		{"flag and --with", []string{"consume", "--with", `{"max_priority":3}`, "--queue", "q", "--min-priority", "5", "--", "true"},
			"daguq consume: --min-priority (5) must be at most max_priority (3)"},
		{"--with", []string{"consume", "--with", `{"queue":"q","run":"true","batch_size":0}`},
			"daguq consume: batch_size must be 1..10000, got 0"},
		{"exclusive", []string{"enqueue", "--queue", "q", "--message", "1", "--delay", "5s", "--not-before", "0 9 * * *"},
			"daguq enqueue: --delay and --not-before are exclusive"},
		{"no handler", []string{"consume", "--queue", "q"},
			"daguq consume: --run or --script is required for --action consume: the handler that gets each batch (e.g. --run ./handle.sh)"},
		{"not JSON", []string{"enqueue", "--queue", "q", "--message", "{nope"},
			`daguq enqueue: --message: is not valid JSON (invalid character 'n' looking for beginning of object key string): "{nope"; set --raw to store text as a JSON string`},
		{"repeated flag", []string{"enqueue", "--queue", "q", "--message", "1", "--message", "{nope"},
			`daguq enqueue: --message number 2: is not valid JSON (invalid character 'n' looking for beginning of object key string): "{nope"; set --raw to store text as a JSON string`},
		{"two errors", []string{"pool", "run", "p", "--slots", "0", "--shell", "", "--", "true"},
			`daguq pool run: --slots must be 1..1000000, got 0; --shell must name a program, like "sh" or "bash -eu", got ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.run(nil, tt.args...)
			if r.Code != 2 || strings.TrimSpace(r.Stderr) != tt.want {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and\n%s", r.Code, strings.TrimSpace(r.Stderr), tt.want)
			}
		})
	}
}
