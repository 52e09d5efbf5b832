package descriptor

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite expected outputs of conformance vectors and golden files")

const vectorsDir = "../spec/descriptor/v1/vectors"

func vectorInputs(t *testing.T, dir string) []string {
	t.Helper()
	var inputs []string
	for _, pattern := range []string{"*.yaml", "*.json"} {
		m, err := filepath.Glob(filepath.Join(vectorsDir, dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			if !strings.HasSuffix(f, ".canonical.json") {
				inputs = append(inputs, f)
			}
		}
	}
	if len(inputs) == 0 {
		t.Fatalf("no vectors in %s", dir)
	}
	return inputs
}

// stem drops the input extension: job-full.yaml -> job-full.
func stem(path string) string { return strings.TrimSuffix(path, filepath.Ext(path)) }

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", path, got, want)
	}
}

// TestVectorsValid: every valid vector parses; its canonical bytes and
// digest are the recorded ones; formatting it as YAML and parsing that
// gives the same digest.
func TestVectorsValid(t *testing.T) {
	for _, in := range vectorInputs(t, "valid") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := Parse(filepath.Base(in), data)
			if err != nil {
				t.Fatalf("valid vector rejected:\n%v", err)
			}
			checkGolden(t, stem(in)+".canonical.json", doc.Canonical)
			checkGolden(t, stem(in)+".digest", []byte(doc.Digest+"\n"))
			formatted, err := doc.FormatYAML()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse("formatted", formatted)
			if err != nil {
				t.Fatalf("formatted document rejected:\n%v\n%s", err, formatted)
			}
			if again.Digest != doc.Digest {
				t.Errorf("formatting changed the digest: %s -> %s", doc.Digest, again.Digest)
			}
			reformatted, _ := again.FormatYAML()
			if !bytes.Equal(formatted, reformatted) {
				t.Errorf("formatting is not idempotent:\n%s\n---\n%s", formatted, reformatted)
			}
		})
	}
}

// TestVectorsSameDocument: documents written differently (YAML or JSON,
// any key order, any scalar spelling) that mean the same have one digest.
func TestVectorsSameDocument(t *testing.T) {
	for _, pair := range [][2]string{
		{"job-minimal.yaml", "job-minimal-reordered.json"},
		{"job-scalars.yaml", "job-scalars.json"},
	} {
		var digests [2]string
		for i, f := range pair {
			data, err := os.ReadFile(filepath.Join(vectorsDir, "valid", f))
			if err != nil {
				t.Fatal(err)
			}
			doc, err := Parse(f, data)
			if err != nil {
				t.Fatal(err)
			}
			digests[i] = doc.Digest
		}
		if digests[0] != digests[1] {
			t.Errorf("%s and %s have different digests: %s, %s", pair[0], pair[1], digests[0], digests[1])
		}
	}
}

// TestVectorsInvalid: every invalid vector is rejected with the recorded
// errors, each naming file, line, column and field path.
func TestVectorsInvalid(t *testing.T) {
	for _, in := range vectorInputs(t, "invalid") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(filepath.Base(in), data)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("invalid vector: got %v, want an ErrorList", err)
			}
			for _, e := range list {
				if e.File != filepath.Base(in) || e.Line < 1 || e.Col < 1 {
					t.Errorf("error without a full location: %q", e)
				}
			}
			checkGolden(t, stem(in)+".errors", []byte(list.Error()+"\n"))
		})
	}
}
