package descriptor

import (
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cinet/cinet/spec"
)

// A schema is one compiled JSON Schema (draft 2020-12) object from
// spec/descriptor/v1. The validator implements exactly the keywords those
// files use and refuses to load a schema with any other, so no constraint
// in the published schema is ever silently ignored. A differential test
// holds it to the same verdicts as an independent implementation
// (santhosh-tekuri/jsonschema).
type schema struct {
	ref *schema

	types         []string
	properties    map[string]*schema
	propertyOrder []string
	required      []string
	additional    *schema // nil: any additional property is allowed
	noAdditional  bool
	propertyNames *schema
	minProperties int
	maxProperties int // -1: no limit
	items         *schema
	minItems      int
	maxItems      int // -1: no limit
	uniqueItems   bool
	constVal      *node
	enum          []*node
	pattern       *regexp.Regexp
	patternDesc   string
	format        *schemaFormat
	minLength     int
	maxLength     int // -1: no limit
	minimum       *bound
	maximum       *bound
	exclusiveMin  *bound
	exclusiveMax  *bound
}

type bound struct {
	v    float64
	text string
}

// schemaKeywords are the keywords the validator implements; annotations
// carry no constraint.
var schemaKeywords = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "$comment": true, "title": true, "description": true,
	"$ref": true, "type": true, "properties": true, "required": true, "additionalProperties": true,
	"propertyNames": true, "minProperties": true, "maxProperties": true, "items": true, "minItems": true,
	"maxItems": true, "uniqueItems": true, "const": true, "enum": true, "pattern": true, "format": true,
	"minLength": true, "maxLength": true, "minimum": true, "maximum": true, "exclusiveMinimum": true,
	"exclusiveMaximum": true,
}

// schemaSet holds the compiled v1 schemas.
type schemaSet struct {
	job, offer *schema
}

type schemaCompiler struct {
	docs     map[string]*node // schema documents by $id
	compiled map[*node]*schema
}

// loadSchemaSet compiles the embedded schema files.
func loadSchemaSet() (*schemaSet, error) {
	c := &schemaCompiler{docs: map[string]*node{}, compiled: map[*node]*schema{}}
	for _, name := range []string{"common.json", "job.json", "offer.json"} {
		data, err := fs.ReadFile(spec.DescriptorV1, "descriptor/v1/"+name)
		if err != nil {
			return nil, fmt.Errorf("descriptor: embedded schema %s: %w", name, err)
		}
		root, err := decodeJSON(data)
		if err != nil {
			return nil, fmt.Errorf("descriptor: embedded schema %s: %w", name, err)
		}
		id := root.get("$id")
		if id == nil || id.kind != kindString {
			return nil, fmt.Errorf("descriptor: embedded schema %s has no $id", name)
		}
		c.docs[id.str] = root
	}
	job, err := c.compile(c.docs[jobSchemaID], jobSchemaID, "")
	if err != nil {
		return nil, fmt.Errorf("descriptor: Job schema: %w", err)
	}
	offer, err := c.compile(c.docs[offerSchemaID], offerSchemaID, "")
	if err != nil {
		return nil, fmt.Errorf("descriptor: Offer schema: %w", err)
	}
	return &schemaSet{job: job, offer: offer}, nil
}

func (c *schemaCompiler) compile(n *node, docID, ptr string) (*schema, error) {
	if s, ok := c.compiled[n]; ok {
		return s, nil
	}
	if n.kind != kindObject {
		return nil, fmt.Errorf("%s#%s: a schema must be an object", docID, ptr)
	}
	s := &schema{maxProperties: -1, maxItems: -1, maxLength: -1}
	c.compiled[n] = s
	kc := keywordCompiler{c: c, n: n, docID: docID, ptr: ptr}
	for _, m := range n.members {
		if !schemaKeywords[m.name] {
			return nil, kc.fail(m.name, "keyword not supported by this validator")
		}
		if err := kc.keyword(s, m.name, m.val); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// The keywords whose value is a count, and those whose value is a bound.
var (
	countKeywords = map[string]func(*schema) *int{
		"minProperties": func(s *schema) *int { return &s.minProperties },
		"maxProperties": func(s *schema) *int { return &s.maxProperties },
		"minItems":      func(s *schema) *int { return &s.minItems },
		"maxItems":      func(s *schema) *int { return &s.maxItems },
		"minLength":     func(s *schema) *int { return &s.minLength },
		"maxLength":     func(s *schema) *int { return &s.maxLength },
	}
	boundKeywords = map[string]func(*schema) **bound{
		"minimum":          func(s *schema) **bound { return &s.minimum },
		"maximum":          func(s *schema) **bound { return &s.maximum },
		"exclusiveMinimum": func(s *schema) **bound { return &s.exclusiveMin },
		"exclusiveMaximum": func(s *schema) **bound { return &s.exclusiveMax },
	}
)

// A keywordCompiler compiles the keywords of one schema object, n, at
// docID#ptr.
type keywordCompiler struct {
	c          *schemaCompiler
	n          *node
	docID, ptr string
}

func (kc keywordCompiler) fail(kw, format string, args ...any) error {
	return fmt.Errorf("%s#%s/%s: %s", kc.docID, kc.ptr, kw, fmt.Sprintf(format, args...))
}

func (kc keywordCompiler) sub(kw string, v *node) (*schema, error) {
	return kc.c.compile(v, kc.docID, kc.ptr+"/"+kw)
}

// keyword compiles keyword kw, of value v, into s.
func (kc keywordCompiler) keyword(s *schema, kw string, v *node) error {
	if field, ok := countKeywords[kw]; ok {
		i, err := strconv.Atoi(v.str)
		if v.kind != kindNumber || err != nil || i < 0 {
			return kc.fail(kw, "want a non-negative integer")
		}
		*field(s) = i
		return nil
	}
	if field, ok := boundKeywords[kw]; ok {
		f, err := strconv.ParseFloat(v.str, 64)
		if v.kind != kindNumber || err != nil {
			return kc.fail(kw, "want a number")
		}
		*field(s) = &bound{f, v.str}
		return nil
	}
	var err error
	switch kw {
	case "$ref":
		target, tdoc, tptr, rerr := kc.c.resolve(v.str, kc.docID)
		if rerr != nil {
			return kc.fail(kw, "%v", rerr)
		}
		s.ref, err = kc.c.compile(target, tdoc, tptr)
	case "type":
		if v.kind == kindString {
			s.types = []string{v.str}
		}
		for _, t := range v.items {
			s.types = append(s.types, t.str)
		}
	case "properties":
		s.properties = map[string]*schema{}
		for _, p := range v.members {
			if s.properties[p.name], err = kc.sub("properties/"+p.name, p.val); err != nil {
				return err
			}
			s.propertyOrder = append(s.propertyOrder, p.name)
		}
	case "required":
		for _, r := range v.items {
			s.required = append(s.required, r.str)
		}
	case "additionalProperties":
		if v.kind == kindBool {
			s.noAdditional = !v.boolean
		} else {
			s.additional, err = kc.sub(kw, v)
		}
	case "propertyNames":
		s.propertyNames, err = kc.sub(kw, v)
	case "items":
		s.items, err = kc.sub(kw, v)
	case "uniqueItems":
		s.uniqueItems = v.kind == kindBool && v.boolean
	case "const":
		s.constVal = v
	case "enum":
		s.enum = v.items
	case "pattern":
		return kc.pattern(s, v)
	case "format":
		f, ok := schemaFormats[v.str]
		if !ok {
			return kc.fail(kw, "unknown format %q", v.str)
		}
		s.format = f
	}
	return err
}

// pattern compiles a pattern, described by the schema's description when
// it has one.
func (kc keywordCompiler) pattern(s *schema, v *node) error {
	var err error
	if s.pattern, err = regexp.Compile(v.str); err != nil {
		return kc.fail("pattern", "%v", err)
	}
	s.patternDesc = "text matching " + strconv.Quote(v.str)
	if d := kc.n.get("description"); d != nil {
		s.patternDesc = d.str
	}
	return nil
}

// resolve finds the target of a $ref: "urn:…#/$defs/x" or "#/$defs/x".
func (c *schemaCompiler) resolve(ref, docID string) (*node, string, string, error) {
	id, ptr, _ := strings.Cut(ref, "#")
	if id == "" {
		id = docID
	}
	n := c.docs[id]
	if n == nil {
		return nil, "", "", fmt.Errorf("unknown schema %q", id)
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if n = n.get(tok); n == nil {
			return nil, "", "", fmt.Errorf("%s does not resolve", ref)
		}
	}
	return n, id, ptr, nil
}

// schemaValidator validates one document against a compiled schema. The
// path of the value being checked is a stack in path; it is copied only
// when an error is reported.
type schemaValidator struct {
	t    *tree
	file string
	errs ErrorList
	path []string
}

func (v *schemaValidator) errorAt(path []string, msg string) {
	v.errs = append(v.errs, located(v.t, v.file, slices.Clone(path), msg))
}

// child validates a member or item, with tok pushed on the path.
func (v *schemaValidator) child(s *schema, n *node, tok string) {
	v.path = append(v.path, tok)
	v.validate(s, n, v.path)
	v.path = v.path[:len(v.path)-1]
}

func (v *schemaValidator) validate(s *schema, n *node, path []string) {
	if s.ref != nil {
		v.validate(s.ref, n, path)
	}
	if len(s.types) > 0 && !slices.ContainsFunc(s.types, func(t string) bool { return hasType(n, t) }) {
		want := make([]string, len(s.types))
		for i, t := range s.types {
			want[i] = article(t)
		}
		v.errorAt(path, fmt.Sprintf("must be %s, got %s", strings.Join(want, " or "), describeValue(n)))
	}
	if s.constVal != nil && !jsonEqual(n, s.constVal) {
		v.errorAt(path, fmt.Sprintf("must be %s, got %s", describeValue(s.constVal), describeValue(n)))
	}
	if s.enum != nil && !slices.ContainsFunc(s.enum, func(e *node) bool { return jsonEqual(n, e) }) {
		opts := make([]string, len(s.enum))
		for i, e := range s.enum {
			opts[i] = describeValue(e)
		}
		v.errorAt(path, fmt.Sprintf("must be one of %s, got %s", strings.Join(opts, ", "), describeValue(n)))
	}
	switch n.kind {
	case kindString:
		v.validateString(s, n, path)
	case kindNumber:
		v.validateNumber(s, n, path)
	case kindArray:
		v.validateArray(s, n, path)
	case kindObject:
		v.validateObject(s, n, path)
	}
}

func (v *schemaValidator) validateString(s *schema, n *node, path []string) {
	if s.minLength > 0 || s.maxLength >= 0 {
		l := utf8.RuneCountInString(n.str)
		if l < s.minLength {
			v.errorAt(path, fmt.Sprintf("must be at least %d %s long, got %d", s.minLength, plural(s.minLength, "character"), l))
		}
		if s.maxLength >= 0 && l > s.maxLength {
			v.errorAt(path, fmt.Sprintf("must be at most %d %s long, got %d", s.maxLength, plural(s.maxLength, "character"), l))
		}
	}
	// When the format check fails too, its message is the more specific
	// one, so it stands for both.
	var formatErr error
	if s.format != nil {
		formatErr = s.format.check(n.str)
	}
	if formatErr != nil {
		v.errorAt(path, formatErr.Error())
	} else if s.pattern != nil && !s.pattern.MatchString(n.str) {
		v.errorAt(path, fmt.Sprintf("must be %s, got %s", s.patternDesc, describeValue(n)))
	}
}

func (v *schemaValidator) validateNumber(s *schema, n *node, path []string) {
	f, _ := strconv.ParseFloat(n.str, 64)
	check := func(b *bound, ok bool, op string) {
		if b != nil && !ok {
			v.errorAt(path, fmt.Sprintf("must be %s %s, got %s", op, b.text, n.str))
		}
	}
	check(s.minimum, s.minimum == nil || f >= s.minimum.v, "≥")
	check(s.maximum, s.maximum == nil || f <= s.maximum.v, "≤")
	check(s.exclusiveMin, s.exclusiveMin == nil || f > s.exclusiveMin.v, ">")
	check(s.exclusiveMax, s.exclusiveMax == nil || f < s.exclusiveMax.v, "<")
}

func (v *schemaValidator) validateArray(s *schema, n *node, path []string) {
	if l := len(n.items); l < s.minItems {
		v.errorAt(path, fmt.Sprintf("must have at least %d %s, got %d", s.minItems, plural(s.minItems, "item"), l))
	} else if s.maxItems >= 0 && l > s.maxItems {
		v.errorAt(path, fmt.Sprintf("must have at most %d %s, got %d", s.maxItems, plural(s.maxItems, "item"), l))
	}
	if s.uniqueItems {
	unique:
		for i := range n.items {
			for j := range i {
				if jsonEqual(n.items[i], n.items[j]) {
					v.errorAt(path, fmt.Sprintf("items %d and %d are the same; entries must be unique", j, i))
					break unique
				}
			}
		}
	}
	if s.items != nil {
		for i, it := range n.items {
			v.child(s.items, it, strconv.Itoa(i))
		}
	}
}

func (v *schemaValidator) validateObject(s *schema, n *node, path []string) {
	if l := len(n.members); l < s.minProperties {
		if s.minProperties == 1 {
			v.errorAt(path, "must not be empty")
		} else {
			v.errorAt(path, fmt.Sprintf("must have at least %d fields, got %d", s.minProperties, l))
		}
	} else if s.maxProperties >= 0 && l > s.maxProperties {
		v.errorAt(path, fmt.Sprintf("must have at most %d entries, got %d", s.maxProperties, l))
	}
	for _, r := range s.required {
		if n.get(r) == nil {
			err := located(v.t, v.file, append(slices.Clone(path), r), "required field is missing")
			p := v.t.pos(lookup(v.t.root, path).at)
			err.Line, err.Col = p.Line, p.Col
			v.errs = append(v.errs, err)
		}
	}
	for _, m := range n.members {
		if s.propertyNames != nil {
			if bad := s.propertyNames.nameError(m.name); bad != "" {
				v.errorAt(append(path, m.name), "invalid key: must be "+bad)
			}
		}
		if ps, ok := s.properties[m.name]; ok {
			v.child(ps, m.val, m.name)
			continue
		}
		switch {
		case s.additional != nil:
			v.child(s.additional, m.val, m.name)
		case s.noAdditional:
			msg := "unknown field"
			if near := nearest(m.name, s.propertyOrder); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			}
			v.errorAt(append(path, m.name), msg)
		}
	}
}

// nameError checks a property name against a propertyNames schema, which
// in v1 holds a pattern only.
func (s *schema) nameError(name string) string {
	if s.pattern != nil && !s.pattern.MatchString(name) {
		return s.patternDesc
	}
	return ""
}

func hasType(n *node, t string) bool {
	switch t {
	case "object":
		return n.kind == kindObject
	case "array":
		return n.kind == kindArray
	case "string":
		return n.kind == kindString
	case "boolean":
		return n.kind == kindBool
	case "null":
		return n.kind == kindNull
	case "number":
		return n.kind == kindNumber
	case "integer":
		if n.kind != kindNumber {
			return false
		}
		f, err := strconv.ParseFloat(n.str, 64)
		return err == nil && f == math.Trunc(f)
	}
	return false
}

// jsonEqual is JSON value equality: numbers by value, objects regardless
// of member order.
func jsonEqual(a, b *node) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case kindNull:
		return true
	case kindBool:
		return a.boolean == b.boolean
	case kindString:
		return a.str == b.str
	case kindNumber:
		fa, _ := strconv.ParseFloat(a.str, 64)
		fb, _ := strconv.ParseFloat(b.str, 64)
		return fa == fb
	case kindArray:
		return slices.EqualFunc(a.items, b.items, jsonEqual)
	}
	if len(a.members) != len(b.members) {
		return false
	}
	for _, m := range a.members {
		o := b.get(m.name)
		if o == nil || !jsonEqual(m.val, o) {
			return false
		}
	}
	return true
}
