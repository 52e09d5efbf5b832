package descriptor

import (
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"

	"github.com/gowebpki/jcs"
)

// canonicalJSON writes the tree in RFC 8785 (JCS) form: members sorted by
// the UTF-16 code units of their names, strings escaped as ECMAScript's
// JSON.stringify does, numbers in ECMAScript's shortest round-trip form
// (jcs.NumberToJSON), no insignificant white space.
func canonicalJSON(n *node) ([]byte, error) {
	b, err := appendCanonical(make([]byte, 0, 1024), n)
	if err != nil {
		return nil, err
	}
	// Offer books keep the canonical bytes of every offer: keep no slack.
	return append([]byte(nil), b...), nil
}

func appendCanonical(b []byte, n *node) ([]byte, error) {
	switch n.kind {
	case kindNull:
		return append(b, "null"...), nil
	case kindBool:
		return strconv.AppendBool(b, n.boolean), nil
	case kindNumber:
		f, err := strconv.ParseFloat(n.str, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %v", n.str, err)
		}
		s, err := jcs.NumberToJSON(f)
		if err != nil {
			return nil, fmt.Errorf("number %s: %v", n.str, err)
		}
		return append(b, s...), nil
	case kindString:
		return appendJCSString(b, n.str), nil
	case kindArray:
		b = append(b, '[')
		for i, it := range n.items {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendCanonical(b, it); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	members := n.members
	if !slices.IsSortedFunc(members, compareMembers) {
		members = slices.Clone(members)
		slices.SortFunc(members, compareMembers)
	}
	b = append(b, '{')
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJCSString(b, m.name)
		b = append(b, ':')
		var err error
		if b, err = appendCanonical(b, m.val); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func compareMembers(a, b member) int { return compareUTF16(a.name, b.name) }

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785
// sorts member names. It equals byte order unless a string has characters
// above U+FFFF, which sort below U+E000–U+FFFF in UTF-16.
func compareUTF16(a, b string) int {
	ascii := true
	for i := 0; i < len(a) && ascii; i++ {
		ascii = a[i] < 0x80
	}
	for i := 0; i < len(b) && ascii; i++ {
		ascii = b[i] < 0x80
	}
	if ascii {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

const hexDigits = "0123456789abcdef"

func appendJCSString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
