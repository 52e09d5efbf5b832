package canonjson

import (
	"unicode/utf8"
)

// IsCanonical reports whether b is certainly RFC 8785 canonical JSON,
// checking in one pass without building anything. It answers true only
// for the common shape — object keys of printable ASCII, integers no larger
// than 2^53 in magnitude — and false for everything else, canonical or not,
// which the caller then settles with the full canonicalizer.
func IsCanonical(b []byte) bool {
	p := plainParser{b: b}
	return p.value(0) && p.i == len(p.b)
}

type plainParser struct {
	b []byte
	i int
}

const plainMaxDepth = 64

func (p *plainParser) value(depth int) bool {
	if p.i >= len(p.b) || depth > plainMaxDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		_, ok := p.str()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		return p.integer()
	default:
		return p.literal("true") || p.literal("false") || p.literal("null")
	}
}

func (p *plainParser) literal(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

func (p *plainParser) object(depth int) bool {
	p.i++ // '{'
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	var prev []byte
	for first := true; ; first = false {
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return false
		}
		key, ok := p.str()
		if !ok || !plainKey(key) || (!first && string(key) <= string(prev)) {
			return false
		}
		prev = key
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		if !p.value(depth + 1) {
			return false
		}
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// plainKey: printable ASCII without escapes, so that byte order is the
// UTF-16 order RFC 8785 sorts by.
func plainKey(k []byte) bool {
	for _, c := range k {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return false
		}
	}
	return true
}

func (p *plainParser) array(depth int) bool {
	p.i++ // '['
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return true
	}
	for {
		if !p.value(depth + 1) {
			return false
		}
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}

// str scans a string in RFC 8785 form: valid UTF-8, with only the escapes
// it writes (\" \\ \b \f \n \r \t, and \u00xx in lower case for the other
// control characters). It returns the raw bytes between the quotes.
func (p *plainParser) str() ([]byte, bool) {
	p.i++ // '"'
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return nil, false
			}
			switch p.b[p.i+1] {
			case '"', '\\', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) || string(p.b[p.i+2:p.i+4]) != "00" {
					return nil, false
				}
				hi, lo := p.b[p.i+4], p.b[p.i+5]
				if hi != '0' && hi != '1' || !('0' <= lo && lo <= '9' || 'a' <= lo && lo <= 'f') {
					return nil, false
				}
				switch v := (hi-'0')<<4 | hexVal(lo); v {
				case '\b', '\f', '\n', '\r', '\t':
					return nil, false // written short
				}
				p.i += 6
			default:
				return nil, false
			}
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, n := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && n == 1 {
				return nil, false
			}
			p.i += n
		}
	}
	return nil, false
}

func hexVal(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// integer scans an integer written as RFC 8785 writes it: no leading
// zeros, no "-0", magnitude at most 2^53 so that it is exact as a double.
func (p *plainParser) integer() bool {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - digits
	switch {
	case n == 0 || n > 16:
		return false
	case p.b[digits] == '0' && (n > 1 || digits > start):
		return false // leading zero or -0
	case p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E'):
		return false
	}
	var v uint64
	for _, c := range p.b[digits:p.i] {
		v = v*10 + uint64(c-'0')
	}
	return v <= 1<<53
}
