package descriptor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/token"
)

// FormatYAML returns the document's canonical YAML: the canonical value,
// with fields in the order the specification lists them, map keys sorted,
// two-space indentation and no comments. Formatting it again, or parsing
// it, yields the same document and digest.
func (d *Document) FormatYAML() ([]byte, error) {
	tree, err := decodeJSON(d.Canonical)
	if err != nil {
		return nil, fmt.Errorf("descriptor: internal error: re-reading canonical form: %w", err)
	}
	var t reflect.Type = reflect.TypeFor[Job]()
	if d.Kind == KindOffer {
		t = reflect.TypeFor[Offer]()
	}
	out, err := yaml.MarshalWithOptions(orderedValue(tree, t), yaml.Indent(2), yaml.IndentSequence(true), yaml.UseLiteralStyleIfMultiline(true))
	if err != nil {
		return nil, fmt.Errorf("descriptor: formatting YAML: %w", err)
	}
	return out, nil
}

// yamlNumber writes a number exactly as the canonical form has it.
type yamlNumber string

func (n yamlNumber) MarshalYAML() ([]byte, error) { return []byte(n), nil }

// yamlQuoted writes a string as a JSON string, which is also a valid YAML
// double-quoted scalar, for text a plain or literal scalar cannot carry
// exactly.
type yamlQuoted string

func (q yamlQuoted) MarshalYAML() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(string(q)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// needsJSONQuotes reports text with control characters other than a line
// feed, carriage returns, or lines that begin or end with white space.
func needsJSONQuotes(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\n') || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\ufeff' || r == 0x85 {
			return true
		}
	}
	if strings.Contains(s, "\n") {
		for _, line := range strings.Split(s, "\n") {
			if line != strings.TrimSpace(line) {
				return true
			}
		}
	}
	return false
}

// readsAsPlainString reports whether s, written as a plain scalar, reads
// back as the same string in this package's YAML reader. Strings the
// reader would take for a number, boolean, null or timestamp ("1e-06",
// "yes", "~"), or that start with an indicator, are quoted instead. Text
// over several lines is left to the literal style.
func readsAsPlainString(s string) bool {
	if s == "" || strings.Contains(s, "\n") {
		return true // the writer quotes "" and uses a literal block
	}
	if n, err := resolvePlain(s, Pos{}); err != nil || n.kind != kindString {
		return false
	}
	toks := lexer.Tokenize("k: " + s)
	return len(toks) == 3 && toks[2].Type == token.StringType && toks[2].Value == s
}

// orderedValue converts a tree to values go-yaml writes in order: struct
// fields in declaration order, map keys sorted.
func orderedValue(n *node, t reflect.Type) any {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.kind {
	case kindNull:
		return nil
	case kindBool:
		return n.boolean
	case kindNumber:
		return yamlNumber(n.str)
	case kindString:
		if needsJSONQuotes(n.str) || !readsAsPlainString(n.str) {
			return yamlQuoted(n.str)
		}
		return n.str
	case kindArray:
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		items := make([]any, len(n.items))
		for i, it := range n.items {
			items[i] = orderedValue(it, elem)
		}
		return items
	}
	rank := map[string]int{}
	fieldType := map[string]reflect.Type{}
	if t != nil && t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				rank[name] = i
				fieldType[name] = f.Type
			}
		}
	}
	members := append([]member(nil), n.members...)
	sort.SliceStable(members, func(i, j int) bool {
		ri, iok := rank[members[i].name]
		rj, jok := rank[members[j].name]
		if iok && jok {
			return ri < rj
		}
		if iok != jok {
			return iok
		}
		return members[i].name < members[j].name
	})
	var elem reflect.Type
	if t != nil && t.Kind() == reflect.Map {
		elem = t.Elem()
	}
	out := make(yaml.MapSlice, len(members))
	for i, m := range members {
		ft := fieldType[m.name]
		if ft == nil {
			ft = elem
		}
		out[i] = yaml.MapItem{Key: m.name, Value: orderedValue(m.val, ft)}
	}
	return out
}
