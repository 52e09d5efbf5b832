package descriptor

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// fastYAML reads the YAML that jobs and offers are written in — block
// mappings and sequences, flow collections on one line, plain, quoted and
// block scalars, comments — straight into a tree, several times faster than
// the general parser. It gives up (ok false) on anything else, and on
// anything that might be an error, so that the general parser decides
// those and reports them: a document it accepts has exactly the tree,
// positions included, that the general parser builds (TestFastYAMLAgrees
// and FuzzFastYAML hold it to that).
func fastYAML(data []byte) (n *node, ok bool) {
	if len(data) == 0 || len(data) > MaxDocumentSize || bytes.ContainsAny(data, "\t\r\x00") || !utf8.Valid(data) {
		return nil, false
	}
	// Characters some YAML readers take for line breaks or spaces (NEL,
	// LS, PS, NBSP) and a byte order mark are the general parser's.
	for _, c := range []string{"\u0085", "\u2028", "\u2029", "\u00a0", "\ufeff"} {
		if bytes.Contains(data, []byte(c)) {
			return nil, false
		}
	}
	p := &fastParser{src: data}
	p.split()
	defer func() {
		// A parser that gives up mid-way unwinds with fastGiveUp.
		if r := recover(); r != nil {
			if r != fastGiveUp {
				panic(r)
			}
			n, ok = nil, false
		}
	}()
	p.skipBlank()
	if p.i >= len(p.lines) {
		return nil, false
	}
	first := p.lines[p.i]
	if first.indent != 0 {
		p.giveUp()
	}
	n = p.block(0, 0)
	p.skipBlank()
	if p.i < len(p.lines) {
		p.giveUp() // something the block did not take, such as a dedent below 0
	}
	return n, true
}

type fastLine struct {
	text   string // the line without its newline
	indent int    // leading spaces
	start  int    // where content starts; moves past "- " as items are read
	ascii  bool   // columns are byte offsets
}

type fastParser struct {
	src   []byte
	lines []fastLine
	i     int // the current line
	nodes int
}

// fastGiveUp is what the parser panics with when the document is not one
// it reads.
var fastGiveUp = new(int)

func (p *fastParser) giveUp() { panic(fastGiveUp) }

func (p *fastParser) split() {
	s := string(p.src)
	p.lines = make([]fastLine, 0, strings.Count(s, "\n")+1)
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		ind := 0
		for ind < len(line) && line[ind] == ' ' {
			ind++
		}
		ascii := true
		for i := 0; i < len(line); i++ {
			if line[i] >= utf8.RuneSelf {
				ascii = false
				break
			}
		}
		p.lines = append(p.lines, fastLine{text: line, indent: ind, start: ind, ascii: ascii})
	}
}

// blank reports a line with nothing but spaces or a comment.
func (l *fastLine) blank() bool {
	return l.start == len(l.text) || l.text[l.start] == '#'
}

func (p *fastParser) skipBlank() {
	for p.i < len(p.lines) && p.lines[p.i].blank() {
		p.i++
	}
}

// at is the position of byte off of line (both from 0): the general
// parser counts columns in characters.
func (p *fastParser) at(line, off int) srcPos {
	col := off
	if l := &p.lines[line]; !l.ascii {
		col = utf8.RuneCountInString(l.text[:off])
	}
	return srcPos{line: int32(line + 1), col: int32(col + 1)}
}

func (p *fastParser) newNode(kind nodeKind, line, off int, depth int) *node {
	p.nodes++
	if p.nodes > maxNodes/4 || depth > maxDepth/2 {
		p.giveUp() // near the limits, the general parser decides
	}
	return &node{kind: kind, at: p.at(line, off)}
}

// block reads the collection whose first line is the current one, with
// its content at column ind.
func (p *fastParser) block(ind, depth int) *node {
	l := &p.lines[p.i]
	if l.start != ind {
		p.giveUp()
	}
	if isSeqEntry(l.text, l.start) {
		return p.seq(ind, depth)
	}
	return p.mapping(ind, depth)
}

func isSeqEntry(text string, at int) bool {
	return text[at] == '-' && (at+1 == len(text) || text[at+1] == ' ')
}

// mapping reads "key: value" lines at column ind.
func (p *fastParser) mapping(ind, depth int) *node {
	var obj *node
	for {
		p.skipBlank()
		if p.i >= len(p.lines) {
			break
		}
		l := &p.lines[p.i]
		if l.start < ind {
			break
		}
		if l.start > ind || isSeqEntry(l.text, l.start) {
			p.giveUp()
		}
		key, colon := fastKey(l.text, l.start)
		if colon < 0 {
			p.giveUp()
		}
		if obj == nil {
			obj = p.newNode(kindObject, p.i, l.start, depth)
		}
		if obj.get(key) != nil {
			p.giveUp() // the general parser reports duplicates
		}
		keyAt := p.at(p.i, l.start)
		val := p.value(l, colon+1, ind, depth+1, true)
		obj.members = append(obj.members, member{name: key, at: keyAt, val: val})
	}
	if obj == nil {
		p.giveUp()
	}
	return obj
}

// seq reads "- entry" lines at column ind.
func (p *fastParser) seq(ind, depth int) *node {
	var arr *node
	for {
		p.skipBlank()
		if p.i >= len(p.lines) {
			break
		}
		l := &p.lines[p.i]
		if l.start < ind || l.start == ind && !isSeqEntry(l.text, l.start) {
			break // the mapping this sequence is a value of goes on
		}
		if l.start > ind {
			p.giveUp()
		}
		if arr == nil {
			arr = p.newNode(kindArray, p.i, l.start, depth)
		}
		arr.items = append(arr.items, p.value(l, l.start+1, ind, depth+1, false))
	}
	if arr == nil {
		p.giveUp()
	}
	return arr
}

// fastKey reads a plain key at text[at:] and returns it with the index of
// its ':'; -1 when the line does not start with a key this parser takes.
func fastKey(text string, at int) (string, int) {
	end := at
	for end < len(text) {
		c := text[end]
		if c == ':' {
			break
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || end > at && (c >= '0' && c <= '9' || c == '-' || c == '.' || c == '/')) {
			return "", -1
		}
		end++
	}
	if end == at || end == len(text) || end+1 < len(text) && text[end+1] != ' ' {
		return "", -1
	}
	key := text[at:end]
	switch strings.ToLower(key) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n":
		return "", -1 // a key the general parser may not read as a string
	}
	return key, end
}

// value reads what follows a key's ':' or an entry's '-' at text[from:] of
// the current line, then moves past everything it took. ind is the column
// of the key or entry; inMap tells a mapping's value from an entry.
func (p *fastParser) value(l *fastLine, from, ind, depth int, inMap bool) *node {
	at := from
	for at < len(l.text) && l.text[at] == ' ' {
		at++
	}
	line := p.i
	if at == len(l.text) || at > from && l.text[at] == '#' {
		// Nothing on the line: a block on the lines below, or null.
		p.i++
		p.skipBlank()
		if p.i < len(p.lines) {
			next := &p.lines[p.i]
			if next.start > ind || inMap && next.start == ind && isSeqEntry(next.text, next.start) {
				return p.block(next.start, depth)
			}
		}
		// A null: where the general parser places it depends on what
		// follows, so it decides.
		p.giveUp()
	}
	if at == from && inMap {
		p.giveUp() // no space after the ':'
	}
	var n *node
	switch c := l.text[at]; c {
	case '|', '>':
		n = p.blockScalar(l, at, ind, depth)
		return n // it moved past its lines
	case '[', '{':
		var end int
		n, end = p.flow(l.text, at, depth)
		p.rest(l.text, end)
	case '"', '\'':
		var s string
		var end int
		s, end = quoted(l.text, at)
		if end < 0 {
			p.giveUp()
		}
		n = p.newNode(kindString, line, at, depth)
		n.str = s
		p.rest(l.text, end)
	case '-':
		if at+1 == len(l.text) {
			p.giveUp()
		}
		if l.text[at+1] == ' ' {
			if inMap {
				p.giveUp()
			}
			// "- - x": an entry that is itself a sequence; read it as if
			// the outer "- " were spaces.
			l.start = at
			return p.block(at, depth)
		}
		n = p.plain(l.text, at, line, depth)
	default:
		if !inMap {
			if _, colon := fastKey(l.text, at); colon >= 0 {
				// "- key: value": a mapping whose first key is on the
				// entry's line and whose column is the key's.
				l.start = at
				return p.block(at, depth)
			}
		}
		n = p.plain(l.text, at, line, depth)
	}
	// A scalar or flow value ends its line; a more indented line after it
	// would continue it, which this parser leaves to the general one.
	p.i++
	p.skipBlank()
	if p.i < len(p.lines) && p.lines[p.i].start > ind {
		p.giveUp()
	}
	return n
}

// rest checks that only spaces and a comment follow text[end:].
func (p *fastParser) rest(text string, end int) {
	for end < len(text) && text[end] == ' ' {
		end++
	}
	if end < len(text) && (text[end] != '#' || text[end-1] != ' ') {
		p.giveUp()
	}
}

// plain reads a plain scalar running to the end of the line or a comment.
func (p *fastParser) plain(text string, at, line, depth int) *node {
	switch text[at] {
	case '?', ':', ',', ']', '}', '#', '&', '*', '!', '%', '@', '`':
		p.giveUp()
	}
	end := len(text)
	if i := strings.Index(text[at:], " #"); i >= 0 {
		end = at + i
	}
	s := strings.TrimRight(text[at:end], " ")
	if end == len(text) && len(s) < end-at {
		p.giveUp() // the general parser shifts a scalar with trailing spaces
	}
	if strings.Contains(s, ": ") || strings.HasSuffix(s, ":") {
		p.giveUp()
	}
	return p.resolve(s, line, at, depth)
}

// resolve types a plain scalar as the general parser does.
func (p *fastParser) resolve(s string, line, off, depth int) *node {
	n := p.newNode(kindNull, line, off, depth)
	r, err := resolvePlain(s, Pos{int(n.at.line), int(n.at.col)})
	if err != nil {
		p.giveUp()
	}
	return r
}

// quoted reads a quoted scalar that ends on its line; end is -1 when it
// does not, or holds an escape this parser leaves to the general one.
func quoted(text string, at int) (string, int) {
	q := text[at]
	var b strings.Builder
	for i := at + 1; i < len(text); i++ {
		c := text[i]
		switch {
		case c == q && q == '\'' && i+1 < len(text) && text[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == q:
			return b.String(), i + 1
		case c == '\\' && q == '"':
			if i+1 >= len(text) {
				return "", -1
			}
			i++
			switch text[i] {
			case '"', '\\', '/':
				b.WriteByte(text[i])
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				return "", -1
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", -1
}

// flow reads a flow sequence or mapping that closes on its line, and
// returns it with the index after its closing bracket.
func (p *fastParser) flow(text string, at, depth int) (*node, int) {
	f := &flowReader{p: p, text: text, i: at + 1, line: p.i, depth: depth}
	closeBy := byte(']')
	kind := kindArray
	if text[at] == '{' {
		closeBy, kind = '}', kindObject
	}
	n := p.newNode(kind, f.line, at, depth)
	f.skip()
	if f.i < len(text) && text[f.i] == closeBy {
		return n, f.i + 1
	}
	for {
		if kind == kindArray {
			n.items = append(n.items, f.item(",]"))
		} else {
			f.member(n)
		}
		f.skip()
		if f.i >= len(text) {
			p.giveUp()
		}
		switch text[f.i] {
		case ',':
			f.i++
			f.skip()
			if f.i < len(text) && text[f.i] == closeBy {
				p.giveUp() // a trailing comma
			}
		case closeBy:
			return n, f.i + 1
		default:
			p.giveUp()
		}
	}
}

// A flowReader reads a flow collection on one line, from text[i].
type flowReader struct {
	p           *fastParser
	text        string
	i           int
	line, depth int
}

func (f *flowReader) skip() {
	for f.i < len(f.text) && f.text[f.i] == ' ' {
		f.i++
	}
}

// member reads one "key: value" of a flow mapping into n.
func (f *flowReader) member(n *node) {
	p, text := f.p, f.text
	f.skip()
	key, colon := fastKey(text, f.i)
	if colon < 0 || n.get(key) != nil {
		p.giveUp()
	}
	if len(n.members) == 0 {
		n.at = p.at(f.line, f.i)
	}
	keyAt := p.at(f.line, f.i)
	f.i = colon + 1
	if f.i >= len(text) || text[f.i] != ' ' {
		p.giveUp()
	}
	n.members = append(n.members, member{name: key, at: keyAt, val: f.item(",}")})
}

// item reads one scalar or nested collection, ending before a byte of
// stop.
func (f *flowReader) item(stop string) *node {
	p, text := f.p, f.text
	f.skip()
	if f.i >= len(text) {
		p.giveUp()
	}
	switch c := text[f.i]; {
	case c == '[' || c == '{':
		v, end := p.flow(text, f.i, f.depth+1)
		f.i = end
		return v
	case c == '"' || c == '\'':
		s, end := quoted(text, f.i)
		if end < 0 {
			p.giveUp()
		}
		v := p.newNode(kindString, f.line, f.i, f.depth+1)
		v.str = s
		f.i = end
		return v
	}
	start := f.i
	for f.i < len(text) && !strings.ContainsRune(stop, rune(text[f.i])) {
		if c := text[f.i]; c == ':' || c == '#' || c == '[' || c == '{' || c == '"' || c == '\'' {
			p.giveUp()
		}
		f.i++
	}
	s := strings.TrimRight(text[start:f.i], " ")
	if s == "" || strings.ContainsAny(s[:1], "-?&*!|>%@`") {
		p.giveUp()
	}
	return p.resolve(s, f.line, start, f.depth+1)
}

// blockLines reads a block scalar's lines, more indented than ind, each
// less its indentation, and how many empty lines trailed them (which
// belong to the chomping).
func (p *fastParser) blockLines(ind int, literal bool) (body []string, trailing int) {
	// The content's indentation is the first non-empty line's.
	blockInd := -1
	for p.i < len(p.lines) {
		bl := &p.lines[p.i]
		if bl.indent == len(bl.text) { // empty, or spaces only
			if len(bl.text) > 0 && (blockInd < 0 || len(bl.text) > blockInd) {
				p.giveUp() // spaces that might be content
			}
			body = append(body, "")
			p.i++
			continue
		}
		if blockInd < 0 {
			if bl.indent <= ind {
				break
			}
			blockInd = bl.indent
		}
		if bl.indent < blockInd {
			break
		}
		if !literal && bl.indent > blockInd {
			p.giveUp() // more-indented lines fold differently
		}
		body = append(body, bl.text[blockInd:])
		p.i++
	}
	if blockInd < 0 || p.i == len(p.lines) && p.src[len(p.src)-1] != '\n' {
		p.giveUp() // no content, or a last line without its line break
	}
	for len(body) > 0 && body[len(body)-1] == "" {
		body = body[:len(body)-1]
		trailing++
	}
	return body, trailing
}

// joinBlock is a block scalar's text, clipped: its lines as they are
// (literal) or folded.
func joinBlock(p *fastParser, body []string, literal bool) string {
	var b strings.Builder
	if literal {
		for _, s := range body {
			b.WriteString(s)
			b.WriteByte('\n')
		}
		return b.String()
	}
	if len(body) > 0 && body[0] == "" {
		p.giveUp() // leading empty lines of a folded scalar
	}
	for i, s := range body {
		switch {
		case i == 0:
		case s == "":
			b.WriteByte('\n')
		case body[i-1] != "":
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	if len(body) > 0 {
		b.WriteByte('\n')
	}
	return b.String()
}

// blockScalar reads a literal (|) or folded (>) scalar whose header is at
// text[at:], with the clip, strip (-) or keep (+) chomping indicator, and
// moves past its lines.
func (p *fastParser) blockScalar(l *fastLine, at, ind, depth int) *node {
	line := p.i
	text := l.text
	literal := text[at] == '|'
	chomp := byte(0)
	h := at + 1
	if h < len(text) && (text[h] == '-' || text[h] == '+') {
		chomp = text[h]
		h++
	}
	p.rest(text, h)
	if h < len(text) && text[h] != ' ' {
		p.giveUp()
	}
	p.i++
	body, trailing := p.blockLines(ind, literal)
	s := joinBlock(p, body, literal)
	switch chomp {
	case '-':
		s = strings.TrimSuffix(s, "\n")
	case '+':
		s += strings.Repeat("\n", trailing)
	}
	if len(body) == 0 {
		p.giveUp()
	}
	n := p.newNode(kindString, line, at, depth)
	n.str = s
	p.skipBlank()
	if p.i < len(p.lines) && p.lines[p.i].start > ind {
		p.giveUp()
	}
	return n
}
