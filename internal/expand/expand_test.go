package expand

import (
	"regexp"
	"strings"
	"testing"
)

func vars(m map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

var testVars = vars(map[string]string{
	"NAME":  `a"b\c` + "\nd",
	"EMPTY": "",
	"N":     "10",
	"_x1":   "under",
	"DOLL":  "$NAME ${NAME} \\$",
	"CLAIM": `{"token":"17.ab","lease":"30s","count":2,"big":12345678901234567890,"ok":true,"none":null,` +
		`"messages":[{"id":1,"body":{"s":"x<y>&z"}},{"id":2}],"a.b":1}`,
	"TEXT": "not json",
	"ARR":  `[10,"two",[3]]`,
})

func TestString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"no dollar", `plain "text" \ with backslash`, `plain "text" \ with backslash`},
		{"braced", "hi ${NAME}!", "hi a\"b\\c\nd!"},
		{"bare", "hi $NAME!", "hi a\"b\\c\nd!"},
		{"bare name ends at a non-name byte", "$N.5 $N-x $Nx", "10.5 10-x $Nx"},
		{"underscore name", "$_x1 ${_x1}", "under under"},
		{"empty value is set", "[$EMPTY][${EMPTY}]", "[][]"},
		{"undefined stays", "$UNDEF ${UNDEF} ${UNDEF.a}", "$UNDEF ${UNDEF} ${UNDEF.a}"},
		{"values are not expanded again", "${DOLL}", "$NAME ${NAME} \\$"},
		{"escaped", `\$NAME \${NAME}`, "$NAME ${NAME}"},
		{"two backslashes escape nothing", `\\$N`, `\\10`},
		{"three backslashes", `\\\$N`, `\\$N`},
		{"backslash elsewhere kept", `a\b \n $N\`, `a\b \n 10\`},
		{"lone dollars", "$ $$ $5 $1x a$ ${ ${} ${1} $-", "$ $$ $5 $1x a$ ${ ${} ${1} $-"},
		{"double dollar before a name", "$$N", "$10"},
		{"shell forms stay", "${N:0:1} ${N:-x} ${#N} ${N/1/2}", "${N:0:1} ${N:-x} ${#N} ${N/1/2}"},
		{"unclosed", "${NAME", "${NAME"},
		{"reference inside a malformed one", "${foo $N}", "${foo 10}"},
		{"json string field", "${CLAIM.token}", "17.ab"},
		{"json in text", "lease=${CLAIM.lease};", "lease=30s;"},
		{"json number kept exactly", "${CLAIM.count} ${CLAIM.big}", "2 12345678901234567890"},
		{"json bool and null", "${CLAIM.ok} ${CLAIM.none}", "true null"},
		{"json object compact, no HTML escapes", "${CLAIM.messages[0].body}", `{"s":"x<y>&z"}`},
		{"json array", "${CLAIM.messages}", `[{"body":{"s":"x<y>&z"},"id":1},{"id":2}]`},
		{"index forms", "${CLAIM.messages[1].id} ${CLAIM.messages.1.id} ${CLAIM.messages.[0].id}", "2 2 1"},
		{"top-level array", "${ARR[1]} ${ARR.2[0]} ${ARR[0]}", "two 3 10"},
		{"missing field stays", "${CLAIM.nope} ${CLAIM.messages[5]} ${CLAIM.token.x} ${CLAIM.messages.x}",
			"${CLAIM.nope} ${CLAIM.messages[5]} ${CLAIM.token.x} ${CLAIM.messages.x}"},
		{"index into an object stays", "${CLAIM[0]}", "${CLAIM[0]}"},
		{"a field of no JSON object stays", "${TEXT.a} ${N.a}", "${TEXT.a} ${N.a}"},
		{"bad paths are not references", "${CLAIM.} ${CLAIM..a} ${CLAIM.a-b} ${CLAIM[x]} ${CLAIM.a b}",
			"${CLAIM.} ${CLAIM..a} ${CLAIM.a-b} ${CLAIM[x]} ${CLAIM.a b}"},
		{"bare name takes no path", "$ARR.x", `[10,"two",[3]].x`},
		{"escaped path", `\${CLAIM.token}`, "${CLAIM.token}"},
		{"unicode around", "Zürich ${N} €", "Zürich 10 €"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := String(tc.in, testVars); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	in := map[string]any{
		"text":   "hi ${N}",
		"n":      3,
		"nested": map[string]any{"list": []any{"$N", 1.5, true, nil, map[string]any{"${N}": "${N}"}}},
	}
	got := Value(in, testVars).(map[string]any)
	if got["text"] != "hi 10" || got["n"] != 3 {
		t.Errorf("top level: %v", got)
	}
	list := got["nested"].(map[string]any)["list"].([]any)
	if list[0] != "10" || list[1] != 1.5 || list[2] != true || list[3] != nil {
		t.Errorf("list: %v", list)
	}
	if m := list[4].(map[string]any); m["${N}"] != "10" {
		t.Errorf("map in list: %v (keys are kept, values expanded)", m)
	}
	if in["text"] != "hi ${N}" || in["nested"].(map[string]any)["list"].([]any)[0] != "$N" {
		t.Errorf("the input was changed: %v", in)
	}
}

// simple is the meaning of String for text without backslashes and with
// every variable set to a value that is not JSON: ${NAME} and $NAME are
// replaced, everything else stays.
var simple = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "$", "${", "${A}", "$A", "${A.b}", `\$A`, `\\$A`, "${A:-x}", "$$A", "${A.b[0]}",
		"${CLAIM.messages[0].body}", "x${foo $B}y", "$A.b", "${A}}", "${.a}", "${A.[1]}", "Zürich $Ä ${A}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		String(s, testVars) // no panic, whatever the JSON paths
		none := String(s, vars(nil))
		if !strings.Contains(s, `\`) {
			if none != s {
				t.Fatalf("nothing set: String(%q) = %q, want it unchanged", s, none)
			}
			angle := func(name string) (string, bool) { return "<" + name + ">", true }
			want := simple.ReplaceAllStringFunc(s, func(m string) string {
				sub := simple.FindStringSubmatch(m)
				return "<" + sub[1] + sub[2] + ">"
			})
			if got := String(s, angle); got != want {
				t.Fatalf("String(%q) = %q, want %q", s, got, want)
			}
		}
	})
}
