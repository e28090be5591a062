package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/daguq/daguq/executor"
)

// installFlags are the flags of "daguq dagu-config --install".
type installFlags struct {
	install bool
	base    string
	force   bool
}

func addInstallFlags(cmd *cobra.Command) *installFlags {
	f := &installFlags{}
	cmd.Flags().BoolVar(&f.install, "install", false, "merge the step types into Dagu's base config instead of printing them")
	cmd.Flags().StringVar(&f.base, "base", "", "base config file for --install (default: $DAGU_BASE_CONFIG, else $DAGU_HOME/base.yaml, else ~/.dagu/base.yaml when ~/.dagu exists, else $XDG_CONFIG_HOME/dagu/base.yaml or ~/.config/dagu/base.yaml)")
	cmd.Flags().BoolVar(&f.force, "force", false, "with --install: replace step types named queue, enqueue or pool that the base config already defines")
	return f
}

// check rejects --base and --force without --install.
func (f *installFlags) check() error {
	if f.install {
		return nil
	}
	for _, name := range []string{"base", "force"} {
		if f.set(name) {
			return usageError("--%s only goes with --install", name)
		}
	}
	return nil
}

func (f *installFlags) set(name string) bool {
	switch name {
	case "base":
		return f.base != ""
	case "force":
		return f.force
	}
	return false
}

// Where baseConfigPath found the file, as Dagu resolves it.
const (
	baseFromFlag     = "--base"
	baseFromEnv      = "DAGU_BASE_CONFIG"
	baseFromHome     = "DAGU_HOME"
	baseFromLegacy   = "~/.dagu"
	baseFromXDG      = "XDG_CONFIG_HOME"
	baseFromXDGHome  = "~/.config"
	baseConfigName   = "base.yaml"
	baseConfigAppDir = "dagu"
)

// baseConfigPath is the base config file Dagu reads: $DAGU_BASE_CONFIG, else
// $DAGU_HOME/base.yaml, else ~/.dagu/base.yaml when ~/.dagu exists (Dagu's
// legacy home), else $XDG_CONFIG_HOME/dagu/base.yaml (~/.config by default).
func baseConfigPath(flag string, getenv func(string) string) (path, source string, err error) {
	if flag != "" {
		return flag, baseFromFlag, nil
	}
	if v := getenv("DAGU_BASE_CONFIG"); v != "" {
		return v, baseFromEnv, nil
	}
	if v := getenv("DAGU_HOME"); v != "" {
		return filepath.Join(v, baseConfigName), baseFromHome, nil
	}
	home := getenv("HOME")
	if home == "" {
		if home, err = os.UserHomeDir(); err != nil {
			return "", "", usageError("cannot find the home directory (%v): give --base", err)
		}
	}
	if info, err := os.Stat(filepath.Join(home, ".dagu")); err == nil && info.IsDir() {
		return filepath.Join(home, ".dagu", baseConfigName), baseFromLegacy, nil
	}
	if v := getenv("XDG_CONFIG_HOME"); v != "" {
		return filepath.Join(v, baseConfigAppDir, baseConfigName), baseFromXDG, nil
	}
	return filepath.Join(home, ".config", baseConfigAppDir, baseConfigName), baseFromXDGHome, nil
}

// installDaguConfig merges the step types in generated (what dagu-config
// prints) into the base config chosen by f, and says what it did on stderr.
func (a *app) installDaguConfig(f *installFlags, generated []byte) error {
	path, source, err := baseConfigPath(f.base, a.getenv)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("%q (from %s)", path, source)
	old, err := os.ReadFile(path)
	created := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		created = true
	case err != nil:
		return usageError("read base config %s: %v", where, err)
	}
	merged, res, err := mergeStepTypes(old, generated, f.force)
	if err != nil {
		return usageError("base config %s: %v", where, err)
	}
	if res.unchanged() {
		fmt.Fprintf(a.stderr, "daguq dagu-config: step types %s are already up to date in %s\n", quotedNames(res.same), where)
		return nil
	}
	if err := writeFileAtomic(path, merged); err != nil {
		return usageError("write base config %s: %v", where, err)
	}
	var done []string
	if created {
		done = append(done, "created the file")
	}
	if len(res.added) > 0 {
		done = append(done, "added step types "+quotedNames(res.added))
	}
	if len(res.replaced) > 0 {
		done = append(done, "replaced step types "+quotedNames(res.replaced))
	}
	fmt.Fprintf(a.stderr, "daguq dagu-config: %s in %s\n", strings.Join(done, ", "), where)
	return nil
}

func quotedNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// mergeResult lists the step types by what the merge did with them.
type mergeResult struct {
	added, replaced, same []string
}

func (r mergeResult) unchanged() bool { return len(r.added) == 0 && len(r.replaced) == 0 }

// mergeStepTypes returns base with the step types of generated in its
// step_types map. Everything else in base stays: when base has no
// step_types yet, generated is appended as text, keeping base byte for byte;
// otherwise the document is re-encoded (comments kept, layout normalized).
// A step type that base already defines differently is an error unless force.
func mergeStepTypes(base, generated []byte, force bool) ([]byte, mergeResult, error) {
	var res mergeResult
	ours, err := stepTypesNode(generated)
	if err != nil {
		return nil, res, fmt.Errorf("daguq's own step types do not parse: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(base, &doc); err != nil {
		return nil, res, fmt.Errorf("not valid YAML: %v", err)
	}
	if len(doc.Content) == 0 {
		// Empty, or comments only: our text goes after whatever is there.
		res.added = mappingKeys(ours)
		return appendText(base, generated), res, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, res, fmt.Errorf("the top level must be a map of keys (line %d), not %s", root.Line, kindName(root))
	}
	existing := mappingValue(root, "step_types")
	if existing == nil {
		res.added = mappingKeys(ours)
		return appendText(base, generated), res, nil
	}
	switch {
	case existing.Kind == yaml.ScalarNode && existing.Tag == "!!null":
		// "step_types:" with nothing under it.
		*existing = *ours
		res.added = mappingKeys(ours)
		out, err := encodeNode(&doc)
		return out, res, err
	case existing.Kind != yaml.MappingNode:
		return nil, res, fmt.Errorf("step_types (line %d) must be a map of step type names, not %s", existing.Line, kindName(existing))
	}
	var conflicts []string
	for i := 0; i+1 < len(ours.Content); i += 2 {
		name, def := ours.Content[i].Value, ours.Content[i+1]
		old, line := mappingValue(existing, name), mappingKeyLine(existing, name)
		switch {
		case old == nil:
			existing.Content = append(existing.Content, ours.Content[i], def)
			res.added = append(res.added, name)
		case sameYAML(old, def):
			res.same = append(res.same, name)
		case force:
			*old = *def
			res.replaced = append(res.replaced, name)
		default:
			conflicts = append(conflicts, fmt.Sprintf("%q (line %d)", name, line))
		}
	}
	if len(conflicts) > 0 {
		return nil, res, fmt.Errorf("it already defines step type %s, not the one daguq would install: "+
			"rename or remove it, or run \"daguq dagu-config --install --force\" to replace daguq's step types "+
			"(%s) and nothing else", strings.Join(conflicts, " and "), strings.Join(executor.Kinds(), ", "))
	}
	if res.unchanged() {
		return base, res, nil
	}
	out, err := encodeNode(&doc)
	return out, res, err
}

// stepTypesNode is the step_types map of a dagu-config printout.
func stepTypesNode(generated []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(generated, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("no top-level map")
	}
	n := mappingValue(doc.Content[0], "step_types")
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, errors.New("no step_types map")
	}
	return n, nil
}

// mappingValue is the value of key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// mappingKeyLine is the line of key in mapping m (0 if absent).
func mappingKeyLine(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return 0
}

func mappingKeys(m *yaml.Node) []string {
	var keys []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys = append(keys, m.Content[i].Value)
	}
	return keys
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a map"
}

// sameYAML reports whether two nodes hold the same data.
func sameYAML(a, b *yaml.Node) bool {
	var va, vb any
	if a.Decode(&va) != nil || b.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func appendText(base, text []byte) []byte {
	out := append([]byte{}, base...)
	if len(bytes.TrimSpace(out)) > 0 {
		if !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		out = append(out, '\n')
	}
	return append(out, text...)
}

func encodeNode(doc *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, keeping the old file's permissions (0644 for a new one).
func writeFileAtomic(path string, data []byte) error {
	mode := fs.FileMode(0o644)
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".daguq-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
