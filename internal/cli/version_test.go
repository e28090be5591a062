package cli_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/daguq/daguq/queuestore"
)

// daguq version and daguq --version print the module version and the VCS
// revision of the build, as go version -m reads them from the binary; stats
// shows the same next to the schema version.
func TestVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out, err := exec.Command("go", "version", "-m", daguqBin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	var modVersion, revision string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/daguq/daguq":
			modVersion = f[2]
		case len(f) >= 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			revision = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	if modVersion == "" {
		t.Fatalf("go version -m names no module version:\n%s", out)
	}

	v := e.ok(nil, "version").Stdout
	if !strings.HasPrefix(v, "daguq "+modVersion+" (") || strings.Count(v, "\n") != 1 {
		t.Errorf("daguq version = %q, want one line starting with daguq %s", v, modVersion)
	}
	switch {
	case revision != "" && !strings.Contains(v, "revision "+revision[:12]):
		t.Errorf("daguq version = %q, want the revision %s", v, revision)
	case revision == "" && !strings.Contains(v, "no VCS revision"):
		t.Errorf("daguq version = %q, want it to say no revision was stamped", v)
	}
	if flag := e.ok(nil, "--version").Stdout; flag != v {
		t.Errorf("daguq --version = %q, daguq version = %q: want the same", flag, v)
	}

	e.ok(nil, "enqueue", "--queue", "q", "--message", "1")
	if table := e.ok(nil, "stats").Stdout; !strings.Contains(table, fmt.Sprintf("schema version %d, ", queuestore.SchemaVersion())+strings.TrimSpace(v)) {
		t.Errorf("stats does not show the version next to the schema version:\n%s", table)
	}
	report := decode[struct {
		SchemaVersion int `json:"schema_version"`
		Daguq         struct {
			Version  string `json:"version"`
			Revision string `json:"revision"`
		} `json:"daguq"`
	}](t, e.ok(nil, "stats", "--json"))
	if report.SchemaVersion != queuestore.SchemaVersion() || report.Daguq.Version != modVersion || report.Daguq.Revision != revision {
		t.Errorf("stats --json: %+v, want schema %d, version %s, revision %q", report, queuestore.SchemaVersion(), modVersion, revision)
	}
}
