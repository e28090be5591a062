package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/daguq/daguq/executor"
	"github.com/daguq/daguq/internal/expand"
)

// configFlags gives an executor's config keys (the `with:` keys of a Dagu
// step) as command-line flags in kebab-case, generated from executor.Fields
// so the two cannot drift. Only the flags the user set go into the config
// map, as the strings typed: the executor decodes them weakly and checks
// them, exactly as it does Dagu's ${VAR}-expanded values.
type configFlags struct {
	fields []executor.Field
	flags  *pflag.FlagSet
	scalar map[string]*textValue // by field name
	list   map[string]*[]string  // by field name
	with   string                // --with: the whole `with:` map as JSON
	// verbatim: the keys whose string value --with does not expand (the
	// handler's shell text).
	verbatim map[string]bool
	// flagOf names the flag for a config key in error messages when it is
	// not the key's own (repeated --message goes to messages).
	flagOf map[string]string
	// fromWith: the keys --with gave.
	fromWith map[string]bool
}

// addConfigFlags defines a flag for every field of kind except those in skip.
func addConfigFlags(flags *pflag.FlagSet, kind string, skip ...string) *configFlags {
	c := &configFlags{flags: flags, scalar: map[string]*textValue{}, list: map[string]*[]string{},
		verbatim: map[string]bool{}, flagOf: map[string]string{}, fromWith: map[string]bool{}}
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	var verbatim []string
	for _, f := range executor.Fields(kind) {
		if f.Verbatim {
			c.verbatim[f.Name] = true
			verbatim = append(verbatim, f.Name)
		}
		if skipped[f.Name] {
			continue
		}
		c.fields = append(c.fields, f)
		name := flagName(f.Name)
		switch f.Type {
		case executor.TypeList, executor.TypeStringOrList:
			v := new([]string)
			c.list[f.Name] = v
			flags.StringArrayVar(v, name, nil, fieldUsage(f))
		default:
			v := &textValue{typ: typeName(f.Type)}
			c.scalar[f.Name] = v
			flags.Var(v, name, fieldUsage(f))
			fl := flags.Lookup(name)
			fl.DefValue = f.DefaultText()
			if f.Type == executor.TypeBoolean {
				fl.NoOptDefVal = "true" // --envelope means --envelope=true
			}
		}
	}
	usage := "all settings as one JSON object of with: keys, as Dagu's step_types pass them; $VAR, ${VAR} and ${VAR.json.path} in its strings are expanded from the environment"
	if len(verbatim) > 0 {
		usage += " (not in the text of " + strings.Join(verbatim, ", ") + ")"
	}
	flags.StringVar(&c.with, "with", "", usage+"; flags given as well override its keys")
	return c
}

// flagName is the flag of a config key: batch_size -> batch-size.
func flagName(field string) string { return strings.ReplaceAll(field, "_", "-") }

// textValue is a flag kept as the text typed; typ names it in help. The
// last value given counts; all keeps every one, in order.
type textValue struct {
	all []string
	typ string
}

func (v *textValue) String() string {
	if len(v.all) == 0 {
		return ""
	}
	return v.all[len(v.all)-1]
}
func (v *textValue) Set(s string) error { v.all = append(v.all, s); return nil }
func (v *textValue) Type() string       { return v.typ }

// typeName is the placeholder help shows after a flag: --batch-size int.
func typeName(fieldType string) string {
	switch fieldType {
	case executor.TypeInteger:
		return "int"
	case executor.TypeNumber:
		return "number"
	case executor.TypeBoolean:
		return "bool"
	case executor.TypeDuration:
		return "duration"
	case executor.TypeJSON:
		return "json"
	}
	return "string"
}

func fieldUsage(f executor.Field) string {
	var b strings.Builder
	// pflag reads the first `quoted` word as the value's name: use ' instead.
	b.WriteString(strings.ReplaceAll(f.Description, "`", "'"))
	var notes []string
	if f.Required {
		notes = append(notes, "required")
	}
	if len(f.Enum) > 0 {
		notes = append(notes, "one of: "+strings.Join(f.Enum, ", "))
	}
	num := func(v float64) string {
		if f.Type == executor.TypeDuration { // bounds of durations are in seconds
			return time.Duration(v * float64(time.Second)).String()
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	switch {
	case f.Min != nil && f.Max != nil:
		notes = append(notes, fmt.Sprintf("%s..%s", num(*f.Min), num(*f.Max)))
	case f.Min != nil:
		notes = append(notes, ">= "+num(*f.Min))
	case f.Max != nil:
		notes = append(notes, "<= "+num(*f.Max))
	}
	if f.MaxLength > 0 {
		notes = append(notes, fmt.Sprintf("at most %d bytes", f.MaxLength))
	}
	switch f.Type {
	case executor.TypeDuration:
		notes = append(notes, "like 500ms, 30s, 5m; a bare number is seconds")
	case executor.TypeList, executor.TypeStringOrList:
		notes = append(notes, "repeat the flag for a list")
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, "; "))
	}
	return b.String()
}

// values is every value the user gave the flag of a scalar field, in order.
func (c *configFlags) values(field string) []string {
	if v, ok := c.scalar[field]; ok {
		return v.all
	}
	return nil
}

// set reports whether the user gave the flag of field.
func (c *configFlags) set(field string) bool {
	fl := c.flags.Lookup(flagName(field))
	return fl != nil && fl.Changed
}

// config is the executor config from --with and the flags the user set.
func (c *configFlags) config() (map[string]any, error) {
	config, err := c.withConfig()
	if err != nil {
		return nil, err
	}
	for _, f := range c.fields {
		if !c.set(f.Name) {
			continue
		}
		switch f.Type {
		case executor.TypeList, executor.TypeStringOrList:
			// One value is text the executor parses (a command line, a
			// JSON array, "1,2,3"); several are a list.
			if vs := *c.list[f.Name]; len(vs) == 1 {
				config[f.Name] = vs[0]
			} else {
				config[f.Name] = anyList(vs)
			}
		default:
			config[f.Name] = c.scalar[f.Name].String()
		}
	}
	return config, nil
}

// withConfig decodes --with, then expands the variable references in its
// strings. Numbers stay exact (json.Number); those of scalar keys are handed
// over as text, like Dagu's expanded values, so the executor's weak decoding
// reads "10" and "30" (seconds) alike.
//
// Dagu's step_types pass the with: map with every $ escaped (see
// stepTypes), so that Dagu expands nothing inside the JSON: a value with a
// quote or a newline could not break it. daguq expands instead, after
// parsing, each string on its own: $VAR, ${VAR} and ${VAR.a.b} from the
// environment Dagu gives the step (its params, env and earlier outputs); a
// reference to an unset variable stays as written. The handler's shell text
// (run as a string, script, shell) is left alone: its $ is for that shell,
// which runs with the same variables and daguq's DAGUQ_* ones.
func (c *configFlags) withConfig() (map[string]any, error) {
	config := map[string]any{}
	if !c.flags.Changed("with") {
		return config, nil
	}
	dec := json.NewDecoder(strings.NewReader(c.with))
	dec.UseNumber()
	if err := dec.Decode(&config); err != nil || dec.More() || config == nil {
		return nil, usageError("--with must be one JSON object of with: keys, like '{\"queue\":\"emails\",\"batch_size\":50}'")
	}
	for k, v := range config {
		c.fromWith[k] = true
		if _, text := v.(string); !text || !c.verbatim[k] {
			config[k] = expand.Value(v, os.LookupEnv)
		}
	}
	types := map[string]string{}
	for _, f := range c.fields {
		types[f.Name] = f.Type
	}
	for k, v := range config {
		if n, ok := v.(json.Number); ok && types[k] != executor.TypeJSON && types[k] != executor.TypeList {
			config[k] = string(n)
		}
	}
	return config, nil
}

func anyList(vs []string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}
