package cli

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// buildInfo is what the binary says about its build: the module version
// ("(devel)" for a build from a checkout) and the VCS revision go build
// stamped, when it did (not with -buildvcs=false, nor outside a checkout).
type buildInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"` // the checkout had uncommitted changes
	Time     string `json:"time,omitempty"`     // of the revision
}

// readBuildInfo reads the build information of the running binary.
func readBuildInfo() buildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return buildInfo{Version: "(unknown)"}
	}
	b := buildInfo{Version: info.Main.Version}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "vcs.time":
			b.Time = s.Value
		}
	}
	return b
}

// String is one line: "v1.2.0 (revision 4f2c9e1a7b3d, modified)".
func (b buildInfo) String() string {
	if b.Revision == "" {
		return b.Version + " (no VCS revision stamped)"
	}
	rev := b.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	details := []string{"revision " + rev}
	if b.Modified {
		details = append(details, "modified")
	}
	if b.Time != "" {
		details = append(details, b.Time)
	}
	return fmt.Sprintf("%s (%s)", b.Version, strings.Join(details, ", "))
}

func (a *app) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print daguq's version and the VCS revision it was built from",
		Long: `Print the module version of this daguq ("(devel)" for a build from a
checkout) and the VCS revision go build stamped into it, with "modified" when
the checkout had uncommitted changes. "daguq --version" prints the same line;
"daguq stats" shows it next to the database's schema version.`,
		Example: `  daguq version
  daguq --version`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(a.stdout, "daguq %s\n", readBuildInfo())
			return err
		},
	}
}
