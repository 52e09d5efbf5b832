package descriptor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
)

// A Document is a parsed, valid v1 document with its canonical form.
type Document struct {
	Kind  string // KindJob or KindOffer
	Job   *Job   // set when Kind is KindJob
	Offer *Offer // set when Kind is KindOffer

	// Canonical is the RFC 8785 (JCS) form of the document as written,
	// before defaults; every broker derives the same bytes from the same
	// document, whether it arrived as YAML or JSON and in any key order.
	Canonical []byte
	// Digest is "sha256:" and the hex SHA-256 of Canonical.
	Digest string

	tree *tree
}

// A Parser parses and validates documents. It is safe for concurrent use.
type Parser struct {
	schemas *schemaSet
	exprs   *exprCompiler
}

// NewParser loads the embedded schemas and the expression environment.
func NewParser() (*Parser, error) {
	s, err := loadSchemaSet()
	if err != nil {
		return nil, err
	}
	e, err := newExprCompiler()
	if err != nil {
		return nil, err
	}
	return &Parser{schemas: s, exprs: e}, nil
}

var defaultParser = sync.OnceValues(NewParser)

// Parse parses and validates a document with the default parser; see
// Parser.Parse.
func Parse(file string, data []byte) (*Document, error) {
	p, err := defaultParser()
	if err != nil {
		return nil, err
	}
	return p.Parse(file, data)
}

// ParseJob is Parse for documents that must be Jobs.
func ParseJob(file string, data []byte) (*Document, error) {
	return parseKind(file, data, KindJob)
}

// ParseOffer is Parse for documents that must be Offers.
func ParseOffer(file string, data []byte) (*Document, error) {
	return parseKind(file, data, KindOffer)
}

func parseKind(file string, data []byte, want string) (*Document, error) {
	d, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	if d.Kind != want {
		return nil, ErrorList{located(d.tree, file, at("kind"), fmt.Sprintf("must be %q here, got %q", want, d.Kind))}
	}
	return d, nil
}

// Parse parses a YAML or JSON document (JSON when its first significant
// character is '{'), validates it against the schema of its kind and the
// rules of spec/descriptor-v1.md, compiles its expressions, and computes
// its canonical form and digest. file names the document in errors. The
// error, if any, is an ErrorList with one located entry per problem.
func (p *Parser) Parse(file string, data []byte) (*Document, error) {
	t, err := decodeTree(data)
	if err != nil {
		se := err.(*syntaxError)
		return nil, ErrorList{{File: file, Line: se.pos.Line, Col: se.pos.Col, Msg: se.msg}}
	}
	if t.root.kind != kindObject {
		pos := t.pos(t.root.at)
		return nil, ErrorList{{File: file, Line: pos.Line, Col: pos.Col, Msg: fmt.Sprintf("a document must be an object (a mapping), got %s", article(t.root.kind.String()))}}
	}
	kind, errs := documentKind(t, file)
	if errs != nil {
		return nil, errs
	}
	sch := p.schemas.job
	if kind == KindOffer {
		sch = p.schemas.offer
	}
	v := &schemaValidator{t: t, file: file}
	v.validate(sch, t.root, nil)
	if len(v.errs) > 0 {
		return nil, v.errs.sortAndDedup()
	}
	canonical, err := canonicalJSON(t.root)
	if err != nil {
		return nil, fmt.Errorf("descriptor: internal error: canonicalizing a validated document: %w", err)
	}
	sum := sha256.Sum256(canonical)
	doc := &Document{Kind: kind, Canonical: canonical, Digest: "sha256:" + hex.EncodeToString(sum[:]), tree: t}

	c := &checker{tree: t, file: file}
	switch kind {
	case KindJob:
		doc.Job = new(Job)
		if err := decodeInto(t.root, doc.Job); err != nil {
			return nil, err
		}
		c.job(doc.Job, p.exprs)
		doc.Job.applyDefaults()
	case KindOffer:
		doc.Offer = new(Offer)
		if err := decodeInto(t.root, doc.Offer); err != nil {
			return nil, err
		}
		c.offer(doc.Offer)
		doc.Offer.applyDefaults()
		if loc, err := loadLocation(doc.Offer.Price.Timezone); err == nil {
			doc.Offer.Price.location = loc
		}
	}
	if len(c.errs) > 0 {
		return nil, c.errs.sortAndDedup()
	}
	return doc, nil
}

// documentKind reads kind and apiVersion before the schema is chosen, so
// that a wrong kind or version gets one clear error rather than many.
func documentKind(t *tree, file string) (string, ErrorList) {
	fail := func(loc []string, msg string) (string, ErrorList) {
		return "", ErrorList{located(t, file, loc, msg)}
	}
	if v := t.root.get("apiVersion"); v != nil && (v.kind != kindString || v.str != APIVersion) {
		return fail(at("apiVersion"), fmt.Sprintf("unsupported apiVersion %s; this version of cinet reads %q", describeValue(v), APIVersion))
	}
	k := t.root.get("kind")
	switch {
	case k == nil:
		err := located(t, file, at("kind"), fmt.Sprintf("required field is missing; want %q or %q", KindJob, KindOffer))
		pos := t.pos(t.root.at)
		err.Line, err.Col = pos.Line, pos.Col
		return "", ErrorList{err}
	case k.kind != kindString || (k.str != KindJob && k.str != KindOffer):
		return fail(at("kind"), fmt.Sprintf("must be %q or %q, got %s", KindJob, KindOffer, describeValue(k)))
	}
	return k.str, nil
}

// String returns a short description for logs: kind, name and digest.
func (d *Document) String() string {
	name := ""
	switch {
	case d.Job != nil:
		name = d.Job.Metadata.Name
	case d.Offer != nil:
		name = d.Offer.Metadata.Name
	}
	return d.Kind + " " + strconv.Quote(name) + " " + d.Digest
}
