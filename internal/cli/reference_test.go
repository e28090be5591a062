package cli

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md from the commands' help")

const referencePath = "../../docs/cli.md"

// docs/cli.md is the commands' own help, so it cannot drift from them.
func TestCLIReferenceIsCurrent(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	var b bytes.Buffer
	writeReference(&b, a.newRoot())
	if *update {
		if err := os.WriteFile(referencePath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(referencePath)
	if err != nil || !bytes.Equal(got, b.Bytes()) {
		t.Errorf("docs/cli.md is not the commands' current help (%v): run\n\tgo test ./internal/cli -run TestCLIReferenceIsCurrent -update", err)
	}
}

// Every command has a description, an example and complete usage.
func TestEveryCommandHasHelp(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	for _, cmd := range commands(a.newRoot()) {
		if cmd.Short == "" || cmd.Long == "" || cmd.Example == "" {
			t.Errorf("%s: want Short, Long and Example", cmd.CommandPath())
		}
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Usage == "" {
				t.Errorf("%s --%s has no usage text", cmd.CommandPath(), f.Name)
			}
		})
	}
}

func commands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() && c.Name() != "help" {
			out = append(out, commands(c)...)
		}
	}
	return out
}

func writeReference(w io.Writer, root *cobra.Command) {
	fmt.Fprintf(w, "# daguq command reference\n\n")
	fmt.Fprintf(w, "Generated from the commands' own `--help` by\n`go test ./internal/cli -run TestCLIReferenceIsCurrent -update`: edit the commands, not this file.\n\n")
	for _, cmd := range commands(root) {
		if cmd != root {
			fmt.Fprintf(w, "- [%s](#%s)\n", cmd.CommandPath(), strings.ReplaceAll(cmd.CommandPath(), " ", "-"))
		}
	}
	for _, cmd := range commands(root) {
		fmt.Fprintf(w, "\n## %s\n\n%s\n\n", cmd.CommandPath(), cmd.Short)
		fmt.Fprintf(w, "```\n%s\n```\n\n", cmd.UseLine())
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(cmd.Long))
		if len(cmd.Commands()) > 0 {
			fmt.Fprintf(w, "\nSubcommands:\n\n")
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() && c.Name() != "help" {
					fmt.Fprintf(w, "- `%s`: %s\n", c.CommandPath(), c.Short)
				}
			}
		}
		fmt.Fprintf(w, "\nExamples:\n\n```sh\n%s\n```\n", strings.TrimRight(cmd.Example, "\n"))
		if flags := cmd.LocalFlags().FlagUsagesWrapped(100); strings.TrimSpace(flags) != "" {
			fmt.Fprintf(w, "\nFlags:\n\n```\n%s```\n", flags)
		}
		if cmd != root {
			if flags := cmd.InheritedFlags().FlagUsagesWrapped(100); strings.TrimSpace(flags) != "" {
				fmt.Fprintf(w, "\nGlobal flags:\n\n```\n%s```\n", flags)
			}
		}
	}
}
