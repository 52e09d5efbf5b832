package descriptor

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonParser reads RFC 8259 JSON into a tree, recording each value's byte
// offset. It is stricter than encoding/json where the canonical form needs
// it: duplicate keys and unpaired UTF-16 surrogates are errors. The input
// has been checked to be valid UTF-8.
type jsonParser struct {
	data []byte
	i    int
	slab []node // nodes are handed out from here, a chunk at a time
	n    int    // values read
}

func (p *jsonParser) newNode(kind nodeKind, at srcPos) *node {
	if len(p.slab) == 0 {
		p.slab = make([]node, 64)
	}
	n := &p.slab[0]
	p.slab = p.slab[1:]
	n.kind, n.at = kind, at
	return n
}

func decodeJSON(data []byte) (*node, error) {
	p := &jsonParser{data: data}
	p.space()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.data) {
		return nil, p.errorf("unexpected data after the JSON document")
	}
	return n, nil
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return &syntaxError{offsetPos(p.data, p.i), "invalid JSON: " + fmt.Sprintf(format, args...)}
}

func (p *jsonParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) here() srcPos { return srcPos{off: int32(p.i)} }

func (p *jsonParser) value(depth int) (*node, error) {
	if depth > maxDepth {
		return nil, &syntaxError{offsetPos(p.data, p.i), fmt.Sprintf("document is nested more than %d levels deep", maxDepth)}
	}
	if p.n++; p.n > maxNodes {
		return nil, &syntaxError{offsetPos(p.data, p.i), fmt.Sprintf("document has more than %d values", maxNodes)}
	}
	if p.i >= len(p.data) {
		return nil, p.errorf("unexpected end of document")
	}
	at := p.here()
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(at, depth)
	case c == '[':
		return p.array(at, depth)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		n := p.newNode(kindString, at)
		n.str = s
		return n, nil
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number(at)
	case c == 't':
		n, err := p.literal(at, "true", kindBool)
		if n != nil {
			n.boolean = true
		}
		return n, err
	case c == 'f':
		return p.literal(at, "false", kindBool)
	case c == 'n':
		return p.literal(at, "null", kindNull)
	default:
		r, _ := utf8.DecodeRune(p.data[p.i:])
		return nil, p.errorf("unexpected character %q", r)
	}
}

func (p *jsonParser) literal(at srcPos, word string, kind nodeKind) (*node, error) {
	if !bytes.HasPrefix(p.data[p.i:], []byte(word)) {
		return nil, p.errorf("unexpected character %q", p.data[p.i])
	}
	p.i += len(word)
	return p.newNode(kind, at), nil
}

func (p *jsonParser) object(at srcPos, depth int) (*node, error) {
	n := p.newNode(kindObject, at)
	p.i++ // '{'
	p.space()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return n, nil
	}
	var seen map[string]bool // built only for large objects
	for {
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			if p.i < len(p.data) && p.data[p.i] == '}' {
				return nil, p.errorf("expected a string key; JSON allows no comma before '}'")
			}
			return nil, p.errorf("expected a string key")
		}
		kat := p.here()
		name, err := p.string()
		if err != nil {
			return nil, err
		}
		dup := false
		if seen != nil {
			dup = seen[name]
		} else {
			dup = n.get(name) != nil
			if len(n.members) >= 16 {
				seen = make(map[string]bool, 2*len(n.members))
				for _, m := range n.members {
					seen[m.name] = true
				}
			}
		}
		if dup {
			return nil, &syntaxError{offsetPos(p.data, int(kat.off)), fmt.Sprintf("duplicate key %q", name)}
		}
		if seen != nil {
			seen[name] = true
		}
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, p.errorf("expected ':' after object key")
		}
		p.i++
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.members = append(n.members, member{name, kat, v})
		p.space()
		if p.i >= len(p.data) {
			return nil, p.errorf("unexpected end of document in an object")
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return n, nil
		default:
			return nil, p.errorf("expected ',' or '}' after an object member")
		}
	}
}

func (p *jsonParser) array(at srcPos, depth int) (*node, error) {
	n := p.newNode(kindArray, at)
	p.i++ // '['
	p.space()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return n, nil
	}
	for {
		p.space()
		if p.i < len(p.data) && p.data[p.i] == ']' && len(n.items) > 0 {
			return nil, p.errorf("JSON allows no comma before ']'")
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.items = append(n.items, v)
		p.space()
		if p.i >= len(p.data) {
			return nil, p.errorf("unexpected end of document in an array")
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return n, nil
		default:
			return nil, p.errorf("expected ',' or ']' after an array element")
		}
	}
}

func (p *jsonParser) number(at srcPos) (*node, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.data) && '0' <= p.data[p.i] && p.data[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.data[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.data) && p.data[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, p.errorf("invalid number")
	}
	if p.i < len(p.data) && p.data[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.errorf("invalid number: digits must follow '.'")
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("invalid number: digits must follow the exponent")
		}
	}
	text := string(p.data[start:p.i])
	if msg := numberError(text); msg != "" {
		return nil, &syntaxError{offsetPos(p.data, start), msg}
	}
	n := p.newNode(kindNumber, at)
	n.str = text
	return n, nil
}

// string reads a quoted string at p.i.
func (p *jsonParser) string() (string, error) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.data) {
		c := p.data[p.i]
		if c == '"' {
			s := string(p.data[start:p.i])
			p.i++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character %#02x in a string must be escaped", c)
		}
		p.i++
	}
	var b strings.Builder
	b.Write(p.data[start:p.i])
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c < 0x20:
			return "", p.errorf("control character %#02x in a string must be escaped", c)
		case c != '\\':
			b.WriteByte(c)
			p.i++
			continue
		}
		p.i++ // backslash
		if p.i >= len(p.data) {
			break
		}
		esc := p.data[p.i]
		p.i++
		switch esc {
		case '"', '\\', '/':
			b.WriteByte(esc)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || p.i+1 >= len(p.data) || p.data[p.i] != '\\' || p.data[p.i+1] != 'u' {
					return "", p.errorf("unpaired UTF-16 surrogate \\u%04x", r)
				}
				p.i += 2
				lo, err := p.hex4()
				if err != nil {
					return "", err
				}
				if lo < 0xdc00 || lo > 0xdfff {
					return "", p.errorf("unpaired UTF-16 surrogate \\u%04x", r)
				}
				r = utf16.DecodeRune(r, lo)
			}
			b.WriteRune(r)
		default:
			p.i--
			return "", p.errorf("invalid escape \\%c", esc)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, error) {
	if p.i+4 > len(p.data) {
		return 0, p.errorf("\\u needs four hex digits")
	}
	var r rune
	for _, c := range p.data[p.i : p.i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.errorf("\\u needs four hex digits")
		}
	}
	p.i += 4
	return r, nil
}
