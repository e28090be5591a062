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
