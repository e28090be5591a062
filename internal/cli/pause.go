package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/queuestore"
)

func (a *app) newPauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pause QUEUE",
		Short: "Stop consumers from claiming a queue (enqueue still works)",
		Long: `Pause a queue: from now on every claim from it returns nothing, in every
process, so consumers in drain mode finish with nothing to do and consumers in
watch mode wait. Batches already leased run to their end. Producers can still
enqueue. "daguq resume" undoes it.`,
		Example: `  daguq pause emails
  daguq stats emails    # PAUSED yes`,
		Args: queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(st queuestore.Backend) error {
				if err := st.Pause(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "paused %q\n", args[0])
				return nil
			})
		},
	}
}
