package descriptor

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gowebpki/jcs"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cinet/cinet/spec"
)

// toAny returns the value in the form encoding/json and the schema
// validator use: map[string]any, []any, json.Number, string, bool, nil.
func (n *node) toAny() any {
	switch n.kind {
	case kindNull:
		return nil
	case kindBool:
		return n.boolean
	case kindNumber:
		return json.Number(n.str)
	case kindString:
		return n.str
	case kindArray:
		a := make([]any, len(n.items))
		for i, it := range n.items {
			a[i] = it.toAny()
		}
		return a
	case kindObject:
		m := make(map[string]any, len(n.members))
		for _, mb := range n.members {
			m[mb.name] = mb.val.toAny()
		}
		return m
	}
	panic("descriptor: unknown node kind")
}

// oracle compiles the published schemas with santhosh-tekuri/jsonschema,
// an independent JSON Schema 2020-12 implementation, with our formats.
func oracle(tb testing.TB) (job, offer *jsonschema.Schema) {
	tb.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for name, f := range schemaFormats {
		check := f.check
		c.RegisterFormat(&jsonschema.Format{Name: name, Validate: func(v any) error {
			if s, ok := v.(string); ok {
				return check(s)
			}
			return nil
		}})
	}
	for _, file := range []struct{ name, id string }{
		{"common.json", commonSchemaID}, {"job.json", jobSchemaID}, {"offer.json", offerSchemaID},
	} {
		data, err := fs.ReadFile(spec.DescriptorV1, "descriptor/v1/"+file.name)
		if err != nil {
			tb.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			tb.Fatal(err)
		}
		if err := c.AddResource(file.id, doc); err != nil {
			tb.Fatal(err)
		}
	}
	return c.MustCompile(jobSchemaID), c.MustCompile(offerSchemaID)
}

// agreeWithOracle checks that our validator and the oracle give the same
// verdict on a parsed tree, and that our canonical bytes equal jcs's.
func agreeWithOracle(t *testing.T, p *Parser, job, offer *jsonschema.Schema, data []byte) {
	tr, err := decodeTree(data)
	if err != nil || tr.root.kind != kindObject {
		return
	}
	want, werr := canonicalViaStdlib(tr.root)
	got, gerr := canonicalJSON(tr.root)
	if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("canonical form differs from jcs.Transform:\n got %s (%v)\nwant %s (%v)", got, gerr, want, werr)
	}
	kind, errs := documentKind(tr, "doc")
	if errs != nil {
		return
	}
	ours, theirs := p.schemas.job, job
	if kind == KindOffer {
		ours, theirs = p.schemas.offer, offer
	}
	v := &schemaValidator{t: tr, file: "doc"}
	v.validate(ours, tr.root, nil)
	oracleErr := theirs.Validate(tr.root.toAny())
	if (len(v.errs) == 0) != (oracleErr == nil) {
		t.Fatalf("verdicts differ on\n%s\nours: %v\noracle: %v", data, v.errs, oracleErr)
	}
}

func canonicalViaStdlib(n *node) ([]byte, error) {
	raw, err := json.Marshal(n.toAny())
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

func TestSchemaAgreesWithOracle(t *testing.T) {
	p, err := defaultParser()
	if err != nil {
		t.Fatal(err)
	}
	job, offer := oracle(t)
	files, _ := filepath.Glob(filepath.Join(vectorsDir, "*", "*"))
	examples, _ := filepath.Glob("../examples/*/*")
	n := 0
	for _, f := range append(files, examples...) {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		agreeWithOracle(t, p, job, offer, data)
		n++
	}
	if n < 50 {
		t.Fatalf("compared only %d documents", n)
	}
}

// FuzzSchemaAgreesWithOracle runs the differential check on mutated
// documents.
func FuzzSchemaAgreesWithOracle(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(vectorsDir, "*", "*"))
	for _, s := range seeds {
		if ext := filepath.Ext(s); ext == ".yaml" || ext == ".json" {
			if data, err := os.ReadFile(s); err == nil {
				f.Add(data)
			}
		}
	}
	p, err := defaultParser()
	if err != nil {
		f.Fatal(err)
	}
	job, offer := oracle(f)
	f.Fuzz(func(t *testing.T, data []byte) { agreeWithOracle(t, p, job, offer, data) })
}

// FuzzJSONParser holds our JSON parser to encoding/json: what we accept,
// encoding/json accepts with the same value; what it rejects, we reject.
func FuzzJSONParser(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":[true,false,null],"c":"x\u00e9\ud83d\ude00"}`,
		`{"n":-0.0e+10,"m":1E400}`, `{"a":"\ud800"}`, `{"a":1,"a":2}`, `{"a":[1,]}`, `{}`, `{"\u0000":"\t"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || data[0] != '{' {
			return
		}
		ours, err := decodeTree(data)
		stdValid := json.Valid(data)
		if err != nil {
			return
		}
		if !stdValid {
			t.Fatalf("we accept JSON that encoding/json rejects: %q", data)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var std any
		if err := dec.Decode(&std); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ours.root.toAny(), std) {
			t.Fatalf("values differ for %q:\nours %#v\nstd  %#v", data, ours.root.toAny(), std)
		}
	})
}
