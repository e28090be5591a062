package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/queuestore"
)

func (a *app) newPauseCmd() *cobra.Command {
	var create bool
	cmd := &cobra.Command{
		Use:   "pause QUEUE",
		Short: "Stop consumers from claiming a queue (enqueue still works)",
		Long: `Pause a queue: from now on every claim from it returns nothing, in every
process, so consumers in drain mode finish with nothing to do and consumers in
watch mode wait. Batches already leased run to their end. Producers can still
enqueue. "daguq resume" undoes it.

The queue must be known (have messages or settings), so that a mistyped name
is refused; --create pauses a queue before its first message.`,
		Example: `  daguq pause emails
  daguq stats emails    # PAUSED yes
  daguq pause reports --create`,
		Args: queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withQueue(cmd.Context(), args[0], create, "or --create pauses a new queue", func(st queuestore.Backend) error {
				if err := st.Pause(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "paused %q\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&create, "create", false, "pause the queue even when the database does not know it yet")
	return cmd
}
