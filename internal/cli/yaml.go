package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// A small YAML writer for dagu-config: block maps and lists, flow lists of
// scalars, strings quoted JSON-style (valid YAML) unless plainly safe. It
// keeps map keys in the order an ordering function gives, so the printed
// config reads in a sensible order.

// keyOrder orders the keys of the map at path (its parent keys).
type keyOrder func(path []string, keys []string) []string

type yamlWriter struct {
	w     io.Writer
	order keyOrder
	err   error
}

func (y *yamlWriter) printf(format string, args ...any) {
	if y.err == nil {
		_, y.err = fmt.Fprintf(y.w, format, args...)
	}
}

// writeMap writes m's entries at indent.
func (y *yamlWriter) writeMap(m map[string]any, indent int, path []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if y.order != nil {
		keys = y.order(path, keys)
	}
	pad := strings.Repeat(" ", indent)
	for _, k := range keys {
		y.printf("%s%s:", pad, yamlScalar(k))
		y.writeValue(m[k], indent, append(path, k))
	}
}

// writeValue writes v after "key:" (or "- "), on the same line when it fits.
func (y *yamlWriter) writeValue(v any, indent int, path []string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			y.printf(" {}\n")
			return
		}
		y.printf("\n")
		y.writeMap(x, indent+2, path)
	case []string:
		y.writeValue(anyList(x), indent, path)
	case []any:
		if len(x) == 0 {
			y.printf(" []\n")
			return
		}
		if flow, ok := flowList(x); ok {
			y.printf(" %s\n", flow)
			return
		}
		y.printf("\n")
		pad := strings.Repeat(" ", indent+2)
		for _, item := range x {
			if m, ok := item.(map[string]any); ok && len(m) > 0 {
				// "- first: 1" then the other keys under it.
				var b strings.Builder
				sub := &yamlWriter{w: &b, order: y.order}
				sub.writeMap(m, indent+4, path)
				text := b.String()
				y.printf("%s- %s", pad, strings.TrimPrefix(text, strings.Repeat(" ", indent+4)))
				continue
			}
			y.printf("%s-", pad)
			y.writeValue(item, indent+2, path)
		}
	default:
		y.printf(" %s\n", yamlScalar(x))
	}
}

// flowList writes a short list of scalars as [a, b].
func flowList(items []any) (string, bool) {
	parts := make([]string, len(items))
	total := 0
	for i, item := range items {
		switch item.(type) {
		case map[string]any, []any, []string:
			return "", false
		}
		parts[i] = yamlScalar(item)
		total += len(parts[i]) + 2
	}
	if total > 80 {
		return "", false
	}
	return "[" + strings.Join(parts, ", ") + "]", true
}

var plainYAML = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_ ./$-]*$`)

var yamlWords = []string{"true", "false", "yes", "no", "on", "off", "null", "y", "n"}

func yamlScalar(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if plainYAML.MatchString(x) && !strings.HasSuffix(x, " ") && !slices.Contains(yamlWords, strings.ToLower(x)) {
			return x
		}
		b, _ := json.Marshal(x)
		return string(b)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprintf("%q", fmt.Sprint(x))
		}
		return string(b)
	}
}
