package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/daguq/daguq/executor"
)

// runApp runs the command line in this process with a fixed environment.
func runApp(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] }}
	code = a.run(args)
	return out.String(), errOut.String(), code
}

// printed is what dagu-config prints with --bin daguq.
func printed(t *testing.T) []byte {
	t.Helper()
	out, errOut, code := runApp(t, nil, "dagu-config", "--bin", "daguq")
	if code != 0 {
		t.Fatalf("dagu-config: exit %d: %s", code, errOut)
	}
	return []byte(out)
}

// daguBuiltinStepTypes are the step type names Dagu v2.6.5 reserves
// (internal/core/spec/step_types.go); a custom step type may not use them.
var daguBuiltinStepTypes = []string{"agent", "archive", "chat", "command", "container", "dag", "docker",
	"gha", "github-action", "github_action", "harness", "http", "jq", "k8s", "kubernetes", "log", "mail",
	"noop", "parallel", "postgres", "redis", "router", "s3", "sftp", "shell", "sqlite", "ssh",
	"subworkflow", "template"}

func TestDaguConfigPrintsStepTypesForEveryField(t *testing.T) {
	t.Parallel()
	var cfg struct {
		StepTypes map[string]struct {
			Type        string         `yaml:"type"`
			Description string         `yaml:"description"`
			InputSchema map[string]any `yaml:"input_schema"`
			Template    struct {
				Exec struct {
					Command string `yaml:"command"`
					Args    []any  `yaml:"args"`
				} `yaml:"exec"`
			} `yaml:"template"`
		} `yaml:"step_types"`
	}
	if err := yaml.Unmarshal(printed(t), &cfg); err != nil {
		t.Fatalf("dagu-config output is not YAML: %v", err)
	}
	var names []string
	for name := range cfg.StepTypes {
		names = append(names, name)
	}
	slices.Sort(names)
	want := executor.Kinds()
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("step types %v, want %v", names, want)
	}
	for _, kind := range executor.Kinds() {
		st := cfg.StepTypes[kind]
		if slices.Contains(daguBuiltinStepTypes, kind) {
			t.Errorf("step type %q collides with a Dagu builtin", kind)
		}
		if st.Type != "command" || st.Description == "" {
			t.Errorf("%s: type %q description %q, want command and a description", kind, st.Type, st.Description)
		}
		if st.InputSchema["type"] != "object" || st.InputSchema["additionalProperties"] != false {
			t.Errorf("%s: input_schema must be a closed object schema, got type %v additionalProperties %v",
				kind, st.InputSchema["type"], st.InputSchema["additionalProperties"])
		}
		props, _ := st.InputSchema["properties"].(map[string]any)
		var required []string
		for _, f := range executor.Fields(kind) {
			p, ok := props[f.Name].(map[string]any)
			if !ok {
				t.Errorf("%s: input_schema has no property %q", kind, f.Name)
				continue
			}
			if p["description"] != f.Description {
				t.Errorf("%s.%s: description %q, want the executor's", kind, f.Name, p["description"])
			}
			if f.Required {
				required = append(required, f.Name)
			}
			if f.Default == nil {
				continue
			}
			// An optional key without default is absent from .input, and
			// the template must not name it: it passes the map whole.
			if _, ok := p["default"]; !ok {
				t.Errorf("%s.%s: the executor's default %v is not in the schema", kind, f.Name, f.Default)
			}
		}
		if len(props) != len(executor.Fields(kind)) {
			t.Errorf("%s: %d properties, want one per executor field (%d)", kind, len(props), len(executor.Fields(kind)))
		}
		gotRequired, _ := st.InputSchema["required"].([]any)
		if len(gotRequired) != len(required) {
			t.Errorf("%s: required %v, want %v", kind, gotRequired, required)
		}
		// The template runs daguq directly (no shell) with the with: map
		// as one JSON argument, every $ escaped for Dagu, which "daguq
		// consume/enqueue --with" reads.
		sub := map[string][]any{executor.KindQueue: {"consume"}, executor.KindEnqueue: {"enqueue"}, executor.KindPool: {"pool", "run"}}[kind]
		const with = `{{ json .input | replace "$" "\\$" }}`
		if args := st.Template.Exec.Args; st.Template.Exec.Command != "daguq" || !slices.Equal(args, append(sub, "--with", with)) {
			t.Errorf("%s: template exec %q %v, want daguq %s --with '%s'", kind, st.Template.Exec.Command, args, sub, with)
		}
	}
}

func TestDaguConfigBinIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, flag := range []string{"--bin", "--daguq-bin"} {
		out, errOut, code := runApp(t, nil, "dagu-config", flag, "./bin/daguq")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", flag, code, errOut)
		}
		st := baseData(t, []byte(out))["step_types"].(map[string]any)
		for _, kind := range executor.Kinds() {
			exec := st[kind].(map[string]any)["template"].(map[string]any)["exec"].(map[string]any)
			if want := filepath.Join(dir, "bin", "daguq"); exec["command"] != want {
				t.Errorf("%s ./bin/daguq: %s runs %v, want %s", flag, kind, exec["command"], want)
			}
		}
	}
}

const userBase = `# my base config
type: graph   # steps use depends
env:
  - REGION: eu-west-1
retry_policy: {limit: 2, interval_sec: 10}
`

const userStepTypes = `type: graph
step_types:
  # a user's own step type
  greet:
    type: command
    input_schema: {type: object, properties: {who: {type: string}}}
    template:
      exec: {command: echo, args: [hello, {$input: who}]}
`

const foreignQueue = `step_types:
  queue:
    type: command
    input_schema: {type: object}
    template: {command: echo not daguq}
  greet:
    type: command
    input_schema: {type: object}
    template: {command: echo hi}
handler_on:
  failure: {command: notify.sh}
`

// baseFile is the content of a base config as Go data.
func baseData(t *testing.T, text []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(text, &m); err != nil {
		t.Fatalf("base config is not YAML after install: %v\n%s", err, text)
	}
	return m
}

func TestDaguConfigInstall(t *testing.T) {
	t.Parallel()
	ours := baseData(t, printed(t))["step_types"].(map[string]any)

	tests := []struct {
		name     string
		base     *string // nil: no file
		args     []string
		wantCode int
		wantErr  []string // substrings of stderr
		// check looks at the file after the run.
		check func(t *testing.T, before, after []byte)
	}{
		{name: "missing file is created", base: nil, wantErr: []string{"created the file", `added step types "queue", "enqueue"`},
			check: func(t *testing.T, _, after []byte) {
				st := baseData(t, after)["step_types"].(map[string]any)
				if len(st) != len(executor.Kinds()) || st["queue"] == nil || st["enqueue"] == nil {
					t.Errorf("step_types %v", st)
				}
			}},
		{name: "user keys and bytes kept", base: ptr(userBase), wantErr: []string{`added step types "queue", "enqueue"`},
			check: func(t *testing.T, before, after []byte) {
				if !bytes.HasPrefix(after, before) {
					t.Errorf("the user's text changed:\n%s", after)
				}
				m := baseData(t, after)
				if m["type"] != "graph" || m["env"] == nil || m["retry_policy"] == nil {
					t.Errorf("user keys lost: %v", m)
				}
			}},
		{name: "existing step_types gains ours", base: ptr(userStepTypes), wantErr: []string{`added step types "queue", "enqueue"`},
			check: func(t *testing.T, _, after []byte) {
				st := baseData(t, after)["step_types"].(map[string]any)
				if st["greet"] == nil || st["queue"] == nil || st["enqueue"] == nil {
					t.Errorf("step_types %v", st)
				}
				if !bytes.Contains(after, []byte("# a user's own step type")) {
					t.Errorf("comment lost:\n%s", after)
				}
			}},
		{name: "empty step_types key", base: ptr("type: graph\nstep_types:\n"), wantErr: []string{"added"},
			check: func(t *testing.T, _, after []byte) {
				if st, _ := baseData(t, after)["step_types"].(map[string]any); len(st) != len(executor.Kinds()) {
					t.Errorf("step_types %v", st)
				}
			}},
		{name: "foreign queue refused", base: ptr(foreignQueue), wantCode: 2,
			wantErr: []string{`step type "queue" (line 2)`, "--force", "base.yaml"},
			check: func(t *testing.T, before, after []byte) {
				if !bytes.Equal(before, after) {
					t.Errorf("refused install changed the file:\n%s", after)
				}
			}},
		{name: "force replaces only ours", base: ptr(foreignQueue), args: []string{"--force"},
			wantErr: []string{`replaced step types "queue"`, `added step types "enqueue"`},
			check: func(t *testing.T, _, after []byte) {
				m := baseData(t, after)
				st := m["step_types"].(map[string]any)
				if st["greet"] == nil || m["handler_on"] == nil {
					t.Errorf("user keys lost: %v", m)
				}
				if q, _ := st["queue"].(map[string]any); q["description"] != ours["queue"].(map[string]any)["description"] {
					t.Errorf("queue not replaced: %v", st["queue"])
				}
			}},
		{name: "not a map", base: ptr("- a\n- b\n"), wantCode: 2, wantErr: []string{"top level must be a map"}},
		{name: "step_types not a map", base: ptr("step_types: [a]\n"), wantCode: 2, wantErr: []string{"step_types (line 1) must be a map"}},
		{name: "bad YAML", base: ptr("a: [\n"), wantCode: 2, wantErr: []string{"not valid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "conf", "base.yaml")
			var before []byte
			if tt.base != nil {
				before = []byte(*tt.base)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, before, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := append([]string{"dagu-config", "--bin", "daguq", "--install", "--base", path}, tt.args...)
			_, errOut, code := runApp(t, nil, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s", code, tt.wantCode, errOut)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q: %s", w, errOut)
				}
			}
			after, _ := os.ReadFile(path)
			if tt.check != nil {
				tt.check(t, before, after)
			}
			if tt.wantCode != 0 {
				return
			}
			if info, err := os.Stat(path); err == nil && tt.base != nil && info.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want the old 0600", info.Mode().Perm())
			}
			// Installing again changes nothing and says so.
			_, errOut, code = runApp(t, nil, "dagu-config", "--bin", "daguq", "--install", "--base", path)
			again, _ := os.ReadFile(path)
			if code != 0 || !strings.Contains(errOut, "already up to date") || !bytes.Equal(again, after) {
				t.Errorf("second install: exit %d, file changed %v: %s", code, !bytes.Equal(again, after), errOut)
			}
			// Every step type of the result is well formed.
			st := baseData(t, again)["step_types"].(map[string]any)
			for _, kind := range executor.Kinds() {
				if !equalYAML(st[kind], ours[kind]) {
					t.Errorf("%s in the base config differs from dagu-config's", kind)
				}
			}
		})
	}
}

func equalYAML(a, b any) bool {
	x, _ := yaml.Marshal(a)
	y, _ := yaml.Marshal(b)
	return bytes.Equal(x, y)
}

func ptr(s string) *string { return &s }

func TestDaguConfigInstallDefaultPath(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"DAGU_BASE_CONFIG", map[string]string{"DAGU_BASE_CONFIG": filepath.Join(home, "b.yaml"), "DAGU_HOME": filepath.Join(home, "dh")}, filepath.Join(home, "b.yaml")},
		{"DAGU_HOME", map[string]string{"DAGU_HOME": filepath.Join(home, "dh"), "HOME": home}, filepath.Join(home, "dh", "base.yaml")},
		{"XDG_CONFIG_HOME", map[string]string{"XDG_CONFIG_HOME": filepath.Join(home, "xdg"), "HOME": home}, filepath.Join(home, "xdg", "dagu", "base.yaml")},
		{"HOME", map[string]string{"HOME": home}, filepath.Join(home, ".config", "dagu", "base.yaml")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, source, err := baseConfigPath("", func(k string) string { return tt.env[k] })
			if err != nil || path != tt.want {
				t.Errorf("got %q (from %s), %v; want %q", path, source, err, tt.want)
			}
		})
	}
	// Only with --install.
	for _, flag := range []string{"--base=x.yaml", "--force"} {
		_, errOut, code := runApp(t, nil, "dagu-config", flag)
		if code != 2 || !strings.Contains(errOut, "only goes with --install") {
			t.Errorf("%s without --install: exit %d: %s", flag, code, errOut)
		}
	}
}
