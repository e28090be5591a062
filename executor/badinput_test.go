package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfig: every bad `with:` value is refused by New and Validate with
// an error naming the key (and its allowed values where there are some).
func TestBadConfig(t *testing.T) {
	t.Parallel()
	queue := func(kv ...any) map[string]any {
		m := map[string]any{"queue": "q", "run": "./h.sh"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	enq := func(kv ...any) map[string]any {
		m := map[string]any{"queue": "q", "message": "1"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		kind   string
		config map[string]any
		want   []string // substrings of the error
	}{
		{"queue missing", KindQueue, map[string]any{"run": "x"}, []string{"queue is required"}},
		{"queue bad name", KindQueue, queue("queue", "my queue!"), []string{`queue "my queue!"`, "letters, digits"}},
		{"queue wrong type", KindQueue, queue("queue", []any{"a"}), []string{"queue must be a string"}},
		{"unknown key", KindQueue, queue("batchsize", 10), []string{`unknown key "batchsize"`, "allowed keys are", "batch_size"}},
		{"action", KindQueue, queue("action", "peek"), []string{"action must be one of consume, claim, ack, nack", `"peek"`}},
		{"batch_size text", KindQueue, queue("batch_size", "ten"), []string{"batch_size must be an integer", `"ten"`}},
		{"batch_size zero", KindQueue, queue("batch_size", 0), []string{"batch_size must be 1..10000, got 0"}},
		{"batch_size huge", KindQueue, queue("batch_size", "10001"), []string{"batch_size must be 1..10000, got 10001"}},
		{"batch_size fraction", KindQueue, queue("batch_size", 2.5), []string{"batch_size"}},
		{"max_wait text", KindQueue, queue("max_wait", "soon"), []string{"max_wait must be a duration"}},
		{"max_wait range", KindQueue, queue("max_wait", "2h"), []string{"max_wait must be 0s..1h0m0s, got 2h0m0s"}},
		{"max_bytes negative", KindQueue, queue("max_bytes", -1), []string{"max_bytes"}},
		{"group_by", KindQueue, queue("group_by", "maybe"), []string{"group_by must be a boolean"}},
		{"group and group_by", KindQueue, queue("group_by", true, "group", "g"), []string{"group and group_by are exclusive"}},
		{"priority band", KindQueue, queue("min_priority", 5, "max_priority", "1"), []string{"min_priority (5) must be at most max_priority (1)"}},
		{"min_priority text", KindQueue, queue("min_priority", "high"), []string{"min_priority must be an integer"}},
		{"concurrency zero", KindQueue, queue("concurrency", 0), []string{"concurrency must be 1..256, got 0"}},
		{"concurrency huge", KindQueue, queue("concurrency", 1000), []string{"concurrency must be 1..256"}},
		{"mode", KindQueue, queue("mode", "forever"), []string{"mode must be one of drain, once, watch"}},
		{"idle_timeout negative", KindQueue, queue("idle_timeout", "-5s"), []string{"idle_timeout must be at least 0s"}},
		{"poll_interval tiny", KindQueue, queue("poll_interval", "1ms"), []string{"poll_interval must be 10ms..1h0m0s"}},
		{"max_batches negative", KindQueue, queue("max_batches", -1), []string{"max_batches must be at least 0"}},
		{"max_messages text", KindQueue, queue("max_messages", "lots"), []string{"max_messages must be an integer"}},
		{"lease zero", KindQueue, queue("lease", "0s"), []string{"lease must be 1s..168h0m0s, got 0s"}},
		{"lease text", KindQueue, queue("lease", "long"), []string{"lease must be a duration"}},
		{"max_attempts negative", KindQueue, queue("max_attempts", -1), []string{"max_attempts must be 0..1000"}},
		{"max_attempts huge", KindQueue, queue("max_attempts", 5000), []string{"max_attempts must be 0..1000"}},
		{"backoff", KindQueue, queue("backoff", "linear"), []string{`backoff must be "exponential", "none" or a positive duration`}},
		{"backoff_base above max", KindQueue, queue("backoff_base", "2h", "backoff_max", "1h"), []string{"backoff_base (2h0m0s) must be at most backoff_max (1h0m0s)"}},
		{"batch_timeout text", KindQueue, queue("batch_timeout", "x"), []string{"batch_timeout must be a duration"}},
		{"grace", KindQueue, queue("grace", "2h"), []string{"grace must be 0s..1h0m0s"}},
		{"aging negative", KindQueue, queue("aging", -1), []string{"aging must be at least 0s"}},
		{"fail_on", KindQueue, queue("fail_on", "always"), []string{"fail_on must be one of never, dead, nack"}},
		{"progress_interval", KindQueue, queue("progress_interval", true), []string{"progress_interval must be a duration"}},
		{"run wrong type", KindQueue, queue("run", map[string]any{"a": 1}), []string{"run must be a command line or a list of words"}},
		{"run empty list", KindQueue, queue("run", []any{}), []string{"run must be a command line or a non-empty list"}},
		{"run empty string", KindQueue, queue("run", " "), []string{"run must be a command line"}},
		{"run nested list", KindQueue, queue("run", []any{"a", []any{"b"}}), []string{"run[1] must be a string"}},
		{"run and script", KindQueue, queue("script", "echo"), []string{"run and script are exclusive"}},
		{"no handler", KindQueue, map[string]any{"queue": "q"}, []string{"run or script is required"}},
		{"shell empty", KindQueue, queue("shell", ""), []string{"shell must name a program"}},
		{"token on consume", KindQueue, queue("token", "1.ab"), []string{"token and ids apply to action ack, nack and get only"}},
		{"ack without token", KindQueue, map[string]any{"queue": "q", "action": "ack"}, []string{"token is required for action ack"}},
		{"ids not ids", KindQueue, map[string]any{"queue": "q", "action": "ack", "token": "1.a", "ids": "1,x"}, []string{"ids[1] must be a positive message id"}},
		{"ids wrong type", KindQueue, map[string]any{"queue": "q", "action": "ack", "token": "1.a", "ids": map[string]any{}}, []string{"ids must be a list"}},
		{"error on ack", KindQueue, map[string]any{"queue": "q", "action": "ack", "token": "1.a", "error": "e"}, []string{"error applies to action nack only"}},
		{"db wrong type", KindQueue, queue("db", []any{1}), []string{"db must be a string"}},
		{"db empty", KindQueue, queue("db", ""), []string{"db is empty"}},
		{"enqueue db blank", KindEnqueue, enq("db", " "), []string{"db is empty"}},

		{"enqueue queue missing", KindEnqueue, map[string]any{"message": 1}, []string{"queue is required"}},
		{"enqueue unknown key", KindEnqueue, enq("mesage", 1), []string{`unknown key "mesage"`, "message, messages, file"}},
		{"invalid json message", KindEnqueue, enq("message", "{bad"), []string{"message: is not valid JSON", "raw: true"}},
		{"text message", KindEnqueue, enq("message", "hello"), []string{"message: is not valid JSON"}},
		{"two json values", KindEnqueue, enq("message", "1 2"), []string{"message: is not valid JSON"}},
		{"invalid json in list", KindEnqueue, map[string]any{"queue": "q", "messages": []any{"1", "{"}}, []string{"messages[1]: is not valid JSON"}},
		{"messages not array", KindEnqueue, map[string]any{"queue": "q", "messages": `{"a":1}`}, []string{"messages must be a list"}},
		{"messages wrong type", KindEnqueue, map[string]any{"queue": "q", "messages": 5}, []string{"messages must be a list"}},
		{"no source", KindEnqueue, map[string]any{"queue": "q"}, []string{"exactly one of message, messages or file"}},
		{"two sources", KindEnqueue, enq("file", "x.jsonl"), []string{"exactly one of message, messages or file, got 2"}},
		{"priority text", KindEnqueue, enq("priority", "high"), []string{"priority must be an integer"}},
		{"priority range", KindEnqueue, enq("priority", int64(1)<<40), []string{"priority must be -1000000..1000000"}},
		{"delay text", KindEnqueue, enq("delay", "later"), []string{"delay must be a duration"}},
		{"delay negative", KindEnqueue, enq("delay", "-1s"), []string{"delay must be at least 0s"}},
		{"delay and not_before", KindEnqueue, enq("delay", "1m", "not_before", "@daily"), []string{"delay and not_before are exclusive"}},
		{"not_before", KindEnqueue, enq("not_before", "tomorrow morning"), []string{"not_before must be an RFC 3339 time", "cron expression"}},
		{"max_attempts", KindEnqueue, enq("max_attempts", 1001), []string{"max_attempts must be 0..1000"}},
		{"envelope without file", KindEnqueue, enq("envelope", true), []string{"envelope applies to file only"}},
		{"envelope and raw", KindEnqueue, map[string]any{"queue": "q", "file": "-", "envelope": true, "raw": true}, []string{"raw and envelope are exclusive"}},
		{"raw not bool", KindEnqueue, enq("raw", "perhaps"), []string{"raw must be a boolean"}},
		{"dedupe_key wrong type", KindEnqueue, enq("dedupe_key", map[string]any{}), []string{"dedupe_key must be a string"}},
		{"group too long", KindEnqueue, enq("group", strings.Repeat("g", 2000)), []string{"group must be at most 1024 bytes, got 2000 bytes"}},
		{"dedupe_key too long", KindEnqueue, enq("dedupe_key", strings.Repeat("k", 1001)), []string{"dedupe_key must be at most 1000 bytes, got 1001 bytes"}},
		{"consumer group too long", KindQueue, queue("group", strings.Repeat("g", 1025)), []string{"group must be at most 1024 bytes"}},
		{"queue too long", KindQueue, queue("queue", strings.Repeat("q", 129)), []string{"queue must be at most 128 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Validate(tc.kind, tc.config)
			if err == nil {
				t.Fatalf("Validate accepted %v", tc.config)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			_, nerr := New(tc.kind, Spec{Config: tc.config})
			wantExit(t, nerr, ExitUsage)
		})
	}
	if err := Validate("cron", nil); err == nil || !strings.Contains(err.Error(), "queue or enqueue") {
		t.Errorf("unknown kind: %v", err)
	}
}

// TestBadInputAtRun: errors only Run can find. Each names its field, and
// nothing is enqueued or claimed.
func TestBadInputAtRun(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 3)
	notADir := filepath.Join(te.dir, "file.txt")
	os.WriteFile(notADir, []byte("x"), 0o644)
	os.WriteFile(filepath.Join(te.dir, "noexec.sh"), []byte("echo"), 0o644)
	os.WriteFile(filepath.Join(te.dir, "bad.jsonl"), []byte("1\n2\n{\"a\":\n"), 0o644)
	os.WriteFile(filepath.Join(te.dir, "envbad.jsonl"), []byte("{\"body\":1}\n{\"bdy\":2}\n"), 0o644)
	os.WriteFile(filepath.Join(te.dir, "nobody.jsonl"), []byte("{\"priority\":2}\n"), 0o644)
	for _, tc := range []struct {
		name   string
		kind   string
		config map[string]any
		code   int
		want   []string
	}{
		{"db under a file", KindEnqueue, map[string]any{"queue": "q", "message": 1, "db": filepath.Join(notADir, "x.db")}, ExitStore, []string{"db:", "not a directory"}},
		{"db is a directory", KindQueue, map[string]any{"queue": "q", "run": "true", "db": te.dir}, ExitStore, []string{"db:", "is a directory"}},
		{"db not daguq", KindEnqueue, map[string]any{"queue": "q", "message": 1, "db": notADir}, ExitStore, []string{"db:", "not a daguq database"}},
		{"postgres unreachable", KindQueue, map[string]any{"queue": "q", "run": "true", "db": "postgres://u:secret@127.0.0.1:1/db"}, ExitStore, []string{"db: open database", "u:xxxxx@127.0.0.1:1"}},
		{"postgres bad URL", KindQueue, map[string]any{"queue": "q", "run": "true", "db": "postgres://u:secret@127.0.0.1:port/db"}, ExitStore, []string{"db: open database", "u:xxxxx@"}},
		{"other URL", KindQueue, map[string]any{"queue": "q", "run": "true", "db": "mysql://u:secret@h/db"}, ExitStore, []string{"database backend not available", "u:xxxxx@h"}},
		{"run program missing", KindQueue, map[string]any{"queue": "q", "run": []any{"./nope.sh"}}, ExitUsage, []string{`run: handler program "./nope.sh"`}},
		{"run program not executable", KindQueue, map[string]any{"queue": "q", "run": []any{"./noexec.sh"}}, ExitUsage, []string{"run:", "not an executable file"}},
		{"run line program missing", KindQueue, map[string]any{"queue": "q", "run": "./missing.sh --fast"}, ExitUsage, []string{`run: handler program "./missing.sh"`}},
		{"shell missing", KindQueue, map[string]any{"queue": "q", "run": "echo", "shell": "nosuchshell-daguq"}, ExitUsage, []string{`shell: handler program "nosuchshell-daguq" not found`}},
		{"file missing", KindEnqueue, map[string]any{"queue": "q", "file": "missing.jsonl"}, ExitUsage, []string{"file:", "no such file"}},
		{"bad line", KindEnqueue, map[string]any{"queue": "q", "file": "bad.jsonl"}, ExitUsage, []string{"file bad.jsonl: line 3: is not valid JSON"}},
		{"envelope unknown key", KindEnqueue, map[string]any{"queue": "q", "file": "envbad.jsonl", "envelope": true}, ExitUsage, []string{"line 2: envelope", "bdy"}},
		{"envelope without body", KindEnqueue, map[string]any{"queue": "q", "file": "nobody.jsonl", "envelope": true}, ExitUsage, []string{`line 1: envelope: "body" is required`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := te.run(tc.kind, tc.config)
			wantExit(t, r.err, tc.code)
			for _, w := range tc.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q lacks %q", r.err, w)
				}
			}
			if strings.Contains(r.err.Error(), "secret") {
				t.Errorf("error shows a password: %v", r.err)
			}
		})
	}
	if st := te.stats("q"); st.Ready != 3 || st.InFlight != 0 {
		t.Fatalf("bad input changed the queue: %+v", st)
	}
}

func TestResolveDB(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		explicit     string
		env          map[string]string
		path, source string
	}{
		{"/x/q.db", map[string]string{"DAGUQ_DB": "/y"}, "/x/q.db", DBSourceFlag},
		{"", map[string]string{"DAGUQ_DB": "/y.db", "DAGU_HOME": "/d"}, "/y.db", DBSourceEnv},
		{"", map[string]string{"DAGU_HOME": "/d", "XDG_DATA_HOME": "/x"}, "/d/daguq/daguq.db", DBSourceDaguHome},
		{"", map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/daguq/daguq.db", DBSourceXDG},
		{"", map[string]string{"HOME": "/h"}, "/h/.local/share/daguq/daguq.db", DBSourceXDG},
	} {
		path, source := ResolveDB(tc.explicit, env(tc.env))
		if path != tc.path || source != tc.source {
			t.Errorf("ResolveDB(%q, %v) = %s, %s; want %s, %s", tc.explicit, tc.env, path, source, tc.path, tc.source)
		}
	}
}

// TestDBFromStepEnv: the step's env (Dagu's env: block) can name the database.
func TestDBFromStepEnv(t *testing.T) {
	t.Parallel()
	te := setup(t)
	other := filepath.Join(te.dir, "sub", "other.db")
	e, err := New(KindEnqueue, Spec{Config: map[string]any{"queue": "q", "message": 1}, Env: []string{"DAGUQ_DB=" + other}})
	if err != nil {
		t.Fatal(err)
	}
	wantExit(t, runExecutor(t, e, context.Background()).err, 0)
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("database not created from the step env: %v", err)
	}
}
