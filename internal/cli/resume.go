package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/queuestore"
)

func (a *app) newResumeCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "resume QUEUE",
		Short:   "Let consumers claim a paused queue again",
		Long:    `Resume a queue that "daguq pause" stopped: claims take from it again.`,
		Example: `  daguq resume emails`,
		Args:    queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(func(st queuestore.Backend) error {
				if err := st.Resume(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "resumed %q\n", args[0])
				return nil
			})
		},
	}
}
