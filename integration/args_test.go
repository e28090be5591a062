package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"go.yaml.in/yaml/v3"

	"github.com/daguq/daguq/queuestore"
)

// stepType is one step type of "daguq dagu-config": its schema defaults and
// its exec template.
type stepType struct {
	defaults map[string]any
	command  string
	args     []any
}

// stepTypes reads the step types dagu-config prints for this daguq binary.
func stepTypes(tb testing.TB, e *env) map[string]stepType {
	tb.Helper()
	var cfg struct {
		StepTypes map[string]struct {
			InputSchema struct {
				Properties map[string]map[string]any `yaml:"properties"`
			} `yaml:"input_schema"`
			Template struct {
				Exec struct {
					Command string `yaml:"command"`
					Args    []any  `yaml:"args"`
				} `yaml:"exec"`
			} `yaml:"template"`
		} `yaml:"step_types"`
	}
	out := e.daguq(nil, "dagu-config", "--bin", daguqBin)
	if err := yaml.Unmarshal([]byte(out.stdout), &cfg); err != nil {
		tb.Fatalf("dagu-config: %v", err)
	}
	types := map[string]stepType{}
	for name, st := range cfg.StepTypes {
		t := stepType{defaults: map[string]any{}, command: st.Template.Exec.Command, args: st.Template.Exec.Args}
		for key, prop := range st.InputSchema.Properties {
			if d, ok := prop["default"]; ok {
				t.defaults[key] = d
			}
		}
		types[name] = t
	}
	return types
}

// render builds the argv Dagu builds from a step type's template at load
// time: schema defaults applied to with:, then every string arg rendered as
// a Go template over {"input": with} with missingkey=error and Dagu's json
// function (json.Marshal). Dagu's later $-expansion of the args is not done
// here: TestExecArgsThroughDagu covers it.
func (st stepType) render(tb testing.TB, with map[string]any) []string {
	tb.Helper()
	input := map[string]any{}
	for k, v := range st.defaults {
		input[k] = v
	}
	for k, v := range with {
		input[k] = v
	}
	funcs := template.FuncMap{"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}}
	argv := []string{st.command}
	for _, a := range st.args {
		s, ok := a.(string)
		if !ok {
			tb.Fatalf("template arg %v is not a string", a)
		}
		tpl, err := template.New("arg").Option("missingkey=error").Funcs(funcs).Parse(s)
		if err != nil {
			tb.Fatalf("template arg %q: %v", s, err)
		}
		var b bytes.Buffer
		if err := tpl.Execute(&b, map[string]any{"input": input}); err != nil {
			tb.Fatalf("template arg %q: %v", s, err)
		}
		argv = append(argv, b.String())
	}
	return argv
}

// argsCase is a queue step whose with: values must reach daguq intact.
type argsCase struct {
	id    string         // step id and queue name suffix
	with  map[string]any // without queue: the case's own queue is added
	files map[string]string
	// viaDagu: what the files hold after a real Dagu ran the step, when it
	// differs (Dagu expands $ in with: values).
	viaDagu map[string]string
}

// script is a handler script file: it reads daguq's variables itself, so
// its $ never passes through Dagu.
const batchIDScript = `#!/bin/sh
cat >/dev/null
printf '%s %s %s\n' "$DAGUQ_QUEUE" "$DAGUQ_BATCH_SIZE" "$DAGUQ_ATTEMPT" >script.out
printf '%s\n' "$DAGUQ_BATCH_ID" >script.id
`

func argsCases() []argsCase {
	return []argsCase{
		{id: "quotes",
			with: map[string]any{"run": "printf '[%s]\\n' \"two  spaces\" 'single \"double\" inside' >quotes.out\n" +
				"printf 'second line\\n' >>quotes.out # a comment; {batch_size}\n"},
			files: map[string]string{"quotes.out": "[two  spaces]\n[single \"double\" inside]\nsecond line\n"}},
		{id: "placeholders",
			with:  map[string]any{"run": "printf '%s|%s|%s\\n' {queue} {batch_size} {attempt} >ph.out && cp {batch_file} ph.batch"},
			files: map[string]string{"ph.out": "args.placeholders|1|1\n"}},
		{id: "argv",
			with:  map[string]any{"run": []any{"./argv.sh", "a 'quoted' \"word\"\twith\ttabs\nand a newline"}},
			files: map[string]string{"argv.out": "a 'quoted' \"word\"\twith\ttabs\nand a newline"}},
		{id: "dollar",
			with:    map[string]any{"run": "printf '[%s]\\n' \"$DAGUQ_QUEUE\" >dollar.out"},
			files:   map[string]string{"dollar.out": "[args.dollar]\n"},
			viaDagu: map[string]string{"dollar.out": "[]\n"}},
		{id: "script",
			with:  map[string]any{"run": "./batch-id.sh", "shell": "sh"},
			files: map[string]string{"script.out": "args.script 1 1\n"}},
	}
}

// argvScript writes its first argument to argv.out.
const argvScript = `#!/bin/sh
cat >/dev/null
printf '%s' "$1" >argv.out
`

// prepareArgsCases writes the handler scripts into dir and puts one message
// on each case's queue in db.
func prepareArgsCases(tb testing.TB, dir, db string) {
	tb.Helper()
	for name, text := range map[string]string{"batch-id.sh": batchIDScript, "argv.sh": argvScript} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	st := openStore(tb, db)
	for _, c := range argsCases() {
		enqueue(tb, st, queuestore.NewMessage{Queue: "args." + c.id, Body: []byte(`{"case":"` + c.id + `","s":"it's \"q\" $HOME"}`)})
	}
}

// checkArgsCases compares the files the handlers wrote in dir.
func checkArgsCases(tb testing.TB, dir string, viaDagu bool) {
	tb.Helper()
	for _, c := range argsCases() {
		want := c.files
		if viaDagu && c.viaDagu != nil {
			want = c.viaDagu
		}
		for name, content := range want {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(got) != content {
				tb.Errorf("%s: %s holds %q (%v), want %q", c.id, name, got, err, content)
			}
		}
	}
	// The batch file of {batch_file} holds the message as stored.
	batch, _ := os.ReadFile(filepath.Join(dir, "ph.batch"))
	if !bytes.Contains(batch, []byte(`"body":{"case":"placeholders","s":"it's \"q\" $HOME"}`)) {
		tb.Errorf("{batch_file} holds %q", batch)
	}
	if id, _ := os.ReadFile(filepath.Join(dir, "script.id")); len(bytes.TrimSpace(id)) == 0 {
		tb.Errorf("the script file did not see $DAGUQ_BATCH_ID")
	}
}

// TestExecArgsArriveIntact runs the queue step type's template as Dagu
// renders it (no shell between Dagu and daguq): run: values with quotes,
// double spaces, tabs and newlines, argv lists, placeholders and a script
// file reach the handler exactly; a queue name with quotes and a newline
// reaches daguq exactly (and is refused, naming it).
func TestExecArgsArriveIntact(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	types := stepTypes(t, e)
	prepareArgsCases(t, e.dir, e.db)
	for _, c := range argsCases() {
		with := map[string]any{"queue": "args." + c.id}
		for k, v := range c.with {
			with[k] = v
		}
		argv := types["queue"].render(t, with)
		if r := e.run(nil, argv[0], argv[1:]...); r.code != 0 {
			t.Errorf("%s: %s", c.id, r)
		}
	}
	checkArgsCases(t, e.dir, false)

	badQueue := "it's \"q\"\nz x"
	argv := types["queue"].render(t, map[string]any{"queue": badQueue, "run": "true"})
	r := e.run(nil, argv[0], argv[1:]...)
	if r.code != 2 || !strings.Contains(r.stderr, fmt.Sprintf("%q", badQueue)) {
		t.Errorf("queue %q: want exit 2 naming it exactly, got %s", badQueue, r)
	}

	// The enqueue template: a message with quotes and $ is stored as given.
	argv = types["enqueue"].render(t, map[string]any{"queue": "args.enqueue",
		"message": map[string]any{"s": "it's \"q\"\n$HOME `x` \\ {queue}"}})
	e.daguq(nil, argv[1:]...)
	st := openStore(t, e.db)
	msgs, err := st.Peek(t.Context(), "args.enqueue", queuestore.PeekOptions{})
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != `{"s":"it's \"q\"\n$HOME `+"`x`"+` \\ {queue}"}` {
		t.Errorf("enqueued %+v (%v)", msgs, err)
	}
}

// daguBin is a real Dagu from DAGU_BIN, or "" (then a test says how to run
// it and skips its Dagu part).
func daguBin() string {
	if p := os.Getenv("DAGU_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("dagu"); err == nil {
		return p
	}
	return ""
}

const skipNoDagu = "no Dagu: to run the Dagu tests, DAGU_BIN=/path/to/dagu make test-integration"

// TestExecArgsThroughDagu runs the same cases through a real Dagu ("dagu
// start", no server): the same files, except that Dagu expanded the $ of
// the "dollar" case's run: before daguq saw it (the documented rule: a
// handler never needs $ in run:; a script file reads its own environment).
func TestExecArgsThroughDagu(t *testing.T) {
	t.Parallel()
	dagu := daguBin()
	if dagu == "" {
		t.Skip(skipNoDagu)
	}
	e := newEnv(t)
	home := filepath.Join(e.dir, "dagu")
	e.setenv("DAGU_HOME", home)
	e.setenv("DAGUQ_DB", "") // Dagu passes DAGU_HOME, not DAGUQ_DB: $DAGU_HOME/daguq/daguq.db
	if err := os.MkdirAll(filepath.Join(home, "dags"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.daguq(nil, "dagu-config", "--install", "--bin", daguqBin)
	prepareArgsCases(t, e.dir, filepath.Join(home, "daguq", "daguq.db"))

	var steps []map[string]any
	for _, c := range argsCases() {
		with := map[string]any{"queue": "args." + c.id}
		for k, v := range c.with {
			with[k] = v
		}
		steps = append(steps, map[string]any{"id": c.id, "type": "queue", "with": with})
	}
	writeDAG(t, filepath.Join(home, "dags", "args.yaml"), map[string]any{"working_dir": e.dir, "steps": steps})
	if r := e.run(nil, dagu, "start", "args"); r.code != 0 {
		t.Fatalf("dagu start args: %s", r)
	}
	checkArgsCases(t, e.dir, true)

	badQueue := "it's \"q\"\nz x"
	writeDAG(t, filepath.Join(home, "dags", "badqueue.yaml"), map[string]any{"steps": []any{
		map[string]any{"id": "bad", "type": "queue", "with": map[string]any{"queue": badQueue, "run": "true"}}}})
	r := e.run(nil, dagu, "start", "badqueue")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "exit status 2") ||
		!strings.Contains(r.stdout+r.stderr, fmt.Sprintf("%q", badQueue)) {
		t.Errorf("queue %q through Dagu: want exit status 2 naming it exactly, got %s", badQueue, r)
	}
}

// writeDAG writes a DAG file from Go data, so every string is exact.
func writeDAG(tb testing.TB, path string, dag map[string]any) {
	tb.Helper()
	b, err := yaml.Marshal(dag)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}
