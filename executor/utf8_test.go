package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// One rule for every message input: text that is not valid UTF-8 is refused
// (exit 2, naming the line and the byte offset of the first bad byte) and
// nothing is enqueued. Before, a JSON string kept the bytes as they were and
// raw text had them replaced by U+FFFD, silently.
func TestInvalidUTF8IsRefused(t *testing.T) {
	t.Parallel()
	te := setup(t)
	bad := "caf\xe9" // Latin-1 é: byte offset 3 is not UTF-8
	write := func(name, text string) string {
		if err := os.WriteFile(filepath.Join(te.dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	tests := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"message JSON string", map[string]any{"message": `{"name":"` + bad + `"}`}, []string{"message:", "invalid UTF-8 at byte offset 12"}},
		{"message raw", map[string]any{"message": bad, "raw": true}, []string{"message:", "invalid UTF-8 at byte offset 3"}},
		{"message YAML map", map[string]any{"message": map[string]any{"name": bad}}, []string{"message:", "invalid UTF-8"}},
		{"message YAML key", map[string]any{"message": map[string]any{bad: 1}}, []string{"message:", "invalid UTF-8"}},
		{"messages list item", map[string]any{"messages": []any{"1", `"` + bad + `"`}}, []string{"messages[1]:", "invalid UTF-8 at byte offset 4"}},
		{"messages raw item", map[string]any{"messages": []any{"ok", bad}, "raw": true}, []string{"messages[1]:", "invalid UTF-8 at byte offset 3"}},
		{"messages JSON array text", map[string]any{"messages": `[1, "` + bad + `"]`}, []string{"messages:", "invalid UTF-8 at byte offset 8"}},
		{"file line", map[string]any{"file": write("a.jsonl", "{\"n\":1}\n{\"name\":\""+bad+"\"}\n")}, []string{"line 2:", "invalid UTF-8 at byte offset 12"}},
		{"file raw line", map[string]any{"file": write("b.txt", "fine\n\n"+bad+"\n"), "raw": true}, []string{"line 3:", "invalid UTF-8 at byte offset 3"}},
		{"file envelope", map[string]any{"file": write("c.jsonl", `{"body":"`+bad+`"}`+"\n"), "envelope": true}, []string{"line 1:", "invalid UTF-8 at byte offset 12"}},
		{"group", map[string]any{"message": 1, "group": bad}, []string{"group", "invalid UTF-8 at byte offset 3"}},
		{"dedupe_key", map[string]any{"message": 1, "dedupe_key": bad}, []string{"dedupe_key", "invalid UTF-8 at byte offset 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := map[string]any{"queue": "q"}
			for k, v := range tt.config {
				config[k] = v
			}
			var err error
			if exec, nerr := New(KindEnqueue, te.spec(config)); nerr != nil {
				err = nerr
			} else {
				err = runExecutor(t, exec, t.Context()).err
			}
			wantExit(t, err, ExitUsage)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := os.Stat(te.db); err == nil {
		if st := te.stats("q"); st.Ready+st.Delayed != 0 {
			t.Errorf("refused input was enqueued: %+v", st)
		}
	}
	// Valid UTF-8, U+FFFD itself included, is stored exactly.
	r := te.run(KindEnqueue, map[string]any{"queue": "ok", "message": "café �", "raw": true})
	wantExit(t, r.err, ExitOK)
	if msgs := te.peek("ok", "ready"); len(msgs) != 1 || string(msgs[0].Body) != `"café �"` {
		t.Errorf("stored %v, want the text exactly", msgs)
	}
}
