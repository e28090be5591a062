package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// peekBodies lists the bodies of queue's ready messages, in claim order.
func (e *env) peekBodies(queue string) []string {
	e.tb.Helper()
	r := e.ok(nil, "peek", queue, "--json", "--limit", "1000")
	var bodies []string
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if line == "" {
			continue
		}
		var m struct{ Body json.RawMessage }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			e.tb.Fatalf("peek --json line %q: %v", line, err)
		}
		bodies = append(bodies, string(m.Body))
	}
	return bodies
}

// --message given several times enqueues every one, in order, in one
// transaction (all or none), like --messages.
func TestEnqueueRepeatedMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.ok(nil, "enqueue", "--queue", "q", "--message", `{"n":"A"}`, "--message", `{"n":"B"}`, "--message", "3")
	if s := decode[enqueueSummary](t, r); s.Enqueued != 3 || len(s.IDs) != 3 {
		t.Fatalf("enqueue of three --message: %s", r)
	}
	if got, want := strings.Join(e.peekBodies("q"), " "), `{"n":"A"} {"n":"B"} 3`; got != want {
		t.Errorf("bodies %s, want %s", got, want)
	}
	e.ok(nil, "enqueue", "--queue", "raw", "--raw", "--message", "first", "--message", "second")
	if got, want := strings.Join(e.peekBodies("raw"), " "), `"first" "second"`; got != want {
		t.Errorf("raw bodies %s, want %s", got, want)
	}

	// One bad message: none enqueued, exit 2 naming --message.
	r = e.run(nil, "enqueue", "--queue", "q", "--message", "1", "--message", "{nope")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--message") {
		t.Errorf("a bad second --message: want exit 2 naming --message\n%s", r)
	}
	if s := e.stats("q"); s.Ready != 3 {
		t.Errorf("a refused enqueue stored messages: %+v", s)
	}
	// --message and --messages together: refused.
	r = e.run(nil, "enqueue", "--queue", "q", "--message", "1", "--message", "2", "--messages", "[3]")
	if r.Code != 2 || !strings.Contains(r.Stderr, "--messages") {
		t.Errorf("--message twice and --messages: want exit 2\n%s", r)
	}
}

// Invalid UTF-8 is refused the same way as JSON, --raw and file lines:
// exit 2 naming the line and byte offset, nothing enqueued.
func TestEnqueueRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "q", "--message", "1") // the queue exists
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"message JSON", "", []string{"--message", "\"caf\xe9\""}, "byte offset 4"},
		{"message raw", "", []string{"--raw", "--message", "caf\xe9"}, "byte offset 3"},
		{"file line", "{\"ok\":1}\n\"caf\xe9\"\n", []string{"--file", "-"}, "line 2: invalid UTF-8 at byte offset 4"},
		{"raw line", "fine\ncaf\xe9\n", []string{"--raw", "--file", "-"}, "line 2: invalid UTF-8 at byte offset 3"},
	} {
		var stdin *strings.Reader
		if tt.stdin != "" {
			stdin = strings.NewReader(tt.stdin)
		}
		args := append([]string{"enqueue", "--queue", "q"}, tt.args...)
		var r result
		if stdin != nil {
			r = e.run(stdin, args...)
		} else {
			r = e.run(nil, args...)
		}
		if r.Code != 2 || !strings.Contains(r.Stderr, "invalid UTF-8") || !strings.Contains(r.Stderr, tt.want) {
			t.Errorf("%s: want exit 2 naming %q\n%s", tt.name, tt.want, r)
		}
	}
	if s := e.stats("q"); s.Ready != 1 {
		t.Errorf("refused input was enqueued: %+v", s)
	}
}

// Control characters in group keys, bodies and a handler's last error reach
// the tables of peek and dlq list escaped (\x1b, \n, \u009b), so they cannot
// drive the terminal or break a row; --json keeps them exactly.
func TestTablesEscapeControlCharacters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	group := "red\x1b[31m\x1b]0;pwned\x07\tg\x7f"
	e.ok(nil, "enqueue", "--queue", "q", "--group", group, "--message", "{\"csi\":\"\u009b2J\"}")
	e.ok(nil, "enqueue", "--queue", "dead", "--group", group, "--max-attempts", "1", "--raw", "--message", "del\x7f")
	e.ok(nil, "consume", "--queue", "dead", "--", "sh", "-c", `printf 'Traceback\n\033[2Jboom\033]8;;http://x\a\n' >&2; exit 1`)

	check := func(args ...string) string {
		t.Helper()
		out := e.ok(nil, args...).Stdout
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			for _, r := range line {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
					t.Errorf("daguq %s prints control character %U:\n%q", strings.Join(args, " "), r, out)
					break
				}
			}
		}
		return out
	}
	if out := check("peek", "q"); !strings.Contains(out, `red\x1b[31m\x1b]0;pwned\x07\tg\x7f`) || !strings.Contains(out, `\u009b2J`) {
		t.Errorf("peek table does not show the escapes:\n%s", out)
	}
	if out := check("dlq", "list", "dead"); !strings.Contains(out, `"del\x7f"`) {
		t.Errorf("dlq list table does not show the escapes:\n%s", out)
	}
	check("stats")

	var m struct {
		Group     string `json:"group"`
		LastError string `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(e.ok(nil, "dlq", "list", "dead", "--json").Stdout), &m); err != nil {
		t.Fatal(err)
	}
	if m.Group != group || !strings.Contains(m.LastError, "\x1b[2Jboom") {
		t.Errorf("--json changed the text: group %q, last error %q", m.Group, m.LastError)
	}
}

// dlq list shows the end of the last error, where a traceback says what went
// wrong: its last non-empty line, cut from the left when long.
func TestDLQListShowsTheLastLineOfTheError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "q", "--max-attempts", "1", "--message", "1")
	e.ok(nil, "consume", "--queue", "q", "--", "sh", "-c",
		`printf 'Traceback (most recent call last):\n  File "h.py", line 3\nValueError: the mailbox of the customer is full right now\n\n' >&2; exit 1`)
	out := e.ok(nil, "dlq", "list", "q").Stdout
	if !strings.Contains(out, "...box of the customer is full right now") || strings.Contains(out, "Traceback") {
		t.Errorf("LAST_ERROR is not the end of the last line:\n%s", out)
	}
	// The escaped control characters of the last line are shown too.
	e.ok(nil, "enqueue", "--queue", "c", "--max-attempts", "1", "--message", "1")
	e.ok(nil, "consume", "--queue", "c", "--", "sh", "-c", `printf 'first\n\033[2Jboom\033]8;;http://x\a\n' >&2; exit 1`)
	if out := e.ok(nil, "dlq", "list", "c").Stdout; !strings.Contains(out, `\x1b[2Jboom\x1b]8;;http://x\x07`) {
		t.Errorf("LAST_ERROR does not show the last line, escaped:\n%s", out)
	}
}

// A result file that cannot be read nacks the whole batch, and stderr says
// why: the file and the line that is wrong.
func TestBadResultFileIsExplained(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "q", "--messages", "[1,2]")
	r := e.ok(nil, "consume", "--queue", "q", "--mode", "once", "--", "sh", "-c",
		`cat >/dev/null; printf '%s\n' "$(head -c0 /dev/null)" 'not an id' > "$DAGUQ_RESULT_FILE"`)
	if s := decode[consumeSummary](t, r); s.Retried != 2 {
		t.Fatalf("a bad result file: want the batch nacked\n%s", r)
	}
	if !strings.Contains(r.Stderr, "result file") || !strings.Contains(r.Stderr, "result-") ||
		!strings.Contains(r.Stderr, "line 2") || !strings.Contains(r.Stderr, "not an id") {
		t.Errorf("stderr does not name the result file and its bad line:\n%s", r.Stderr)
	}
}
