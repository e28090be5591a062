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
