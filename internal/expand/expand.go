package expand

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// Lookup returns a variable's value and whether it is set, like
// os.LookupEnv.
type Lookup func(name string) (string, bool)

// String returns s with its references expanded in one pass (an inserted
// value is not expanded again):
//
//	$NAME, ${NAME}       the value of NAME; NAME is [A-Za-z_][A-Za-z0-9_]*
//	${NAME.a.b}          field b of field a of the JSON in NAME
//	${NAME.items[0]}     an array element (also ${NAME.items.0})
//	\$                   a literal $ (an odd number of backslashes before $
//	                     drops one of them; an even number escapes nothing)
//
// A field that is a string is inserted as its text, any other JSON value as
// compact JSON. A reference to a variable that is not set, to a field that
// is missing, or into a variable that holds no JSON stays as written; so do
// forms this package does not know (${NAME:-x}, $1). A $ that starts no
// reference is kept.
func String(s string, lookup Lookup) string {
	if !strings.ContainsRune(s, '$') {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		switch s[i] {
		case '\\':
			j := i
			for j < len(s) && s[j] == '\\' {
				j++
			}
			if j < len(s) && s[j] == '$' && (j-i)%2 == 1 {
				b.WriteString(s[i : j-1])
				b.WriteByte('$')
				i = j + 1
				continue
			}
			b.WriteString(s[i:j])
			i = j
		case '$':
			n, value, ok := reference(s[i:], lookup)
			switch {
			case ok:
				b.WriteString(value)
				i += n
			case n > 0: // a well-formed reference that does not resolve
				b.WriteString(s[i : i+n])
				i += n
			default:
				b.WriteByte('$')
				i++
			}
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

// Value returns v with String applied to every string in it: v itself, the
// values of maps and the items of lists, at any depth (map keys are kept).
// The maps and lists are copies; v is not changed.
func Value(v any, lookup Lookup) any {
	switch t := v.(type) {
	case string:
		return String(t, lookup)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, item := range t {
			out[k] = Value(item, lookup)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, item := range t {
			out[i] = Value(item, lookup)
		}
		return out
	}
	return v
}

// reference reads the reference at the start of s (s[0] is '$'). n is its
// length when it is well formed (0 otherwise); ok says it resolved to value.
func reference(s string, lookup Lookup) (n int, value string, ok bool) {
	if len(s) > 1 && s[1] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return 0, "", false
		}
		inner := s[2:end]
		name := nameLen(inner)
		if name == 0 {
			return 0, "", false
		}
		path := inner[name:]
		if path != "" && !validPath(path) {
			return 0, "", false
		}
		v, set := lookup(inner[:name])
		if !set {
			return end + 1, "", false
		}
		if path == "" {
			return end + 1, v, true
		}
		field, found := jsonField(v, path)
		return end + 1, field, found
	}
	name := nameLen(s[1:])
	if name == 0 {
		return 0, "", false
	}
	v, set := lookup(s[1 : 1+name])
	return 1 + name, v, set
}

// nameLen is the length of the variable name at the start of s (0: none).
func nameLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return i
	}
	return len(s)
}

// pathStep is one step of a JSON path: an object key, or an index (a key of
// digits also indexes an array).
type pathStep struct {
	key   string
	index bool // [N]: only an array index
}

// parsePath splits ".a.b[0].c" into steps; ok is false for anything else.
func parsePath(path string) (steps []pathStep, ok bool) {
	for path != "" {
		switch {
		case strings.HasPrefix(path, ".["), path[0] == '[':
			path = strings.TrimPrefix(path, ".")
			end := strings.IndexByte(path, ']')
			if end < 2 || !digits(path[1:end]) {
				return nil, false
			}
			steps = append(steps, pathStep{key: path[1:end], index: true})
			path = path[end+1:]
		case path[0] == '.':
			n := 1
			for n < len(path) && isKeyByte(path[n]) {
				n++
			}
			if n == 1 {
				return nil, false
			}
			steps = append(steps, pathStep{key: path[1:n]})
			path = path[n:]
		default:
			return nil, false
		}
	}
	return steps, true
}

func validPath(path string) bool {
	_, ok := parsePath(path)
	return ok
}

func isKeyByte(c byte) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// jsonField is the field at path of the JSON text doc, as text.
func jsonField(doc, path string) (string, bool) {
	steps, ok := parsePath(path)
	if !ok {
		return "", false
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return "", false
	}
	for _, st := range steps {
		switch t := v.(type) {
		case map[string]any:
			if st.index {
				return "", false
			}
			if v, ok = t[st.key]; !ok {
				return "", false
			}
		case []any:
			i, err := strconv.Atoi(st.key)
			if err != nil || i >= len(t) {
				return "", false
			}
			v = t[i]
		default:
			return "", false
		}
	}
	return text(v), true
}

// text renders a JSON value: a string as itself, a number as written, the
// rest as compact JSON.
func text(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}
