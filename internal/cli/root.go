package cli

import (
	"github.com/spf13/cobra"
)

// Main runs the command line with args and returns the process exit code.
func Main(args []string) int {
	root := &cobra.Command{Use: "daguq"}
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return 2
	}
	return 0
}
