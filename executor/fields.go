package executor

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Field types as Fields reports them.
const (
	TypeString       = "string"
	TypeInteger      = "integer"
	TypeNumber       = "number"
	TypeBoolean      = "boolean"
	TypeDuration     = "duration"       // Go duration text ("30s", "5m"); a bare number means seconds
	TypeJSON         = "json"           // any JSON value; a string is parsed as JSON text
	TypeStringOrList = "string_or_list" // a command line, or a list of words (argv)
	TypeList         = "list"           // a list; a string is parsed as a JSON array
)

// Field describes one `with:` key of a step type. Fields drives the config
// decoder's messages, the JSON schema, the docs table and the CLI flags.
type Field struct {
	Name        string
	Type        string // one of the Type constants
	Description string
	Default     any      // nil: no default (unset)
	Enum        []string // allowed values of a string field
	Min, Max    *float64 // inclusive bounds; durations in seconds
	Required    bool
	// Items is the JSON Schema type of a list's items ("" for any).
	Items string
	// Actions, for the queue kind, lists the actions the key applies to
	// (empty: all). Documentation only.
	Actions []string
	// Verbatim: a string value is the handler's shell text (or its shell),
	// whose $ belongs to that shell: the CLI's --with leaves it as written
	// instead of expanding ${VAR} references in it (internal/expand).
	Verbatim bool
}

func bound(v float64) *float64 { return &v }

// Fields returns the `with:` keys of kind in documentation order, or nil for
// an unknown kind. The slice is a copy.
func Fields(kind string) []Field {
	var src []Field
	switch kind {
	case KindQueue:
		src = queueFields
	case KindEnqueue:
		src = enqueueFields
	case KindPool:
		src = poolFields
	default:
		return nil
	}
	out := make([]Field, len(src))
	copy(out, src)
	return out
}

func fieldByName(kind, name string) (Field, bool) {
	for _, f := range Fields(kind) {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

func fieldNames(kind string) []string {
	var names []string
	for _, f := range Fields(kind) {
		names = append(names, f.Name)
	}
	return names
}

// InputSchema returns the JSON Schema (draft 2020-12) of kind's `with:` map,
// for the input_schema of Dagu's step_types, or nil for an unknown kind.
// Scalars carry plain types: Dagu substitutes a placeholder for a whole
// ${VAR} value when it checks `with:` at load time. A duration is a number
// of seconds, Go duration text, or any text holding a $ or ` (expanded
// later; our decoder checks the result).
func InputSchema(kind string) map[string]any {
	fields := Fields(kind)
	if fields == nil {
		return nil
	}
	props := map[string]any{}
	var required []string
	for _, f := range fields {
		props[f.Name] = fieldSchema(f)
		if f.Required {
			required = append(required, f.Name)
		}
	}
	schema := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                "daguq " + kind + " step",
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		schema["required"] = required
	}
	return schema
}

// durationPattern matches Go duration text or a bare number of seconds, or
// text with an expression that Dagu expands at run time.
const durationPattern = `^\s*(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+\s*$|^\s*[0-9]+(\.[0-9]+)?\s*$|[$` + "`" + `]`

func fieldSchema(f Field) map[string]any {
	s := map[string]any{"description": f.Description}
	if f.Default != nil {
		s["default"] = f.Default
	}
	switch f.Type {
	case TypeString:
		s["type"] = "string"
		if len(f.Enum) > 0 {
			s["enum"] = f.Enum
		}
	case TypeInteger, TypeNumber:
		s["type"] = f.Type
		if f.Min != nil {
			s["minimum"] = jsonNumber(*f.Min)
		}
		if f.Max != nil {
			s["maximum"] = jsonNumber(*f.Max)
		}
	case TypeBoolean:
		s["type"] = "boolean"
	case TypeDuration:
		number := map[string]any{"type": "number"}
		if f.Min != nil {
			number["minimum"] = jsonNumber(*f.Min)
		}
		if f.Max != nil {
			number["maximum"] = jsonNumber(*f.Max)
		}
		s["anyOf"] = []any{map[string]any{"type": "string", "pattern": durationPattern}, number}
	case TypeJSON:
		// any JSON value
	case TypeStringOrList:
		s["anyOf"] = []any{map[string]any{"type": "string", "minLength": 1},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1}}
	case TypeList:
		array := map[string]any{"type": "array"}
		if f.Items != "" {
			array["items"] = map[string]any{"type": f.Items}
		}
		s["anyOf"] = []any{array, map[string]any{"type": "string"}}
	}
	return s
}

// jsonNumber keeps whole numbers integral in the marshalled schema.
func jsonNumber(v float64) any {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return int64(v)
	}
	return v
}

// DefaultText renders a field's default for docs and help ("" when none).
func (f Field) DefaultText() string {
	if f.Default == nil {
		return ""
	}
	switch v := f.Default.(type) {
	case string:
		return v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

// MarkdownTable renders the `with:` keys of kind as a Markdown table: key,
// type, default, allowed values, description. docs/executors.md embeds it.
func MarkdownTable(kind string) string {
	var b strings.Builder
	b.WriteString("| key | type | default | allowed | description |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, f := range Fields(kind) {
		def := f.DefaultText()
		switch {
		case f.Required:
			def = "required"
		case def == "":
			def = "-"
		default:
			def = "`" + def + "`"
		}
		allowed := "-"
		switch {
		case len(f.Enum) > 0:
			allowed = "`" + strings.Join(f.Enum, "`, `") + "`"
		case f.Min != nil || f.Max != nil:
			allowed = rangeText(f)
		}
		desc := f.Description
		if len(f.Actions) > 0 && kind == KindQueue {
			desc += " *(action: " + strings.Join(f.Actions, ", ") + ")*"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.Name, f.Type, def, allowed, strings.ReplaceAll(desc, "|", "\\|"))
	}
	return b.String()
}
