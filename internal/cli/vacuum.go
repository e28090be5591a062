package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/queuestore"
)

func (a *app) newVacuumCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "vacuum",
		Short: "Give the database file's free space back to the file system",
		Long: `Rewrite the database file without the pages that acked and purged messages
left free, and print its size before and after. It first deletes the bodies
of acked messages that acks keep listed to delete many at once (a queue that
gets no more acks, such as one moved away, keeps them otherwise). Files made
by this daguq give free pages back by themselves, in small steps after acks,
while other processes use them; a file made by an older daguq needs this once
to start doing so. The rewrite holds the write lock until it is done (seconds per GB):
producers and consumers wait meanwhile, so run it at a quiet time.`,
		Example: `  daguq vacuum
  daguq --db /var/lib/daguq/queues.db vacuum`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opened, err := a.openStore()
			if err != nil {
				return err
			}
			defer opened.Close()
			st, ok := opened.(*queuestore.Store)
			if !ok {
				return usageError("vacuum rewrites a SQLite file; PostgreSQL vacuums its tables itself (autovacuum, docs/postgres.md)")
			}
			before, after, err := st.Vacuum(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "database %s: %s before, %s after; free pages given back from now on after acks\n",
				st.Path(), mib(before.FileBytes), mib(after.FileBytes))
			return nil
		},
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
