package plugin

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/dagucloud/dagu"

	"github.com/daguq/daguq/executor"
)

// Register adds the step types `queue`, `enqueue` and `pool` to Dagu's executor
// registry. Call it once at start-up, before the engine loads a DAG. Dagu's
// registry is global to the process.
func Register() {
	for _, kind := range executor.Kinds() {
		dagu.RegisterExecutor(kind, factory(kind),
			dagu.WithStepValidator(validator(kind)),
			// The handler (the pool step's command) comes through `with:`
			// (run or script), as in the step_types way: no command,
			// script, shell or container field.
			dagu.WithExecutorCapabilities(dagu.ExecutorCapabilities{}),
		)
	}
}

func factory(kind string) dagu.ExecutorFactory {
	return func(_ context.Context, step dagu.Step) (dagu.Executor, error) {
		e, err := executor.New(kind, specOf(step))
		if err != nil {
			return nil, fmt.Errorf("%s step %q: %w", kind, step.Name, err)
		}
		// Like a command step, whose stdin is empty: never read the embedding
		// program's own standard input (`file: "-"`).
		if s, ok := e.(executor.StdinSetter); ok {
			s.SetStdin(strings.NewReader(""))
		}
		return e, nil
	}
}

// specOf maps a Dagu step to the executor's spec. Dagu evaluates `with:`
// before the factory runs, but hands over env and working_dir as written:
// they are expanded here against the process environment (and earlier
// entries of env), the only variables a registered executor can see.
func specOf(step dagu.Step) executor.Spec {
	return executor.Spec{
		Name:   step.Name,
		Config: step.ExecutorConfig.Config,
		Env:    expandEnv(step.Env),
		Dir:    os.ExpandEnv(step.Dir),
	}
}

func expandEnv(env []string) []string {
	if len(env) == 0 {
		return nil
	}
	seen := map[string]string{}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		v = os.Expand(v, func(name string) string {
			if s, ok := seen[name]; ok {
				return s
			}
			return os.Getenv(name)
		})
		seen[k] = v
		out = append(out, k+"="+v)
	}
	return out
}

// validator checks `with:` when Dagu loads the DAG, with the parser the
// executor uses when the step runs.
func validator(kind string) dagu.StepValidator {
	return func(step dagu.Step) error {
		if err := validateAtLoad(kind, step.ExecutorConfig.Config); err != nil {
			return fmt.Errorf("%s step %q: %w", kind, step.Name, err)
		}
		return nil
	}
}

// runtimeExpr matches what Dagu expands in a `with:` value when the step
// runs: ${VAR}, $VAR and `command`.
var runtimeExpr = regexp.MustCompile("`[^`]+`|\\$\\{[^}]+\\}|\\$[A-Za-z_][A-Za-z0-9_]*")

// validateAtLoad runs executor.Validate on config with every value that Dagu
// expands later replaced by a valid stand-in of its field's type, so that
// the rest is judged now; executor.New checks the expanded values when the
// step runs. When that fails, it tries once more without the deferred
// optional text values (a stand-in can miss a format, e.g. not_before).
func validateAtLoad(kind string, config map[string]any) error {
	standIn, deferred := deferRuntimeValues(kind, config)
	err := executor.Validate(kind, standIn)
	if err == nil || len(deferred) == 0 {
		return err
	}
	for _, name := range deferred {
		delete(standIn, name)
	}
	if executor.Validate(kind, standIn) == nil {
		return nil
	}
	return err
}

// deferRuntimeValues returns a copy of config with stand-ins for the values
// Dagu expands at run time, and the names of the optional text fields among
// them.
func deferRuntimeValues(kind string, config map[string]any) (map[string]any, []string) {
	fields := map[string]executor.Field{}
	for _, f := range executor.Fields(kind) {
		fields[f.Name] = f
	}
	out := make(map[string]any, len(config))
	var optionalText []string
	for name, v := range config {
		out[name] = v
		f, known := fields[name]
		if !known {
			continue // executor.Validate names the unknown key
		}
		switch x := v.(type) {
		case string:
			if runtimeExpr.MatchString(x) {
				out[name] = standInFor(f)
				if f.Type == executor.TypeString && !f.Required && f.Default == nil {
					optionalText = append(optionalText, name)
				}
			}
		case []any:
			if f.Type == executor.TypeList {
				out[name] = deferListItems(x)
			}
		}
	}
	return out, optionalText
}

// standInFor is a value of f's type that the parser accepts.
func standInFor(f executor.Field) any {
	if f.Default != nil {
		return f.Default
	}
	switch f.Type {
	case executor.TypeInteger, executor.TypeNumber, executor.TypeDuration:
		if f.Min != nil {
			return *f.Min
		}
		return 0
	case executor.TypeBoolean:
		return false
	case executor.TypeJSON:
		return map[string]any{}
	case executor.TypeList:
		return []any{1} // a valid message and a valid message id
	}
	return "x" // a valid queue name, handler, path, group or token
}

func deferListItems(items []any) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it
		if s, ok := it.(string); ok && runtimeExpr.MatchString(s) {
			out[i] = 1
		}
	}
	return out
}
