package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --with expands the variable references in its strings after parsing, so
// a value holding quotes, backslashes or newlines cannot break the JSON, and
// leaves the handler's shell text alone, so its $ reaches the shell.
func TestWithExpandsReferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	name := "a \"quoted\" \\ back\nslash $HOME ${Q}"
	e.setenv("NAME", name)
	e.setenv("Q", "refs")
	e.setenv("CLAIM", `{"token":"17.ab","lease":"30s","messages":[{"id":7,"body":{"k":"<v>"}}]}`)

	with := `{"queue":"${Q}","message":{"text":"hi ${NAME}!","bare":"$Q-x","lease":"${CLAIM.lease}",` +
		`"body":"${CLAIM.messages[0].body}","unset":"${UNSET} $UNSET ${CLAIM.nope}","escaped":"\\$Q \\${Q}",` +
		`"literal":"$ $5 ${Q:-x} \\\\$Q","list":["${Q}",1,true,null]},"priority":"${PRIO}"}`
	e.setenv("PRIO", "3")
	e.ok(nil, "enqueue", "--with", with)
	r := e.ok(nil, "peek", "refs", "--json")
	var m struct {
		Body     map[string]any `json:"body"`
		Priority int            `json:"priority"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.Stdout)), &m); err != nil {
		t.Fatalf("peek: %v\n%s", err, r)
	}
	want := map[string]any{
		"text": "hi " + name + "!", "bare": "refs-x", "lease": "30s", "body": `{"k":"<v>"}`,
		"unset": "${UNSET} $UNSET ${CLAIM.nope}", "escaped": "$Q ${Q}", "literal": `$ $5 ${Q:-x} \\refs`,
		"list": []any{"refs", 1.0, true, nil},
	}
	for k, v := range want {
		if got, _ := json.Marshal(m.Body[k]); string(got) != mustJSON(t, v) {
			t.Errorf("message %s = %s, want %s", k, got, mustJSON(t, v))
		}
	}
	if m.Priority != 3 {
		t.Errorf("priority %d, want 3 from ${PRIO}", m.Priority)
	}

	// run as text is the shell's: $DAGUQ_BATCH_ID and "$NAME" are expanded
	// by sh. run as a list has no shell: daguq expands its words.
	e.ok(nil, "enqueue", "--queue", "refs2", "--message", "1")
	e.ok(nil, "consume", "--with", `{"queue":"refs2","run":"printf '%s|%s' \"$DAGUQ_BATCH_ID\" \"$NAME\" > shell.out"}`)
	b, _ := os.ReadFile(filepath.Join(e.dir, "shell.out"))
	if id, got, _ := strings.Cut(string(b), "|"); id == "" || got != name {
		t.Errorf("run as text wrote %q, want the batch id and NAME as set", b)
	}
	e.ok(nil, "enqueue", "--queue", "refs3", "--message", "1")
	e.ok(nil, "consume", "--with", `{"queue":"refs3","run":["sh","-c","cat >/dev/null; printf %s \"$1\" > argv.out","sh","${NAME}"]}`)
	if b, _ := os.ReadFile(filepath.Join(e.dir, "argv.out")); string(b) != name {
		t.Errorf("run as a list passed %q, want NAME as set", b)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
