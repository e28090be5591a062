package executor

import (
	"errors"
	"fmt"
	"testing"
)

// angleNames spells keys so that a test can see each one went through Names.
type angleNames struct{}

func (angleNames) Key(key string) string            { return "<" + key + ">" }
func (angleNames) Item(key string, i int) string    { return fmt.Sprintf("<%s>#%d", key, i) }
func (angleNames) Setting(key, value string) string { return "<" + key + "=" + value + ">" }

// TestFieldErrorsSpellKeys: a refused value is a *FieldError naming its
// key, and its text names every key it mentions through Names, so that the
// CLI spells them as flags without reading the text. Error is the text
// with the `with:` keys.
func TestFieldErrorsSpellKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		kind   string
		config map[string]any
		field  string
		text   string
	}{
		{"bound", KindQueue, map[string]any{"queue": "q", "run": "true", "batch_size": 0},
			"batch_size", "<batch_size> must be 1..10000, got 0"},
		{"type", KindQueue, map[string]any{"queue": "q", "run": "true", "lease": "soon"},
			"lease", `<lease> must be a duration like "30s", "5m" or "1h30m" (a bare number means seconds), got "soon"`},
		{"enum", KindQueue, map[string]any{"queue": "q", "run": "true", "mode": "forever"},
			"mode", `<mode> must be one of drain, once, watch, got "forever"`},
		{"two keys", KindQueue, map[string]any{"queue": "q", "run": "true", "min_priority": 5, "max_priority": 1},
			"min_priority", "<min_priority> (5) must be at most <max_priority> (1)"},
		{"exclusive", KindQueue, map[string]any{"queue": "q", "run": "true", "group": "g", "group_by": true},
			"group", "<group> and <group_by> are exclusive: <group> takes one named group, <group_by> one group per batch"},
		{"list item", KindQueue, map[string]any{"queue": "q", "action": "ack", "token": "1.a", "ids": "1,x"},
			"ids", `<ids>#1 must be a positive message id, got "x"`},
		{"action", KindQueue, map[string]any{"queue": "q", "run": "true", "file": "out.jsonl"},
			"file", "<file> applies to <action> get only, not consume"},
		{"no handler", KindQueue, map[string]any{"queue": "q"},
			"run", "<run> or <script> is required for <action> consume: the handler that gets each batch (e.g. <run=./handle.sh>)"},
		{"not JSON", KindEnqueue, map[string]any{"queue": "q", "message": "{bad"},
			"message", `<message>: is not valid JSON (invalid character 'b' looking for beginning of object key string): "{bad"; set <raw=true> to store text as a JSON string`},
		{"not JSON item", KindEnqueue, map[string]any{"queue": "q", "messages": []any{"1", "{"}},
			"messages", `<messages>#1: is not valid JSON (unexpected end of JSON input): "{"; set <raw=true> to store text as a JSON string`},
		{"sources", KindEnqueue, map[string]any{"queue": "q", "message": 1, "file": "x"},
			"message", "give exactly one of <message>, <messages> or <file>, got 2"},
		{"pool", KindPool, map[string]any{"pool": "p", "run": "true", "slots": 0},
			"slots", "<slots> must be 1..1000000, got 0"},
		{"pool command", KindPool, map[string]any{"pool": "p"},
			"run", "<run> or <script> is required: the command to run while holding the slots (e.g. <run=./load.sh>)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Validate(tc.kind, tc.config)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate: %v (%T), want a *FieldError", err, err)
			}
			if fe.Field != tc.field {
				t.Errorf("Field %q, want %q", fe.Field, tc.field)
			}
			if got := Text(err, angleNames{}); got != tc.text {
				t.Errorf("Text:\n got %s\nwant %s", got, tc.text)
			}
			if got, want := err.Error(), Text(err, WithKeys{}); got != want {
				t.Errorf("Error %q, want the with: text %q", got, want)
			}
		})
	}
}

// Text spells every error of a joined list, one per line.
func TestTextOfJoinedErrors(t *testing.T) {
	t.Parallel()
	err := Validate(KindPool, map[string]any{"pool": "p", "run": "true", "slots": 0, "shell": ""})
	want := "<slots> must be 1..1000000, got 0\n<shell> must name a program, like \"sh\" or \"bash -eu\", got \"\""
	if got := Text(err, angleNames{}); got != want {
		t.Errorf("Text:\n got %q\nwant %q", got, want)
	}
}
