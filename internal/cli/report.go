package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// writeReport prints the report of a listing command (stats, pool list):
// with --json one indented JSON object, else the line naming the database
// and then what text prints.
func (a *app) writeReport(report any, asJSON bool, path, source string, text func() error) error {
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	fmt.Fprintf(a.stdout, "database: %s\n", describeDB(path, source))
	return text()
}

// newTable is a text table with columns two spaces apart.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }
