package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) newResumeCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "resume QUEUE",
		Short:   "Let consumers claim a paused queue again",
		Long:    `Resume a queue that "daguq pause" stopped: claims take from it again.`,
		Example: `  daguq resume emails`,
		Args:    queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Resume(cmd.Context(), args[0]); err != nil {
				return storeError(err)
			}
			fmt.Fprintf(a.stdout, "resumed %q\n", args[0])
			return nil
		},
	}
}
