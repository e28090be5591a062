package executor

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the generated tables in docs/executors.md")

// configStructs maps each kind to its config struct.
var configStructs = map[string]reflect.Type{
	KindQueue:   reflect.TypeOf(queueConfig{}),
	KindEnqueue: reflect.TypeOf(enqueueConfig{}),
	KindPool:    reflect.TypeOf(poolConfig{}),
}

func mapstructureTags(t reflect.Type) []string {
	var tags []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("mapstructure"); tag != "" {
			tags = append(tags, tag)
		}
	}
	sort.Strings(tags)
	return tags
}

func TestFieldsMatchConfigStructs(t *testing.T) {
	for kind, typ := range configStructs {
		t.Run(kind, func(t *testing.T) {
			names := fieldNames(kind)
			sort.Strings(names)
			if tags := mapstructureTags(typ); !reflect.DeepEqual(tags, names) {
				t.Fatalf("mapstructure tags and Fields differ:\ntags:   %v\nfields: %v", tags, names)
			}
			seen := map[string]bool{}
			for _, f := range Fields(kind) {
				if seen[f.Name] {
					t.Errorf("field %s listed twice", f.Name)
				}
				seen[f.Name] = true
				switch f.Type {
				case TypeString, TypeInteger, TypeNumber, TypeBoolean, TypeDuration, TypeJSON, TypeStringOrList, TypeList:
				default:
					t.Errorf("field %s: unknown type %q", f.Name, f.Type)
				}
				if f.Description == "" {
					t.Errorf("field %s has no description", f.Name)
				}
			}
		})
	}
}

// TestFieldDefaultsMatchDefaultConfig decodes each field's documented
// default and compares it with defaultConfig: the docs cannot drift.
func TestFieldDefaultsMatchDefaultConfig(t *testing.T) {
	cases := map[string]struct {
		defaults any
		decode   func(map[string]any) (any, error)
	}{
		KindQueue: {defaultQueueConfig(), func(m map[string]any) (any, error) {
			c := defaultQueueConfig()
			return c, decodeConfig(KindQueue, m, &c)
		}},
		KindEnqueue: {defaultEnqueueConfig(), func(m map[string]any) (any, error) {
			c := defaultEnqueueConfig()
			return c, decodeConfig(KindEnqueue, m, &c)
		}},
		KindPool: {defaultPoolConfig(), func(m map[string]any) (any, error) {
			c := defaultPoolConfig()
			return c, decodeConfig(KindPool, m, &c)
		}},
	}
	for kind, tc := range cases {
		defaults := reflect.ValueOf(tc.defaults)
		for _, f := range Fields(kind) {
			got, err := tc.decode(map[string]any{f.Name: f.Default})
			if err != nil {
				t.Errorf("%s.%s: default %v does not decode: %v", kind, f.Name, f.Default, err)
				continue
			}
			field := fieldOfTag(reflect.ValueOf(got), f.Name)
			want := fieldOfTag(defaults, f.Name)
			if f.Default == nil {
				if !want.IsZero() {
					t.Errorf("%s.%s: Fields has no default, defaultConfig has %v", kind, f.Name, want.Interface())
				}
				continue
			}
			if !reflect.DeepEqual(field.Interface(), want.Interface()) {
				t.Errorf("%s.%s: Fields default %v decodes to %v, defaultConfig has %v", kind, f.Name, f.Default, field.Interface(), want.Interface())
			}
		}
	}
}

func fieldOfTag(v reflect.Value, tag string) reflect.Value {
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("mapstructure") == tag {
			return v.Field(i)
		}
	}
	panic("no field " + tag)
}

func TestInputSchema(t *testing.T) {
	for _, kind := range Kinds() {
		s := InputSchema(kind)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		var back map[string]any
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back["type"] != "object" || back["additionalProperties"] != false {
			t.Errorf("%s: want a closed object schema, got %s", kind, b)
		}
		props := back["properties"].(map[string]any)
		if len(props) != len(Fields(kind)) {
			t.Errorf("%s: %d properties for %d fields", kind, len(props), len(Fields(kind)))
		}
		want := map[string]string{KindPool: "pool"}[kind]
		if want == "" {
			want = "queue"
		}
		if req := back["required"].([]any); len(req) != 1 || req[0] != want {
			t.Errorf("%s: required = %v, want [%s]", kind, req, want)
		}
	}
	if InputSchema("nope") != nil {
		t.Error("unknown kind has a schema")
	}
}

// TestDurationPattern checks the schema's duration pattern against the
// decoder: what the decoder accepts as text, the schema accepts.
func TestDurationPattern(t *testing.T) {
	re := regexp.MustCompile(durationPattern)
	for _, s := range []string{"30s", "1h30m", "1.5s", "250ms", "10", "0.5", "${LEASE}", "$T", "`date`"} {
		if !re.MatchString(s) {
			t.Errorf("pattern rejects %q", s)
		}
	}
	for _, s := range []string{"", "abc", "10 s", "1d", "s"} {
		if re.MatchString(s) {
			t.Errorf("pattern accepts %q", s)
		}
	}
}

const docsPath = "../docs/executors.md"

// TestDocs checks that docs/executors.md holds the current reference table
// of each kind and mentions every key. Regenerate with
// `go test ./executor -run TestDocs -update`.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	fresh := doc
	for _, kind := range Kinds() {
		begin, end := "<!-- BEGIN GENERATED "+kind+" -->\n", "<!-- END GENERATED "+kind+" -->"
		i, j := strings.Index(fresh, begin), strings.Index(fresh, end)
		if i < 0 || j < i {
			t.Fatalf("%s: markers %q and %q not found", docsPath, strings.TrimSpace(begin), end)
		}
		fresh = fresh[:i+len(begin)] + MarkdownTable(kind) + fresh[j:]
		for _, f := range Fields(kind) {
			if !strings.Contains(fresh, "| `"+f.Name+"` |") {
				t.Errorf("%s: key %s.%s is not documented", docsPath, kind, f.Name)
			}
			// The row shows the table's default, bounds and length.
			row := docsRow(fresh[i:], f.Name)
			if d := f.DefaultText(); d != "" && !f.Required && !strings.Contains(row, "`"+d+"`") {
				t.Errorf("%s: %s.%s row lacks its default %q: %s", docsPath, kind, f.Name, d, row)
			}
			if (f.Min != nil || f.Max != nil) && !strings.Contains(row, rangeText(f)) {
				t.Errorf("%s: %s.%s row lacks its bounds %q: %s", docsPath, kind, f.Name, rangeText(f), row)
			}
			if f.MaxLength > 0 && !strings.Contains(row, lengthText(f)) {
				t.Errorf("%s: %s.%s row lacks its length %q: %s", docsPath, kind, f.Name, lengthText(f), row)
			}
		}
	}
	if fresh == doc {
		return
	}
	if *update {
		if err := os.WriteFile(docsPath, []byte(fresh), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", filepath.Clean(docsPath))
		return
	}
	t.Fatalf("%s is stale: run `go test ./executor -run TestDocs -update`", docsPath)
}

// docsRow is the first table row of key in doc.
func docsRow(doc, key string) string {
	i := strings.Index(doc, "| `"+key+"` |")
	if i < 0 {
		return ""
	}
	row, _, _ := strings.Cut(doc[i:], "\n")
	return row
}

// TestSchemaDefaultsValidate: Dagu fills every schema default into `with:`
// before our parser sees it; a config of only defaults (and a source or
// handler) must stay valid for every action.
func TestSchemaDefaultsValidate(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		extra map[string]any
	}{
		{KindQueue, map[string]any{"run": "./h.sh"}},
		{KindQueue, map[string]any{"action": "claim"}},
		{KindQueue, map[string]any{"action": "ack", "token": "1.ab"}},
		{KindQueue, map[string]any{"action": "nack", "token": "1.ab", "error": "x"}},
		{KindEnqueue, map[string]any{"message": 1}},
		{KindEnqueue, map[string]any{"file": "-", "envelope": true}},
		{KindEnqueue, map[string]any{"messages": []any{1}, "not_before": "@daily"}},
	} {
		cfg := map[string]any{"queue": "q"}
		for _, f := range Fields(tc.kind) {
			if f.Default != nil {
				cfg[f.Name] = f.Default
			}
		}
		for k, v := range tc.extra {
			cfg[k] = v
		}
		if err := Validate(tc.kind, cfg); err != nil {
			t.Errorf("%s with schema defaults %v: %v", tc.kind, tc.extra, err)
		}
	}
}

// TestBoundsNeedNoMapping: a bounded field is checked from the table alone,
// found by its mapstructure tag; no list of keys to keep in step.
func TestBoundsNeedNoMapping(t *testing.T) {
	type probe struct {
		Count   int            `mapstructure:"count"`
		Wait    time.Duration  `mapstructure:"wait"`
		Name    string         `mapstructure:"name"`
		Level   *int64         `mapstructure:"level"`
		Unset   *int64         `mapstructure:"unset"`
		Free    int            `mapstructure:"free"`
		Handler any            `mapstructure:"handler"`
		Extra   map[string]int `mapstructure:"extra"`
	}
	fields := []Field{
		{Name: "count", Type: TypeInteger, Min: bound(1), Max: bound(10)},
		{Name: "wait", Type: TypeDuration, Max: bound(60)},
		{Name: "name", Type: TypeString, MaxLength: 4},
		{Name: "level", Type: TypeInteger, Min: bound(0)},
		{Name: "unset", Type: TypeInteger, Min: bound(0)},
		{Name: "free", Type: TypeInteger},
		{Name: "handler", Type: TypeStringOrList, MaxLength: 3},
		{Name: "extra", Type: TypeJSON},
	}
	level := int64(-2)
	bad := probe{Count: 11, Wait: 2 * time.Minute, Name: "toolong", Level: &level, Free: -5, Handler: "abcd"}
	var got []string
	for _, err := range checkFields(fields, &bad) {
		got = append(got, err.Error())
	}
	want := []string{
		"count must be 1..10, got 11",
		"wait must be at most 1m0s, got 2m0s",
		"name must be at most 4 bytes, got 7 bytes",
		"level must be at least 0, got -2",
		"handler must be at most 3 bytes, got 4 bytes",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("checkFields:\n got %q\nwant %q", got, want)
	}
	if errs := checkFields(fields, probe{Count: 1, Name: "ok"}); len(errs) != 0 {
		t.Errorf("in-bounds probe refused: %v", errs)
	}
}

// TestEveryBoundIsChecked: for every key with a bound or a length, a value
// just past it is refused by Validate with an error naming the key.
func TestEveryBoundIsChecked(t *testing.T) {
	base := map[string]map[string]any{
		KindQueue:   {"queue": "q", "run": "./h.sh"},
		KindEnqueue: {"queue": "q", "message": 1},
	}
	checked := 0
	for _, kind := range Kinds() {
		for _, f := range Fields(kind) {
			var past []any
			switch f.Type {
			case TypeInteger:
				if f.Min != nil {
					past = append(past, int64(*f.Min)-1)
				}
				if f.Max != nil {
					past = append(past, int64(*f.Max)+1)
				}
			case TypeDuration:
				if f.Min != nil {
					past = append(past, time.Duration((*f.Min)*float64(time.Second)-1).String())
				}
				if f.Max != nil {
					past = append(past, time.Duration((*f.Max)*float64(time.Second)+1).String())
				}
			case TypeString:
				if f.MaxLength > 0 {
					past = append(past, strings.Repeat("a", f.MaxLength+1))
				}
			}
			for _, v := range past {
				config := map[string]any{f.Name: v}
				for k, bv := range base[kind] {
					if k != f.Name {
						config[k] = bv
					}
				}
				err := Validate(kind, config)
				if err == nil || !strings.Contains(err.Error(), f.Name+" must be") {
					t.Errorf("%s.%s = %v: error %v, want it refused by name", kind, f.Name, v, err)
				}
				checked++
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d bounds checked: the table lost its bounds?", checked)
	}
}

// TestSchemaCarriesBoundsAndLengths: the input_schema has every bound and
// length of the table, so Dagu refuses at load what the parser refuses.
func TestSchemaCarriesBoundsAndLengths(t *testing.T) {
	for _, kind := range Kinds() {
		props := InputSchema(kind)["properties"].(map[string]any)
		for _, f := range Fields(kind) {
			p := props[f.Name].(map[string]any)
			if f.MaxLength > 0 && p["maxLength"] != f.MaxLength {
				t.Errorf("%s.%s: maxLength %v, want %d", kind, f.Name, p["maxLength"], f.MaxLength)
			}
			if f.Type == TypeInteger {
				if f.Min != nil && p["minimum"] != jsonNumber(*f.Min) {
					t.Errorf("%s.%s: minimum %v, want %v", kind, f.Name, p["minimum"], *f.Min)
				}
				if f.Max != nil && p["maximum"] != jsonNumber(*f.Max) {
					t.Errorf("%s.%s: maximum %v, want %v", kind, f.Name, p["maximum"], *f.Max)
				}
			}
		}
	}
	group := InputSchema(KindEnqueue)["properties"].(map[string]any)["group"].(map[string]any)
	dedupe := InputSchema(KindEnqueue)["properties"].(map[string]any)["dedupe_key"].(map[string]any)
	if group["maxLength"] != 1024 || dedupe["maxLength"] != 1000 {
		t.Errorf("group maxLength %v, dedupe_key %v: want 1024 and 1000", group["maxLength"], dedupe["maxLength"])
	}
}
