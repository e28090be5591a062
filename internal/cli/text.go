package cli

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// printable makes text safe for a terminal table or a one-line message:
// control characters (C0, tab and newline included, DEL and C1), Unicode line
// separators and bidirectional overrides, and bytes that are not UTF-8 are
// written as Go-style escapes (\t \n \r \x1b \x7f \u009b \u202e \xff), so
// the text can neither drive the terminal nor break a row. Other text,
// backslashes included, is left as it is. --json output is never escaped.
func printable(s string) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		if needsEscape(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && needsEscape(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// needsEscape reports a rune that printable escapes.
func needsEscape(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return false
}
