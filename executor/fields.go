package executor

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
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

// Field describes one `with:` key of a step type: the one source of its
// default, bounds and length. Fields drives the config defaults, their
// validation, the decoder's messages, the JSON schema, the docs table and
// the CLI flags.
type Field struct {
	Name        string
	Type        string // one of the Type constants
	Description string
	Default     any      // nil: no default (unset)
	Enum        []string // allowed values of a string field
	Min, Max    *float64 // inclusive bounds; durations in seconds
	// MaxLength is the longest value of a string field, in bytes (0: no
	// limit). The JSON schema's maxLength carries it (which counts
	// characters, so the parser is the stricter check).
	MaxLength int
	Required  bool
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
		if f.MaxLength > 0 {
			s["maxLength"] = f.MaxLength
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
		case f.MaxLength > 0:
			allowed = lengthText(f)
		}
		desc := f.Description
		if len(f.Actions) > 0 && kind == KindQueue {
			desc += " *(action: " + strings.Join(f.Actions, ", ") + ")*"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.Name, f.Type, def, allowed, strings.ReplaceAll(desc, "|", "\\|"))
	}
	return b.String()
}

// defaults decodes every field's Default into out, a pointer to the zero
// config struct of kind: the table is the only place defaults are written.
func defaults(kind string, out any) {
	values := map[string]any{}
	for _, f := range Fields(kind) {
		if f.Default != nil {
			values[f.Name] = f.Default
		}
	}
	if err := decodeConfig(kind, values, out); err != nil {
		panic(fmt.Sprintf("executor: a %s field default does not decode: %v", kind, err))
	}
}

// checkFields checks every bounded field of cfg (a config struct, or a
// pointer to one) against its Field: Min and Max for numbers and durations
// (in seconds), MaxLength for strings. The struct field is found by its
// mapstructure tag, so a new bounded key is checked with no code here.
func checkFields(fields []Field, cfg any) []error {
	v := reflect.Indirect(reflect.ValueOf(cfg))
	var errs []error
	for _, f := range fields {
		if f.Min == nil && f.Max == nil && f.MaxLength == 0 {
			continue
		}
		fv, ok := structField(v, f.Name)
		if !ok {
			panic(fmt.Sprintf("executor: bounded field %s has no struct field tagged %q", f.Name, f.Name))
		}
		if err := f.check(fv); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// structField is the field of struct v whose mapstructure tag is name.
func structField(v reflect.Value, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("mapstructure") == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// check validates one value of f: nil (unset) passes.
func (f Field) check(v reflect.Value) error {
	if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == durationType:
		d := time.Duration(v.Int())
		return f.checkNumber(d.Seconds(), d.String())
	case v.CanInt():
		return f.checkNumber(float64(v.Int()), strconv.FormatInt(v.Int(), 10))
	case v.CanUint():
		return f.checkNumber(float64(v.Uint()), strconv.FormatUint(v.Uint(), 10))
	case v.CanFloat():
		return f.checkNumber(v.Float(), strconv.FormatFloat(v.Float(), 'f', -1, 64))
	case v.Kind() == reflect.String:
		return f.checkLength(v.String())
	}
	return nil
}

// checkNumber checks x (shown as shown) against f's bounds.
func (f Field) checkNumber(x float64, shown string) error {
	if (f.Min != nil && x < *f.Min) || (f.Max != nil && x > *f.Max) {
		return badValue(f.Name, "must be %s, got %s", rangeText(f), shown)
	}
	return nil
}

// checkLength checks s against f's MaxLength.
func (f Field) checkLength(s string) error {
	if f.MaxLength > 0 && len(s) > f.MaxLength {
		return badValue(f.Name, "must be %s, got %d bytes", lengthText(f), len(s))
	}
	return nil
}

func lengthText(f Field) string { return fmt.Sprintf("at most %d bytes", f.MaxLength) }

func rangeText(f Field) string {
	format := func(v float64) string {
		if f.Type == TypeDuration {
			return (time.Duration(v * float64(time.Second))).String()
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	switch {
	case f.Min != nil && f.Max != nil:
		return format(*f.Min) + ".." + format(*f.Max)
	case f.Min != nil:
		return "at least " + format(*f.Min)
	default:
		return "at most " + format(*f.Max)
	}
}

// mustField is field name of kind; a missing one is a programmer error.
func mustField(kind, name string) Field {
	f, ok := fieldByName(kind, name)
	if !ok {
		panic("executor: no field " + kind + "." + name)
	}
	return f
}
