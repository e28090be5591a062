package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/queuestore"
)

func (a *app) newResumeCmd() *cobra.Command {
	var create bool
	cmd := &cobra.Command{
		Use:   "resume QUEUE",
		Short: "Let consumers claim a paused queue again",
		Long: `Resume a queue that "daguq pause" stopped: claims take from it again.

The queue must be known (have messages or settings), so that a mistyped name
is refused; --create records a queue that is not paused before its first
message.`,
		Example: `  daguq resume emails`,
		Args:    queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withQueue(cmd.Context(), args[0], create, "or --create records a new queue", func(st queuestore.Backend) error {
				if err := st.Resume(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "resumed %q\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&create, "create", false, "record the queue even when the database does not know it yet")
	return cmd
}
