package executor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// messageJSON turns a configured message into the JSON text stored as its
// body. A string is JSON text unless raw is set, when it becomes a JSON
// string; any other value (a YAML map, list, number, boolean) is marshalled.
//
// Text that is not valid UTF-8 is refused, whatever its form: daguq neither
// stores bytes that a JSON reader would replace nor replaces them itself.
func messageJSON(v any, raw bool) ([]byte, error) {
	if j, ok := v.(json.RawMessage); ok { // already JSON: an item of a JSON array
		if err := checkUTF8(j); err != nil {
			return nil, err
		}
		return compactJSON(j)
	}
	if s, ok := v.(string); ok {
		if err := checkUTF8([]byte(s)); err != nil {
			return nil, err
		}
		if raw {
			return json.Marshal(s)
		}
		return compactJSON([]byte(s))
	}
	if err := checkUTF8Value(v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(normalizeYAML(v))
	if err != nil {
		return nil, fmt.Errorf("cannot be stored as JSON: %v", err)
	}
	return b, nil
}

// checkUTF8 refuses text that is not valid UTF-8, naming the offset of the
// first bad byte (0 is the first byte of the text or line).
func checkUTF8(text []byte) error {
	if utf8.Valid(text) {
		return nil
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("invalid UTF-8 at byte offset %d: daguq stores text only as valid UTF-8", i)
		}
		i += size
	}
	return nil
}

// checkUTF8Value refuses a string (or map key) that is not valid UTF-8
// anywhere in a YAML value: encoding/json would replace its bytes silently.
func checkUTF8Value(v any) error {
	check := func(s string) error {
		if err := checkUTF8([]byte(s)); err != nil {
			return fmt.Errorf("string %s: %w", preview([]byte(s)), err)
		}
		return nil
	}
	switch x := v.(type) {
	case string:
		return check(x)
	case map[string]any:
		for k, val := range x {
			if err := check(k); err != nil {
				return err
			}
			if err := checkUTF8Value(val); err != nil {
				return err
			}
		}
	case map[any]any:
		for k, val := range x {
			if err := checkUTF8Value(k); err != nil {
				return err
			}
			if err := checkUTF8Value(val); err != nil {
				return err
			}
		}
	case []any:
		for _, val := range x {
			if err := checkUTF8Value(val); err != nil {
				return err
			}
		}
	}
	return nil
}

// compactJSON checks that text holds exactly one JSON value and compacts it.
func compactJSON(text []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, text); err != nil || buf.Len() == 0 {
		reason := "empty"
		if err != nil {
			reason = err.Error()
		}
		return nil, &notJSONError{reason: reason, text: preview(text)}
	}
	return buf.Bytes(), nil
}

// notJSONError is text that is not one JSON value; it says how to store
// it as a JSON string instead (the raw key).
type notJSONError struct{ reason, text string }

func (e *notJSONError) Error() string { return e.spell(WithKeys{}) }
func (e *notJSONError) spell(n Names) string {
	return fmt.Sprintf("is not valid JSON (%s): %s; set %s to store text as a JSON string", e.reason, e.text, n.Setting("raw", "true"))
}

func preview(b []byte) string {
	s := string(b)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// normalizeYAML converts map[any]any (some YAML decoders) to map[string]any
// so that encoding/json accepts it.
func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[fmt.Sprint(k)] = normalizeYAML(val)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[k] = normalizeYAML(val)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = normalizeYAML(val)
		}
		return out
	}
	return v
}

// messagesList reads `messages`: a list, or a string holding a JSON array.
func messagesList(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case string:
		if err := checkUTF8([]byte(x)); err != nil {
			return nil, badKey("messages", err)
		}
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(x), &list); err != nil {
			return nil, badValue("messages", "must be a list, or a string holding a JSON array, got %s", describeValue(x))
		}
		out := make([]any, len(list))
		for i, m := range list {
			out[i] = m
		}
		return out, nil
	}
	return nil, badValue("messages", "must be a list, got %s", describeValue(v))
}

// parseNotBefore reads an RFC 3339 time, or a cron expression (standard 5
// fields or a descriptor like @daily) meaning its next occurrence after now.
func parseNotBefore(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return time.Time{}, badValue("not_before", `must be an RFC 3339 time like "2026-01-02T09:00:00Z" or a cron expression like "0 9 * * *", got %q`, s)
	}
	next := sched.Next(now)
	if next.IsZero() {
		return time.Time{}, badKey("not_before", fmt.Errorf("cron expression %q never fires", s))
	}
	return next, nil
}
