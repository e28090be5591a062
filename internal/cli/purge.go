package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/queuestore"
)

func (a *app) newPurgeCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge QUEUE --yes",
		Short: "Delete every message of a queue, in-flight ones too (asks for --yes)",
		Long: `Delete every message of a queue, whatever its state (ready, delayed, in flight,
dead, acked), and its leases. Consumers holding a batch of it lose their lease:
their ack fails and changes nothing. This cannot be undone, so it refuses to
run without --yes. The queue's pause flag and in-flight limit stay. An unknown
queue (no messages, no settings) is refused.`,
		Example: `  daguq purge scratch --yes`,
		Args:    queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usageError("refusing to delete every message of %q without --yes", args[0])
			}
			return a.withQueue(cmd.Context(), args[0], false, "", func(st queuestore.Backend) error {
				n, err := st.Purge(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted %d message(s) of %q\n", n, args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")
	return cmd
}
