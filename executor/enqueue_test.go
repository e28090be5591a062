package executor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

func enqueueSummary(tb testing.TB, r result) EnqueueSummary {
	tb.Helper()
	var s EnqueueSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		tb.Fatalf("stdout is not one JSON summary: %v\nstdout: %s", err, r.stdout)
	}
	return s
}

func bodies(tb testing.TB, te *testEnv, queue string, state queuestore.State) []string {
	tb.Helper()
	var out []string
	for _, m := range te.peek(queue, state) {
		out = append(out, string(m.Body))
	}
	return out
}

func TestEnqueueBodies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"yaml map", map[string]any{"message": map[string]any{"to": "a@b.c", "n": 1}}, []string{`{"n":1,"to":"a@b.c"}`}},
		{"yaml map from an older decoder", map[string]any{"message": map[any]any{"k": []any{1, "x"}}}, []string{`{"k":[1,"x"]}`}},
		{"json text", map[string]any{"message": ` {"to": "a@b.c"} `}, []string{`{"to":"a@b.c"}`}},
		{"json string text", map[string]any{"message": `"hi"`}, []string{`"hi"`}},
		{"number", map[string]any{"message": 42}, []string{`42`}},
		{"number as text", map[string]any{"message": "42"}, []string{`42`}},
		{"raw text", map[string]any{"message": "hello $world", "raw": true}, []string{`"hello $world"`}},
		{"list", map[string]any{"messages": []any{map[string]any{"a": 1}, `[1,2]`, true}}, []string{`{"a":1}`, `[1,2]`, `true`}},
		{"list as json text", map[string]any{"messages": `[{"a":1}, "s", null]`}, []string{`{"a":1}`, `"s"`, `null`}},
		{"raw list", map[string]any{"messages": []any{"x", "y"}, "raw": "true"}, []string{`"x"`, `"y"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			te := setup(t)
			cfg := map[string]any{"queue": "q"}
			for k, v := range tc.config {
				cfg[k] = v
			}
			r := te.run(KindEnqueue, cfg)
			wantExit(t, r.err, 0)
			if s := enqueueSummary(t, r); s.Enqueued != len(tc.want) || len(s.IDs) != len(tc.want) {
				t.Fatalf("summary %+v", s)
			}
			if got := bodies(t, te, "q", queuestore.StateReady); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("bodies\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestEnqueueFileAndStdin(t *testing.T) {
	t.Parallel()
	te := setup(t)
	lines := "{\"n\":1}\n\n  [2]  \r\n\"three\"\n"
	os.WriteFile(filepath.Join(te.dir, "in.jsonl"), []byte(lines), 0o644)
	r := te.run(KindEnqueue, map[string]any{"queue": "f", "file": "in.jsonl", "priority": "7"})
	wantExit(t, r.err, 0)
	if got := bodies(t, te, "f", queuestore.StateReady); strings.Join(got, " ") != `{"n":1} [2] "three"` {
		t.Fatalf("bodies %v", got)
	}
	if m := te.peek("f", queuestore.StateReady)[0]; m.Priority != 7 {
		t.Fatalf("priority %d", m.Priority)
	}

	e := te.exec(KindEnqueue, map[string]any{"queue": "s", "file": "-", "raw": true}, nil)
	e.(StdinSetter).SetStdin(strings.NewReader("plain text line\nsecond\n"))
	r = runExecutor(t, e, context.Background())
	wantExit(t, r.err, 0)
	if got := bodies(t, te, "s", queuestore.StateReady); strings.Join(got, " ") != `"plain text line" "second"` {
		t.Fatalf("stdin bodies %v", got)
	}
}

func TestEnqueueEnvelope(t *testing.T) {
	t.Parallel()
	te := setup(t)
	lines := `{"body":{"a":1},"priority":9,"group":"g","dedupe_key":"k1","max_attempts":2}
{"body":"later","delay":"1h"}
{"body":null,"not_before":"2099-01-01T00:00:00Z"}
{"body":[1],"dedupe_key":"k1"}
`
	os.WriteFile(filepath.Join(te.dir, "env.jsonl"), []byte(lines), 0o644)
	r := te.run(KindEnqueue, map[string]any{"queue": "q", "file": "env.jsonl", "envelope": true, "priority": 1})
	wantExit(t, r.err, 0)
	s := enqueueSummary(t, r)
	if s.Enqueued != 3 || s.Duplicates != 1 {
		t.Fatalf("summary %+v", s)
	}
	ready := te.peek("q", queuestore.StateReady)
	if len(ready) != 1 || ready[0].Priority != 9 || ready[0].Group != "g" || ready[0].MaxAttempts != 2 || string(ready[0].Body) != `{"a":1}` {
		t.Fatalf("ready %+v", ready)
	}
	delayed := te.peek("q", queuestore.StateDelayed)
	if len(delayed) != 2 || delayed[0].Priority != 1 {
		t.Fatalf("delayed %+v", delayed)
	}
}

func TestEnqueueDedupe(t *testing.T) {
	t.Parallel()
	te := setup(t)
	one := map[string]any{"queue": "q", "message": `{"x":1}`, "dedupe_key": "order-7"}
	wantExit(t, te.run(KindEnqueue, one).err, 0)
	r := te.run(KindEnqueue, one)
	wantExit(t, r.err, 0)
	if s := enqueueSummary(t, r); s.Enqueued != 0 || s.Duplicates != 1 || len(s.IDs) != 0 {
		t.Fatalf("second enqueue %+v", s)
	}
	bulk := map[string]any{"queue": "b", "messages": []any{1, 2, 3}, "dedupe_key": "run-1"}
	wantExit(t, te.run(KindEnqueue, bulk).err, 0)
	r = te.run(KindEnqueue, bulk) // a Dagu retry of the same step
	if s := enqueueSummary(t, r); s.Enqueued != 0 || s.Duplicates != 3 {
		t.Fatalf("bulk re-run %+v", s)
	}
	if st := te.stats("b"); st.Ready != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEnqueueSchedule(t *testing.T) {
	t.Parallel()
	te := setup(t)
	wantExit(t, te.run(KindEnqueue, map[string]any{"queue": "q", "message": 1, "delay": "1h"}).err, 0)
	wantExit(t, te.run(KindEnqueue, map[string]any{"queue": "q", "message": 2, "not_before": "0 9 * * *"}).err, 0)
	wantExit(t, te.run(KindEnqueue, map[string]any{"queue": "q", "message": 3, "not_before": "2000-01-01T00:00:00Z"}).err, 0)
	if st := te.stats("q"); st.Delayed != 2 || st.Ready != 1 {
		t.Fatalf("stats %+v", st)
	}
	for _, m := range te.peek("q", queuestore.StateDelayed) {
		if string(m.Body) == "2" {
			if l := m.VisibleAt.Local(); l.Hour() != 9 || l.Minute() != 0 || time.Until(l) > 24*time.Hour {
				t.Fatalf("cron not_before gave %s", l)
			}
		}
	}
}

func TestEnqueueNextCronOccurrence(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 10, 30, 0, 0, time.Local)
	got, err := parseNotBefore("0 9 * * *", now)
	if err != nil || !got.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.Local)) {
		t.Fatalf("got %s, %v", got, err)
	}
	got, err = parseNotBefore("2026-05-01T12:00:00+02:00", now)
	if err != nil || !got.Equal(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("got %s, %v", got, err)
	}
}

func TestEnqueueBulkIsAllOrNothing(t *testing.T) {
	t.Parallel()
	te := setup(t)
	var b strings.Builder
	for i := 0; i < 500; i++ {
		b.WriteString(`{"i":` + itoa(i) + "}\n")
	}
	b.WriteString("{broken\n")
	os.WriteFile(filepath.Join(te.dir, "bulk.jsonl"), []byte(b.String()), 0o644)
	r := te.run(KindEnqueue, map[string]any{"queue": "q", "file": "bulk.jsonl"})
	wantExit(t, r.err, ExitUsage)
	if !strings.Contains(r.err.Error(), "line 501") || r.stdout != "" {
		t.Fatalf("error %v, stdout %q", r.err, r.stdout)
	}
	if st := te.stats("q"); st.Ready+st.Delayed != 0 {
		t.Fatalf("half-enqueued: %+v", st)
	}
}

func TestEnqueueTruncatesIDs(t *testing.T) {
	t.Parallel()
	te := setup(t)
	msgs := make([]any, 1500)
	for i := range msgs {
		msgs[i] = i
	}
	r := te.run(KindEnqueue, map[string]any{"queue": "q", "messages": msgs})
	wantExit(t, r.err, 0)
	s := enqueueSummary(t, r)
	if s.Enqueued != 1500 || len(s.IDs) != maxSummaryIDs || !s.IDsTruncated {
		t.Fatalf("summary enqueued %d, %d ids, truncated %v", s.Enqueued, len(s.IDs), s.IDsTruncated)
	}
}

func TestEnqueueThenConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	te := setup(t)
	wantExit(t, te.run(KindEnqueue, map[string]any{"queue": "q", "message": map[string]any{"hello": "world"}}).err, 0)
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": []any{"cp", "{batch_file}", "got.jsonl"}})
	wantExit(t, r.err, 0)
	b, _ := os.ReadFile(filepath.Join(te.dir, "got.jsonl"))
	var m ClaimedMessage
	if err := json.Unmarshal(b, &m); err != nil || string(m.Body) != `{"hello":"world"}` {
		t.Fatalf("handler got %s (%v)", b, err)
	}
}
