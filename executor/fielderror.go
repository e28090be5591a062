package executor

import (
	"fmt"
	"strings"
)

// Names spells config keys in the text of a refusal. Error methods spell
// them as `with:` keys (WithKeys); the CLI spells them as its flags, so
// that one error reads right in a DAG and on the command line.
type Names interface {
	// Key is a key: "batch_size", or "--batch-size".
	Key(key string) string
	// Item is item i (from 0) of a list key: "messages[1]".
	Item(key string, i int) string
	// Setting is key given value: "raw: true", or "--raw".
	Setting(key, value string) string
}

// WithKeys spells keys as in a step's `with:` map.
type WithKeys struct{}

func (WithKeys) Key(key string) string            { return key }
func (WithKeys) Item(key string, i int) string    { return fmt.Sprintf("%s[%d]", key, i) }
func (WithKeys) Setting(key, value string) string { return key + ": " + value }

// FieldError is a refused value of a config key, or keys that exclude
// each other: Field is the key at fault (the first one named when several
// conflict). Its text names every key it mentions through Names, and says
// what is allowed.
type FieldError struct {
	Field string
	Err   error // the cause, if any (errors.Is reaches it)
	say   func(n Names) string
}

func (e *FieldError) Error() string { return e.spell(WithKeys{}) }
func (e *FieldError) Unwrap() error { return e.Err }

func (e *FieldError) spell(n Names) string {
	switch {
	case e.say != nil:
		return e.say(n)
	case e.Err != nil: // made without the constructors below
		return n.Key(e.Field) + ": " + Text(e.Err, n)
	}
	return n.Key(e.Field) + " is refused"
}

// spelled is an error whose text names config keys.
type spelled interface{ spell(n Names) string }

// Text is err's text with the config keys it names spelled by n: the
// errors of a joined list (errors.Join) one per line. Parts of err that name
// no key read as their Error.
func Text(err error, n Names) string {
	switch e := err.(type) {
	case nil:
		return ""
	case spelled:
		return e.spell(n)
	case interface{ Unwrap() []error }:
		var lines []string
		for _, each := range e.Unwrap() {
			if each != nil {
				lines = append(lines, Text(each, n))
			}
		}
		return strings.Join(lines, "\n")
	}
	return err.Error()
}

// badValue is the key followed by the problem: "batch_size must be
// 1..10000, got 0".
func badValue(field, format string, args ...any) *FieldError {
	problem := fmt.Sprintf(format, args...)
	return &FieldError{Field: field, say: func(n Names) string { return n.Key(field) + " " + problem }}
}

// badKey is the key, a colon and the cause: "message: invalid UTF-8 ...".
func badKey(field string, cause error) *FieldError {
	return &FieldError{Field: field, Err: cause, say: func(n Names) string { return n.Key(field) + ": " + Text(cause, n) }}
}

// badKeys is a problem of field whose text names keys through n.
func badKeys(field string, say func(n Names) string) *FieldError {
	return &FieldError{Field: field, say: say}
}

// badItem is item i of a list key followed by the problem: "ids[1] must be
// a positive message id".
func badItem(field string, i int, format string, args ...any) *FieldError {
	problem := fmt.Sprintf(format, args...)
	return &FieldError{Field: field, say: func(n Names) string { return n.Item(field, i) + " " + problem }}
}

// badItemCause is item i of a list key, a colon and the cause.
func badItemCause(field string, i int, cause error) *FieldError {
	return &FieldError{Field: field, Err: cause, say: func(n Names) string { return n.Item(field, i) + ": " + Text(cause, n) }}
}

// exclusive refuses two keys given together; why, if not nil, says more.
func exclusive(a, b string, why func(n Names) string) *FieldError {
	return badKeys(a, func(n Names) string {
		s := n.Key(a) + " and " + n.Key(b) + " are exclusive"
		if why != nil {
			s += ": " + why(n)
		}
		return s
	})
}

// onlyFor refuses a key the action does not take: "file applies to action
// get only, not consume".
func onlyFor(field, verb, actions, action string) *FieldError {
	return badKeys(field, func(n Names) string {
		return fmt.Sprintf("%s %s to %s %s only, not %s", n.Key(field), verb, n.Key("action"), actions, action)
	})
}
