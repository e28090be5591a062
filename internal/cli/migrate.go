package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/internal/storeopen"
)

func (a *app) newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create the database, or bring its schema to this build's version",
		Long: `Create the database file (mode 0600, with its directory) when it is missing,
and apply the schema migrations this build knows in one transaction. Every
command does this on first use; run it ahead to check a path or to upgrade a
shared file at a chosen moment. A file written by a newer daguq is refused and
left as it is.`,
		Example: `  daguq migrate
  daguq --db /var/lib/daguq/queues.db migrate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openStore()
			if err != nil {
				return err
			}
			defer st.Close()
			path, source := a.dbPath()
			fmt.Fprintf(a.stdout, "database %s: schema version %d\n", describeDB(path, source), storeopen.SchemaVersion(path))
			return nil
		},
	}
}
