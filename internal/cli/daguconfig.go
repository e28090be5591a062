package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/executor"
)

func (a *app) newDaguConfigCmd() *cobra.Command {
	var bin string
	var install *installFlags
	cmd := &cobra.Command{
		Use:   "dagu-config",
		Short: "Print the step_types that give Dagu the steps \"queue\", \"enqueue\" and \"pool\"",
		Long: `Print the step_types section for Dagu's base config ($DAGU_HOME/base.yaml,
Dagu v2.6 or later) that defines the step types "queue", "enqueue" and "pool". Each
has an input_schema generated from daguq's own config definitions, so Dagu
checks a step's with: keys (names, types, ranges, allowed values) when it loads
the DAG, and a template that runs this daguq binary without a shell:
"daguq consume --with '<the with: map as JSON>'", "daguq enqueue --with ..."
or "daguq pool run --with ...".

"daguq dagu-config --install" merges the section into the base config
($DAGU_BASE_CONFIG, else $DAGU_HOME/base.yaml, else ~/.config/dagu/base.yaml;
--base names another file), keeping everything else in it, and refuses when
it already defines a different step type named queue, enqueue or pool
(--force replaces those and nothing else).

The template names the daguq binary by its absolute path; --bin names another
one (e.g. where it is installed on the Dagu host and on every worker).

The template escapes every "$" of that JSON, so Dagu passes it through as
written and daguq expands the references itself, in each string on its own:
$VAR, ${VAR} and ${VAR.json.path} (a param, env: or an earlier step's output:)
in with: values; a reference to a variable that is not set stays as written.
The text of run, script and shell keeps its "$" for the handler's shell:
run: sh -c 'echo "$DAGUQ_BATCH_ID"' works. See docs/dagu.md, "The $ rule".`,
		Example: `  daguq dagu-config --install
  daguq dagu-config --install --base /etc/dagu/base.yaml --bin /usr/local/bin/daguq
  daguq dagu-config >> "$DAGU_HOME/base.yaml"
  daguq dagu-config --bin /usr/local/bin/daguq

  # then, in a DAG:
  #   steps:
  #     - id: send
  #       type: queue
  #       with: {queue: emails, batch_size: 50, concurrency: 4, run: ./send.sh}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := install.check(); err != nil {
				return err
			}
			if bin == "" {
				exe, err := os.Executable()
				if err != nil {
					return usageError("cannot find this program's path (%v): give --bin", err)
				}
				if exe, err = filepath.EvalSymlinks(exe); err == nil {
					bin = exe
				}
			} else if !filepath.IsAbs(bin) && filepath.Base(bin) != bin {
				abs, err := filepath.Abs(bin)
				if err != nil {
					return usageError("--bin %q: %v", bin, err)
				}
				bin = abs
			}
			var b bytes.Buffer
			writeDaguConfig(&b, bin)
			if install.install {
				return a.installDaguConfig(install, b.Bytes())
			}
			_, err := a.stdout.Write(b.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&bin, "bin", "", "the daguq program the step types run (default: this one, by absolute path; a bare name is looked up in Dagu's PATH)")
	cmd.Flags().StringVar(&bin, "daguq-bin", "", "same as --bin")
	_ = cmd.Flags().MarkHidden("daguq-bin")
	install = addInstallFlags(cmd)
	return cmd
}

// withArg is the template of the step types' --with argument: the with: map
// as JSON with every $ escaped (Dagu's escape is an odd number of
// backslashes before $; the JSON has an even number, pairs of \\, before
// any $), so Dagu expands nothing in it and a value holding quotes or
// newlines cannot break it. daguq expands the references after parsing
// (configFlags.withConfig).
const withArg = `{{ json .input | replace "$" "\\$" }}`

// stepTypes is what dagu-config prints: Dagu's step_types for both kinds.
func stepTypes(bin string) map[string]any {
	types := map[string]any{}
	for _, kind := range executor.Kinds() {
		sub, desc := []any{"consume"}, "Claim batches from a daguq queue and run a handler per batch (daguq consume)"
		switch kind {
		case executor.KindEnqueue:
			sub, desc = []any{"enqueue"}, "Add messages to a daguq queue (daguq enqueue)"
		case executor.KindPool:
			sub, desc = []any{"pool", "run"}, "Run a command while holding slots of a daguq pool shared by every DAG (daguq pool run)"
		}
		types[kind] = map[string]any{
			"type":         "command",
			"description":  desc,
			"input_schema": executor.InputSchema(kind),
			"template": map[string]any{
				"exec": map[string]any{
					"command": bin,
					"args":    append(sub, "--with", withArg),
				},
			},
		}
	}
	return map[string]any{"step_types": types}
}

func writeDaguConfig(b *bytes.Buffer, bin string) {
	fmt.Fprintf(b, "# daguq step types for Dagu's base config ($DAGU_HOME/base.yaml), Dagu v2.6 or later.\n")
	fmt.Fprintf(b, "# Printed by \"daguq dagu-config\"; every with: key is documented in docs/executors.md.\n")
	y := &yamlWriter{w: b, order: daguConfigOrder}
	y.writeMap(stepTypes(bin), 0, nil)
}

// daguConfigOrder prints keys in reading order: a step type's parts, a
// schema's header before its properties, properties in documentation order.
func daguConfigOrder(path []string, keys []string) []string {
	var first []string
	switch {
	case len(path) == 1 && path[0] == "step_types":
		first = executor.Kinds()
	case len(path) == 2:
		first = []string{"type", "description", "input_schema", "template"}
	case len(path) == 3 && path[2] == "input_schema":
		first = []string{"$schema", "title", "type", "additionalProperties", "required", "properties"}
	case len(path) == 4 && path[3] == "properties":
		for _, f := range executor.Fields(path[1]) {
			first = append(first, f.Name)
		}
	case len(path) == 5 && path[3] == "properties":
		first = []string{"description", "type", "enum", "default", "minimum", "maximum", "anyOf"}
	default:
		first = []string{"type", "command", "args"}
	}
	out := make([]string, 0, len(keys))
	for _, k := range first {
		if slices.Contains(keys, k) {
			out = append(out, k)
		}
	}
	for _, k := range keys {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}
