package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"text/template"
	"time"

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
	if err := yaml.Unmarshal([]byte(out.Stdout), &cfg); err != nil {
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

// input is with: as the template sees it: the schema defaults applied.
func (st stepType) input(with map[string]any) map[string]any {
	input := map[string]any{}
	for k, v := range st.defaults {
		input[k] = v
	}
	for k, v := range with {
		input[k] = v
	}
	return input
}

// render builds the argv Dagu builds from a step type's template: at load
// time, schema defaults applied to with:, every string arg rendered as a Go
// template over {"input": with} with missingkey=error and Dagu's functions
// json (json.Marshal) and replace (slim-sprig's); at run time, Dagu's
// evaluation of each arg (daguEval). A real Dagu does the same in
// TestExecArgsThroughDagu.
func (st stepType) render(tb testing.TB, with map[string]any) []string {
	tb.Helper()
	funcs := template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"replace": func(old, new, src string) string { return strings.ReplaceAll(src, old, new) },
	}
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
		if err := tpl.Execute(&b, map[string]any{"input": st.input(with)}); err != nil {
			tb.Fatalf("template arg %q: %v", s, err)
		}
		argv = append(argv, daguEval(tb, b.String()))
	}
	return argv
}

// daguEval is what Dagu does to an exec arg when the step runs, for an arg
// whose every $ is escaped: an odd number of backslashes before a $ loses
// one and the $ stays. Any other $ Dagu would expand (from its variables and
// its own environment): the test fails.
func daguEval(tb testing.TB, arg string) string {
	tb.Helper()
	var b strings.Builder
	for i := 0; i < len(arg); i++ {
		j := i
		for j < len(arg) && arg[j] == '\\' {
			j++
		}
		switch {
		case j < len(arg) && arg[j] == '$' && (j-i)%2 == 1:
			b.WriteString(arg[i:j-1] + "$")
			i = j
		case j < len(arg) && arg[j] == '$':
			tb.Fatalf("Dagu would expand the $ at byte %d of the arg %q", j, arg)
		case j > i:
			b.WriteString(arg[i:j])
			i = j - 1
		default:
			b.WriteByte(arg[i])
		}
	}
	return b.String()
}

// The variables the args cases use: PARAM (a Dagu param) and CLAIM (the
// JSON output of an earlier step), as environment variables of daguq.
const (
	argsParam = "it's \"q\" \\ back\\\\slash\nline 2 $HOME ${Y} `id` $(id)"
	argsClaim = `{"lease":"45m","q":"args.output","note":"x\"y\nz $HOME"}`
)

// argsCase is a step whose with: values must reach daguq intact: the
// handler's shell text as written, data values with their references
// expanded by daguq.
type argsCase struct {
	id    string
	kind  string         // "queue" (default) or "enqueue"
	with  map[string]any // queue args.<id> is added unless it sets its own
	files map[string]string
	// nonEmpty: files that must hold one line of text, whatever it is.
	nonEmpty []string
	// check looks at the store afterwards.
	check func(tb testing.TB, st *queuestore.Store)
}

// script is a handler script file: it reads daguq's variables itself.
const batchIDScript = `#!/bin/sh
cat >/dev/null
printf '%s %s %s\n' "$DAGUQ_QUEUE" "$DAGUQ_BATCH_SIZE" "$DAGUQ_ATTEMPT" >script.out
printf '%s\n' "$DAGUQ_BATCH_ID" >script.id
`

// argvScript writes its first argument to the file its second names.
const argvScript = `#!/bin/sh
cat >/dev/null
printf '%s' "$1" >"${2:-argv.out}"
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
		// run as a list has no shell: daguq expands its words.
		{id: "argvparam",
			with:  map[string]any{"run": []any{"./argv.sh", "${PARAM}", "argvparam.out"}},
			files: map[string]string{"argvparam.out": argsParam}},
		// run as text: its $ is the shell's, with daguq's and Dagu's variables.
		{id: "dollar",
			with:  map[string]any{"run": "printf '[%s]\\n' \"$DAGUQ_QUEUE\" >dollar.out"},
			files: map[string]string{"dollar.out": "[args.dollar]\n"}},
		{id: "batchid",
			with:     map[string]any{"run": `sh -c 'echo "$DAGUQ_BATCH_ID" >> batchid.out'`},
			nonEmpty: []string{"batchid.out"}},
		{id: "shellparam",
			with:  map[string]any{"run": `printf '%s' "$PARAM" >shellparam.out`},
			files: map[string]string{"shellparam.out": argsParam}},
		{id: "literal",
			with:  map[string]any{"run": `printf '%s\n' '$HOME ${X} \$Y $$ $' >literal.out`},
			files: map[string]string{"literal.out": "$HOME ${X} \\$Y $$ $\n"}},
		{id: "script",
			with:  map[string]any{"run": "./batch-id.sh", "shell": "sh"},
			files: map[string]string{"script.out": "args.script 1 1\n"}},
		// Data values: ${PARAM} inside a longer string, escapes, literal $.
		{id: "enqueue", kind: "enqueue",
			with: map[string]any{"message": map[string]any{
				"p": "hi ${PARAM}!",
				"s": "it's \"q\"\n\\$HOME `x` \\ {queue} $5 $ ${UNSET_X} $UNSET_X",
			}},
			check: func(tb testing.TB, st *queuestore.Store) {
				checkBody(tb, st, "args.enqueue", map[string]any{
					"p": "hi " + argsParam + "!",
					"s": "it's \"q\"\n$HOME `x` \\ {queue} $5 $ ${UNSET_X} $UNSET_X",
				})
			}},
		// Fields of an earlier step's JSON output: a queue name, a duration.
		{id: "fromoutput", kind: "enqueue",
			with: map[string]any{"queue": "${CLAIM.q}", "delay": "${CLAIM.lease}",
				"message": map[string]any{"note": "${CLAIM.note}"}},
			check: func(tb testing.TB, st *queuestore.Store) {
				checkBody(tb, st, "args.output", map[string]any{"note": "x\"y\nz $HOME"})
				checkVisible(tb, st, "args.output", queuestore.StateDelayed, 45*time.Minute)
			}},
		{id: "leased",
			with: map[string]any{"action": "claim", "lease": "${CLAIM.lease}"},
			check: func(tb testing.TB, st *queuestore.Store) {
				checkVisible(tb, st, "args.leased", queuestore.StateInFlight, 45*time.Minute)
			}},
	}
}

// checkBody: queue holds one message, body.
func checkBody(tb testing.TB, st *queuestore.Store, queue string, body map[string]any) {
	tb.Helper()
	msgs, err := st.Peek(tb.Context(), queue, queuestore.PeekOptions{State: queuestore.StateDelayed})
	if err == nil && len(msgs) == 0 {
		msgs, err = st.Peek(tb.Context(), queue, queuestore.PeekOptions{})
	}
	var got map[string]any
	if err != nil || len(msgs) != 1 || json.Unmarshal(msgs[0].Body, &got) != nil || !reflect.DeepEqual(got, body) {
		want, _ := json.Marshal(body)
		tb.Errorf("%s holds %+v (%v), want one message %s", queue, msgs, err, want)
	}
}

// checkVisible: queue's one message in state is visible (ready, or its lease
// ends) about d from now.
func checkVisible(tb testing.TB, st *queuestore.Store, queue string, state queuestore.State, d time.Duration) {
	tb.Helper()
	msgs, err := st.Peek(tb.Context(), queue, queuestore.PeekOptions{State: state})
	if err != nil || len(msgs) != 1 {
		tb.Errorf("%s: %+v (%v), want one message %v", queue, msgs, err, state)
		return
	}
	if left := time.Until(msgs[0].VisibleAt); left < d-2*time.Minute || left > d {
		tb.Errorf("%s: visible in %v, want about %v", queue, left.Round(time.Second), d)
	}
}

// withOf is a case's with: map with its queue.
func (c argsCase) withOf() map[string]any {
	with := map[string]any{"queue": "args." + c.id}
	for k, v := range c.with {
		with[k] = v
	}
	return with
}

func (c argsCase) stepType() string {
	if c.kind == "" {
		return "queue"
	}
	return c.kind
}

// prepareArgsCases writes the handler scripts and claim.json into dir and
// puts one message on each queue case's queue in db.
func prepareArgsCases(tb testing.TB, dir, db string) {
	tb.Helper()
	for name, text := range map[string]string{"batch-id.sh": batchIDScript, "argv.sh": argvScript, "claim.json": argsClaim} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	st := openStore(tb, db)
	for _, c := range argsCases() {
		if c.stepType() == "queue" {
			enqueue(tb, st, queuestore.NewMessage{Queue: "args." + c.id, Body: []byte(`{"case":"` + c.id + `","s":"it's \"q\" $HOME"}`)})
		}
	}
}

// checkArgsCases compares the files the handlers wrote in dir and the store.
func checkArgsCases(tb testing.TB, dir, db string) {
	tb.Helper()
	st := openStore(tb, db)
	for _, c := range argsCases() {
		for name, content := range c.files {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || string(got) != content {
				tb.Errorf("%s: %s holds %q (%v), want %q", c.id, name, got, err, content)
			}
		}
		for _, name := range c.nonEmpty {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if line := strings.TrimSuffix(string(got), "\n"); err != nil || line == "" || strings.Contains(line, "\n") {
				tb.Errorf("%s: %s holds %q (%v), want one line of text", c.id, name, got, err)
			}
		}
		if c.check != nil {
			c.check(tb, st)
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

// badQueue is a queue name daguq refuses, naming it as it got it: quotes, a
// newline, a literal $, an escaped \$HOME and a param.
const badQueue = "it's \"q\" $ \\$HOME ${PARAM}\nz x"

var badQueueSeen = fmt.Sprintf("%q", "it's \"q\" $ $HOME "+argsParam+"\nz x")

// dollarCorpus is text that must pass through Dagu's exec args unchanged
// inside the --with JSON: Dagu's special forms, JSON's escapes, and random
// strings of the bytes that matter.
func dollarCorpus() []string {
	corpus := []string{
		"", "$", "$$", "$$HOME", "\\", "\\$", "\\\\$", "\\\\\\$HOME", "$HOME", "${HOME}", "${HOME:0:3}", "${X}",
		"$1", "`id`", "$(id)", `"${HOME}"`, `'$HOME'`, `"$HOME"`, "ends with $", "ends with \\", "\"${CLAIM.token}\"",
		"${CLAIM.token}", "a\nb\r\nc\td", "Zürich € <&> \u2028", "{{ .input }}", "__DAGU_DOLLAR_ESC__1__",
		`{"a":"${X}","b":"\$"}`, "it's \"q\"",
	}
	r := rand.New(rand.NewPCG(4, 2))
	alphabet := []string{"$", "$", "\\", "\\", "{", "}", "\"", "'", "`", "\n", "\t", "a", "Z", "_", ".", ":", "-", " ", "(", ")", "1", "ü", "HOME"}
	for range 40 {
		var b strings.Builder
		for range 1 + r.IntN(24) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		corpus = append(corpus, b.String())
	}
	return corpus
}

// dumpWith is a with: map of every corpus string, flat and nested.
func dumpWith() map[string]any {
	with := map[string]any{}
	var list []any
	for i, s := range dollarCorpus() {
		with[fmt.Sprintf("s%02d", i)] = s
		list = append(list, s)
	}
	with["nested"] = map[string]any{"list": list, "n": 1, "t": true}
	return with
}

// TestExecArgsArriveIntact runs the step types' templates as Dagu renders
// and evaluates them (no shell between Dagu and daguq): the --with argument
// is the with: map's JSON byte for byte, whatever its strings hold; run:
// values with quotes, spaces, tabs, newlines and $ reach the handler's shell
// exactly; daguq expands ${PARAM} and ${CLAIM.field} in data values
// (PARAM and CLAIM are environment variables here, as in a Dagu step).
func TestExecArgsArriveIntact(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setenv("PARAM", argsParam)
	e.setenv("CLAIM", argsClaim)
	types := stepTypes(t, e)
	for _, kind := range []string{"queue", "enqueue"} {
		with := dumpWith()
		argv := types[kind].render(t, with)
		want, _ := json.Marshal(types[kind].input(with))
		if len(argv) != 4 || argv[3] != string(want) {
			t.Errorf("%s: the --with argument after Dagu is %q, want the JSON %s", kind, argv[3:], want)
		}
	}

	prepareArgsCases(t, e.dir, e.db)
	for _, c := range argsCases() {
		argv := types[c.stepType()].render(t, c.withOf())
		if r := e.run(nil, argv[0], argv[1:]...); r.Code != 0 {
			t.Errorf("%s: %s", c.id, r)
		}
	}
	checkArgsCases(t, e.dir, e.db)

	argv := types["queue"].render(t, map[string]any{"queue": badQueue, "run": "true"})
	r := e.run(nil, argv[0], argv[1:]...)
	if r.Code != 2 || !strings.Contains(r.Stderr, badQueueSeen) {
		t.Errorf("queue %q: want exit 2 naming it %s, got %s", badQueue, badQueueSeen, r)
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

// dumpScript writes the --with argument it gets to with.json.
const dumpScript = `#!/bin/sh
printf '%s' "$3" >"$PWD/with.json"
`

// TestExecArgsThroughDagu runs the same cases through a real Dagu ("dagu
// start", no server), PARAM as a DAG param given on the command line and
// CLAIM as the output: of a first step. A step type with daguq's template
// and a command that dumps its argument shows the --with JSON arrives byte
// for byte.
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
	types := stepTypes(t, e)
	db := filepath.Join(home, "daguq", "daguq.db")
	prepareArgsCases(t, e.dir, db)
	params, _ := json.Marshal(map[string]string{"PARAM": argsParam})

	// The --with argument, byte for byte.
	dump := filepath.Join(e.dir, "dump.sh")
	if err := os.WriteFile(dump, []byte(dumpScript), 0o755); err != nil {
		t.Fatal(err)
	}
	with := dumpWith()
	writeDAG(t, filepath.Join(home, "dags", "dump.yaml"), map[string]any{
		"working_dir": e.dir,
		"step_types": map[string]any{"withdump": map[string]any{
			"type": "command", "input_schema": map[string]any{"type": "object"},
			"template": map[string]any{"exec": map[string]any{"command": dump, "args": types["queue"].args}},
		}},
		"steps": []any{map[string]any{"id": "dump", "type": "withdump", "with": with}},
	})
	if r := e.run(nil, dagu, "start", "dump"); r.Code != 0 {
		t.Fatalf("dagu start dump: %s", r)
	}
	got, err := os.ReadFile(filepath.Join(e.dir, "with.json"))
	if want, _ := json.Marshal(with); err != nil || string(got) != string(want) {
		var decoded map[string]any
		json.Unmarshal(got, &decoded)
		for k, v := range with {
			if !reflect.DeepEqual(decoded[k], v) {
				t.Errorf("with: %s = %q arrived as %q", k, v, decoded[k])
			}
		}
		t.Fatalf("the --with argument arrived as %q (%v), want %s", got, err, want)
	}

	steps := []any{map[string]any{"id": "first", "exec": map[string]any{"command": "cat", "args": []any{"claim.json"}}, "output": "CLAIM"}}
	for _, c := range argsCases() {
		steps = append(steps, map[string]any{"id": c.id, "type": c.stepType(), "with": c.withOf()})
	}
	writeDAG(t, filepath.Join(home, "dags", "args.yaml"), map[string]any{"working_dir": e.dir,
		"params": []any{map[string]any{"PARAM": ""}}, "steps": steps})
	if r := e.run(nil, dagu, "start", "-p", string(params), "args"); r.Code != 0 {
		t.Fatalf("dagu start args: %s", r)
	}
	checkArgsCases(t, e.dir, db)

	writeDAG(t, filepath.Join(home, "dags", "badqueue.yaml"), map[string]any{
		"params": []any{map[string]any{"PARAM": ""}},
		"steps":  []any{map[string]any{"id": "bad", "type": "queue", "with": map[string]any{"queue": badQueue, "run": "true"}}}})
	r := e.run(nil, dagu, "start", "-p", string(params), "badqueue")
	if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "exit status 2") || !strings.Contains(r.Stdout+r.Stderr, badQueueSeen) {
		t.Errorf("queue %q through Dagu: want exit status 2 naming it %s, got %s", badQueue, badQueueSeen, r)
	}
}

// writeDAG writes a DAG file from Go data, so every string is exact: as
// JSON, which is YAML too (a YAML writer's block scalars can start with a
// tab, which Dagu's YAML reader refuses).
func writeDAG(tb testing.TB, path string, dag map[string]any) {
	tb.Helper()
	b, err := json.MarshalIndent(dag, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}
