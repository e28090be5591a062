package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/daguq/daguq/executor"
)

// exampleDAGs are the example DAG files of dags/.
func exampleDAGs(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "dags", "*.yaml"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no example DAGs in dags/ (%v)", err)
	}
	return files
}

type dagFile struct {
	Type       string           `yaml:"type"`
	WorkingDir string           `yaml:"working_dir"`
	Params     []map[string]any `yaml:"params"`
	Steps      []struct {
		ID      string         `yaml:"id"`
		Type    string         `yaml:"type"`
		Depends []string       `yaml:"depends"`
		With    map[string]any `yaml:"with"`
		Exec    *struct {
			Command string `yaml:"command"`
		} `yaml:"exec"`
	} `yaml:"steps"`
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(\.[^}]*)?\}`)

// substitute puts the DAG's param defaults in for ${PARAM}; a value that is
// one other reference (a step's output like ${CLAIM.token}, or a param with
// an empty default) becomes a valid stand-in of the key's type, as Dagu's
// own load-time check does.
func substitute(kind, key string, v any, params map[string]string) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	whole := varRef.FindStringSubmatchIndex(s)
	if whole != nil && whole[0] == 0 && whole[1] == len(s) {
		// An empty default means the caller gives it (a child DAG's TOKEN).
		if p, ok := params[s[whole[2]:whole[3]]]; ok && whole[4] < 0 && p != "" {
			return p
		}
		for _, f := range executor.Fields(kind) {
			if f.Name != key {
				continue
			}
			switch f.Type {
			case executor.TypeInteger, executor.TypeNumber:
				return "1"
			case executor.TypeDuration:
				return "1s"
			case executor.TypeBoolean:
				return "false"
			case executor.TypeList:
				return "1"
			case executor.TypeJSON:
				return "{}"
			}
			return "x"
		}
	}
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		if p, ok := params[m[1]]; ok && m[2] == "" {
			return p
		}
		return "x"
	})
}

// Every example DAG is documented at its top, parses, uses `type: graph`
// when a step depends on another, runs in its own folder when it uses the
// handlers, and every `with:` of a daguq step passes the executor's own
// validation (the parser Dagu's step validator and daguq use).
func TestExampleDAGsParseAndValidate(t *testing.T) {
	t.Parallel()
	kinds := map[string]bool{}
	for _, k := range executor.Kinds() {
		kinds[k] = true
	}
	seen := map[string]int{}
	for _, path := range exampleDAGs(t) {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(text), "# ") || strings.Count(strings.SplitN(string(text), "\n\n", 2)[0], "\n#") < 2 {
				t.Errorf("no comment at the top saying what the DAG does")
			}
			var dag dagFile
			if err := yaml.Unmarshal(text, &dag); err != nil {
				t.Fatalf("not YAML: %v", err)
			}
			if len(dag.Steps) == 0 {
				t.Fatalf("no steps")
			}
			params := map[string]string{}
			for _, p := range dag.Params {
				for k, v := range p {
					params[k] = strings.TrimSpace(yamlText(v))
				}
			}
			for _, step := range dag.Steps {
				if len(step.Depends) > 0 && dag.Type != "graph" {
					t.Errorf("step %s uses depends: the DAG needs type: graph", step.ID)
				}
				if step.Exec != nil && strings.HasPrefix(step.Exec.Command, "./") {
					checkHandler(t, step.Exec.Command, dag.WorkingDir)
				}
				if !kinds[step.Type] {
					continue
				}
				seen[step.Type]++
				config := map[string]any{}
				for k, v := range step.With {
					config[k] = substitute(step.Type, k, v, params)
				}
				if err := executor.Validate(step.Type, config); err != nil {
					t.Errorf("step %s: with: %v", step.ID, err)
				}
				if run, ok := config["run"].(string); ok && strings.HasPrefix(run, "./") {
					checkHandler(t, strings.Fields(run)[0], dag.WorkingDir)
				}
			}
		})
	}
	if seen[executor.KindQueue] == 0 || seen[executor.KindEnqueue] == 0 {
		t.Errorf("the examples use the step types %v: want both", seen)
	}
}

// checkHandler: a handler named relative to the DAG exists, is executable,
// and the DAG runs in its own folder (Dagu's default is a per-run directory).
func checkHandler(t *testing.T, rel, workingDir string) {
	t.Helper()
	if workingDir != "." {
		t.Errorf("%s is relative to the DAG's folder: set working_dir: .", rel)
	}
	info, err := os.Stat(filepath.Join(repoRoot, "dags", rel))
	if err != nil || info.Mode()&0o111 == 0 {
		t.Errorf("handler %s: missing or not executable (%v)", rel, err)
	}
}

func yamlText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := yaml.Marshal(v)
	return string(b)
}

// With a real Dagu, "dagu validate" accepts every example DAG under the
// step types of "daguq dagu-config".
func TestExampleDAGsDaguValidate(t *testing.T) {
	t.Parallel()
	dagu := daguBin()
	if dagu == "" {
		t.Skip(skipNoDagu)
	}
	e := newEnv(t)
	home := filepath.Join(e.dir, "dagu")
	e.setenv("DAGU_HOME", home)
	e.daguq(nil, "dagu-config", "--install", "--bin", daguqBin)
	for _, path := range exampleDAGs(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			if r := e.run(nil, dagu, "validate", path); r.Code != 0 {
				t.Errorf("dagu validate: %s", r)
			}
		})
	}
}
