package descriptor

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// MaxDocumentSize is the largest document Parse accepts.
const MaxDocumentSize = 1 << 20

// maxDepth bounds nesting; the deepest v1 field is six levels down.
const maxDepth = 32

// maxNodes bounds a document's values (JSON values, YAML tokens): far more
// than any real Job or Offer holds, and few enough that no parser spends
// more than a fraction of a second or a few tens of megabytes on one.
const maxNodes = 20000

// maxSafeInteger is the largest integer every JSON implementation holds
// exactly (I-JSON, RFC 7493), and so the largest RFC 8785 can canonicalize.
const maxSafeInteger = 1<<53 - 1

type nodeKind uint8

const (
	kindNull nodeKind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k nodeKind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// A node is one value of a parsed document with the position it came from,
// whatever the source syntax. Objects keep their members in source order.
type node struct {
	kind    nodeKind
	at      srcPos
	str     string // a string's value, or a number in JSON syntax
	boolean bool
	members []member
	items   []*node
}

type member struct {
	name string
	at   srcPos // of the key
	val  *node
}

// A srcPos locates a node: YAML gives line and column directly; the JSON
// parser records only the byte offset, and the line and column are counted
// when an error needs them.
type srcPos struct {
	line, col int32 // 1-based; 0 when only off is known
	off       int32
}

func yamlPos(p Pos) srcPos { return srcPos{line: int32(p.Line), col: int32(p.Col)} }

// A tree is a parsed document and the source it came from.
type tree struct {
	root *node
	src  []byte
}

// pos returns the line and column of p.
func (t *tree) pos(p srcPos) Pos {
	if p.line > 0 {
		return Pos{int(p.line), int(p.col)}
	}
	return offsetPos(t.src, int(p.off))
}

func (n *node) get(name string) *node {
	for i := range n.members {
		if n.members[i].name == name {
			return n.members[i].val
		}
	}
	return nil
}

// A syntaxError is a problem found before there is a tree to validate.
type syntaxError struct {
	pos Pos
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%d:%d: %s", e.pos.Line, e.pos.Col, e.msg) }

// decodeTree parses data as JSON when its first significant character is
// '{', and as YAML otherwise.
func decodeTree(data []byte) (*tree, error) {
	if len(data) > MaxDocumentSize {
		return nil, &syntaxError{Pos{1, 1}, fmt.Sprintf("document is %d bytes, larger than the %d allowed", len(data), MaxDocumentSize)}
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			off += size
		}
		return nil, &syntaxError{offsetPos(data, off), "document is not valid UTF-8"}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &syntaxError{Pos{1, 1}, "document is empty"}
	}
	var root *node
	var err error
	if trimmed[0] == '{' {
		root, err = decodeJSON(data)
	} else {
		root, err = decodeYAML(data)
	}
	if err != nil {
		return nil, err
	}
	return &tree{root: root, src: data}, nil
}

// offsetPos converts a byte offset to a 1-based line and character column.
func offsetPos(data []byte, off int) Pos {
	if off > len(data) {
		off = len(data)
	}
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return Pos{line, 1 + utf8.RuneCount(data[start:off])}
}

// numberError checks that a JSON-syntax number is finite and, if integral,
// exactly representable.
func numberError(text string) string {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) {
		return fmt.Sprintf("number %s is out of range", text)
	}
	if f == math.Trunc(f) && math.Abs(f) > maxSafeInteger {
		return fmt.Sprintf("number %s is larger than 2^53-1, the largest integer JSON holds exactly", text)
	}
	return ""
}

// --- YAML ---

// yamlError is the part of go-yaml's errors that carries a position.
type yamlError interface {
	GetToken() *token.Token
	GetMessage() string
}

func decodeYAML(data []byte) (*node, error) {
	if n, ok := fastYAML(data); ok {
		return n, nil
	}
	return decodeYAMLGeneral(data)
}

// decodeYAMLGeneral reads any YAML document with the general parser.
func decodeYAMLGeneral(data []byte) (n *node, err error) {
	// The YAML parser is third-party code run on untrusted input; a panic
	// in it must become an error, not a crashed broker.
	defer func() {
		if r := recover(); r != nil {
			n, err = nil, &syntaxError{Pos{1, 1}, fmt.Sprintf("invalid YAML: the parser failed (%v)", r)}
		}
	}()
	if err := yamlShape(data); err != nil {
		return nil, err
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye yamlError
		if errors.As(err, &ye) && ye.GetToken() != nil {
			p := ye.GetToken().Position
			return nil, &syntaxError{Pos{p.Line, p.Column}, "invalid YAML: " + ye.GetMessage()}
		}
		return nil, &syntaxError{Pos{1, 1}, "invalid YAML: " + err.Error()}
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	switch len(docs) {
	case 0:
		return nil, &syntaxError{Pos{1, 1}, "document is empty"}
	case 1:
	default:
		return nil, &syntaxError{tokenPos(docs[1].Body), "a file holds one document; found a second one"}
	}
	return yamlValue(docs[0].Body, 0)
}

// yamlShape checks, on the lexer's tokens and before the parser builds
// anything, that a document is neither too deep nor too wide: the YAML
// parser's time and memory grow faster than the input in both (16 KB of
// '[' cost it 400 MB). The lexer is linear. The depth counted here is an
// upper bound of the tree's (flow collections, plus block levels by
// indentation and by entries that open on one line), held to twice the
// tree's limit so that no document the tree accepts is refused here.
func yamlShape(data []byte) error {
	toks := lexer.Tokenize(string(data))
	at := func(tk *token.Token) Pos {
		if tk.Position == nil {
			return Pos{1, 1}
		}
		return Pos{tk.Position.Line, tk.Position.Column}
	}
	deep := func(tk *token.Token) error {
		return &syntaxError{at(tk), fmt.Sprintf("document is nested more than %d levels deep", maxDepth)}
	}
	flow, line := 0, 0
	var block []int // columns of the open block levels
	for i, tk := range toks {
		if i == maxNodes {
			return &syntaxError{at(tk), fmt.Sprintf("document has more than %d values", maxNodes)}
		}
		switch tk.Type {
		case token.CommentType:
			continue
		case token.SequenceStartType, token.MappingStartType:
			if flow++; flow+len(block) > 2*maxDepth {
				return deep(tk)
			}
			continue
		case token.SequenceEndType, token.MappingEndType:
			flow--
			continue
		}
		if flow > 0 || tk.Position == nil {
			continue
		}
		col := tk.Position.Column
		if tk.Position.Line != line {
			line = tk.Position.Line
			for len(block) > 0 && block[len(block)-1] >= col {
				block = block[:len(block)-1]
			}
			block = append(block, col)
		} else if tk.Type == token.SequenceEntryType {
			block = append(block, col)
		}
		if len(block) > 2*maxDepth {
			return deep(tk)
		}
	}
	return nil
}

func tokenPos(n ast.Node) Pos {
	if n == nil {
		return Pos{1, 1}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return Pos{1, 1}
	}
	return Pos{tk.Position.Line, tk.Position.Column}
}

func yamlValue(an ast.Node, depth int) (*node, error) {
	pos := tokenPos(an)
	at := yamlPos(pos)
	if depth > maxDepth {
		return nil, &syntaxError{pos, fmt.Sprintf("document is nested more than %d levels deep", maxDepth)}
	}
	switch v := an.(type) {
	case *ast.MappingNode:
		n := &node{kind: kindObject, at: at}
		if len(v.Values) > 0 {
			// The mapping's own token is its first ':'; its first key is
			// where a reader sees it start.
			n.at = yamlPos(tokenPos(v.Values[0].Key))
		}
		for _, mv := range v.Values {
			if err := addYAMLMember(n, mv, depth); err != nil {
				return nil, err
			}
		}
		return n, nil
	case *ast.MappingValueNode:
		n := &node{kind: kindObject, at: yamlPos(tokenPos(v.Key))}
		if err := addYAMLMember(n, v, depth); err != nil {
			return nil, err
		}
		return n, nil
	case *ast.SequenceNode:
		n := &node{kind: kindArray, at: at}
		for _, it := range v.Values {
			item, err := yamlValue(it, depth+1)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, item)
		}
		return n, nil
	case *ast.StringNode:
		if v.Token.Type == token.SingleQuoteType || v.Token.Type == token.DoubleQuoteType {
			return &node{kind: kindString, at: at, str: v.Value}, nil
		}
		return resolvePlain(v.Token.Value, pos)
	case *ast.LiteralNode:
		return &node{kind: kindString, at: at, str: v.Value.Value}, nil
	case *ast.IntegerNode:
		return resolvePlain(v.Token.Value, pos)
	case *ast.FloatNode:
		return resolvePlain(v.Token.Value, pos)
	case *ast.BoolNode:
		return resolvePlain(v.Token.Value, pos)
	case *ast.NullNode:
		if v.Token == nil || v.Token.Type == token.ImplicitNullType {
			return &node{kind: kindNull, at: at}, nil
		}
		return resolvePlain(v.Token.Value, pos)
	case *ast.InfinityNode, *ast.NanNode:
		return nil, &syntaxError{pos, "infinity and NaN are not numbers a document may hold"}
	case *ast.AnchorNode, *ast.AliasNode:
		return nil, &syntaxError{pos, "YAML anchors and aliases are not allowed"}
	case *ast.TagNode:
		if v.Start != nil && v.Start.Value == "!!str" {
			if s, ok := v.Value.(ast.ScalarNode); ok {
				return &node{kind: kindString, at: at, str: fmt.Sprint(s.GetValue())}, nil
			}
		}
		return nil, &syntaxError{pos, fmt.Sprintf("YAML tag %s is not allowed (only !!str on scalars)", v.Start.Value)}
	case *ast.MergeKeyNode:
		return nil, &syntaxError{pos, "YAML merge keys (<<) are not allowed"}
	}
	return nil, &syntaxError{pos, fmt.Sprintf("unsupported YAML construct (%s)", an.Type())}
}

func addYAMLMember(obj *node, mv *ast.MappingValueNode, depth int) error {
	kpos := tokenPos(mv.Key)
	var name string
	switch k := mv.Key.(type) {
	case *ast.StringNode:
		name = k.Value
	case *ast.MappingKeyNode:
		return &syntaxError{kpos, "complex YAML keys (?) are not allowed"}
	case *ast.MergeKeyNode:
		return &syntaxError{kpos, "YAML merge keys (<<) are not allowed"}
	default:
		return &syntaxError{kpos, fmt.Sprintf("a key must be a string, got %s (quote it)", mv.Key.Type())}
	}
	if obj.get(name) != nil {
		return &syntaxError{kpos, fmt.Sprintf("duplicate key %q", name)}
	}
	val, err := yamlValue(mv.Value, depth+1)
	if err != nil {
		return err
	}
	obj.members = append(obj.members, member{name, yamlPos(kpos), val})
	return nil
}

// YAML 1.2 core schema tag resolution for plain scalars (YAML 1.2.2,
// section 10.3.2). go-yaml classifies some scalars differently (it reads
// "1e0" as a string), so every plain scalar is resolved here from its text.
var (
	yamlInt10 = regexp.MustCompile(`^[-+]?[0-9]+$`)
	yamlInt8  = regexp.MustCompile(`^0o[0-7]+$`)
	yamlInt16 = regexp.MustCompile(`^0x[0-9a-fA-F]+$`)
	yamlFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
	yamlInf   = regexp.MustCompile(`^[-+]?(\.inf|\.Inf|\.INF)$`)
	yamlNaN   = regexp.MustCompile(`^(\.nan|\.NaN|\.NAN)$`)
)

// isYAMLInt10 is yamlInt10.MatchString, by hand: [-+]?[0-9]+.
func isYAMLInt10(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	return s != "" && digits(s) == len(s)
}

// isYAMLFloat is yamlFloat.MatchString, by hand:
// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?.
func isYAMLFloat(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	if s[0] == '.' {
		n := digits(s[1:])
		if n == 0 {
			return false
		}
		s = s[1+n:]
	} else {
		n := digits(s)
		if n == 0 {
			return false
		}
		s = s[n:]
		if s != "" && s[0] == '.' {
			s = s[1+digits(s[1:]):]
		}
	}
	if s == "" {
		return true
	}
	if s[0] != 'e' && s[0] != 'E' {
		return false
	}
	s = s[1:]
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	return s != "" && digits(s) == len(s)
}

// digits counts the leading ASCII digits of s.
func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

func resolvePlain(text string, pos Pos) (*node, error) {
	at := yamlPos(pos)
	switch text {
	case "null", "Null", "NULL", "~", "":
		return &node{kind: kindNull, at: at}, nil
	case "true", "True", "TRUE":
		return &node{kind: kindBool, at: at, boolean: true}, nil
	case "false", "False", "FALSE":
		return &node{kind: kindBool, at: at, boolean: false}, nil
	}
	if c := text[0]; !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.') {
		// Every number, infinity and NaN starts with one of these.
		return &node{kind: kindString, at: at, str: text}, nil
	}
	var num string
	switch {
	case isYAMLInt10(text):
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			num = strconv.FormatInt(n, 10)
			break
		}
		i, _ := new(big.Int).SetString(strings.TrimPrefix(text, "+"), 10)
		num = i.String()
	case yamlInt8.MatchString(text):
		i, _ := new(big.Int).SetString(text[2:], 8)
		num = i.String()
	case yamlInt16.MatchString(text):
		i, _ := new(big.Int).SetString(text[2:], 16)
		num = i.String()
	case isYAMLFloat(text):
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, &syntaxError{pos, fmt.Sprintf("number %s is out of range", text)}
		}
		num = strconv.FormatFloat(f, 'g', -1, 64)
	case yamlInf.MatchString(text), yamlNaN.MatchString(text):
		return nil, &syntaxError{pos, "infinity and NaN are not numbers a document may hold"}
	default:
		return &node{kind: kindString, at: at, str: text}, nil
	}
	if msg := numberError(num); msg != "" {
		return nil, &syntaxError{pos, msg}
	}
	return &node{kind: kindNumber, at: at, str: num}, nil
}
