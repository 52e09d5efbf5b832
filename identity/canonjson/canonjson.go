// Package canonjson writes and checks RFC 8785 (JCS) canonical JSON, the
// form every signed payload, content digest and audit-log entry of cinet
// takes (spec/envelope.md): one package, so that there is one rule and one
// fast path in front of the canonicalizer (github.com/gowebpki/jcs).
package canonjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf16"

	"github.com/gowebpki/jcs"
)

// Transform returns the canonical form of the JSON text raw. Text that is
// already canonical in the common shape (IsCanonical) is returned as it
// is; the rest goes through the canonicalizer.
func Transform(raw []byte) ([]byte, error) {
	if IsCanonical(raw) {
		return raw, nil
	}
	return jcs.Transform(raw)
}

// Marshal returns v's JSON (encoding/json, without HTML escaping) in
// canonical form. Structs that declare their fields in RFC 8785 key order
// and hold no floats come out canonical at once; anything else is
// canonicalized.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return Transform(bytes.TrimSuffix(b.Bytes(), []byte{'\n'}))
}

// AppendNumber appends f as RFC 8785 writes a number: ECMAScript's
// shortest round-trip form.
func AppendNumber(b []byte, f float64) ([]byte, error) {
	s, err := jcs.NumberToJSON(f)
	if err != nil {
		return nil, err
	}
	return append(b, s...), nil
}

// CompareKeys orders strings by their UTF-16 code units, as RFC 8785
// sorts member names. It equals byte order unless a string has characters
// above U+FFFF, which sort below U+E000–U+FFFF in UTF-16.
func CompareKeys(a, b string) int {
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

// AppendString appends s as RFC 8785 writes a string: as ECMAScript's
// JSON.stringify does, escaping only '"', '\\' and control characters, with
// the short escapes where there are ones. s is taken as valid UTF-8.
func AppendString(b []byte, s string) []byte {
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
