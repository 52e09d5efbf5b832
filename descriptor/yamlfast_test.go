package descriptor

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sameTree returns where a and b differ, or "".
func sameTree(a, b *node, path string) string {
	switch {
	case a.kind != b.kind:
		return fmt.Sprintf("%s: kind %v, want %v", path, a.kind, b.kind)
	case a.at != b.at:
		return fmt.Sprintf("%s: at %v, want %v", path, a.at, b.at)
	case a.str != b.str || a.boolean != b.boolean:
		return fmt.Sprintf("%s: value %q %v, want %q %v", path, a.str, a.boolean, b.str, b.boolean)
	case len(a.items) != len(b.items):
		return fmt.Sprintf("%s: %d items, want %d", path, len(a.items), len(b.items))
	case len(a.members) != len(b.members):
		return fmt.Sprintf("%s: %d members, want %d", path, len(a.members), len(b.members))
	}
	for i := range a.items {
		if d := sameTree(a.items[i], b.items[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
			return d
		}
	}
	for i := range a.members {
		ma, mb := a.members[i], b.members[i]
		if ma.name != mb.name || ma.at != mb.at {
			return fmt.Sprintf("%s: member %d is %q at %v, want %q at %v", path, i, ma.name, ma.at, mb.name, mb.at)
		}
		if d := sameTree(ma.val, mb.val, path+"."+ma.name); d != "" {
			return d
		}
	}
	return ""
}

// checkFastYAML: when the fast reader takes a document, the general parser
// takes it too and builds the same tree.
func checkFastYAML(t *testing.T, name string, data []byte) bool {
	t.Helper()
	fast, ok := fastYAML(data)
	if !ok {
		return false
	}
	slow, err := decodeYAMLGeneral(data)
	if err != nil {
		t.Fatalf("%s: the fast reader took a document the general parser refuses (%v):\n%s", name, err, data)
	}
	if d := sameTree(fast, slow, "$"); d != "" {
		t.Fatalf("%s: the readers disagree at %s:\n%s", name, d, data)
	}
	return true
}

// yamlCorpus is every YAML file the repository holds: the conformance
// vectors, the examples and the importers' test files.
func yamlCorpus(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, pattern := range []string{"../spec/descriptor/v1/vectors/*/*.yaml", "../examples/*/*.yaml", "testdata/import/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = data
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d YAML files found", len(out))
	}
	return out
}

// TestFastYAMLAgrees holds the fast reader to the general parser over the
// repository's YAML files and thousands of variants of them: lines removed,
// repeated, shifted, commented, and scalars replaced by ones YAML reads as
// other types.
func TestFastYAMLAgrees(t *testing.T) {
	corpus := yamlCorpus(t)
	taken := 0
	for name, data := range corpus {
		if checkFastYAML(t, name, data) {
			taken++
		}
	}
	if taken*2 < len(corpus) {
		t.Fatalf("the fast reader took %d of %d files; it should take most", taken, len(corpus))
	}
	if _, ok := fastYAML(corpus["../examples/jobs/train-llama.yaml"]); !ok {
		t.Fatal("the fast reader does not take examples/jobs/train-llama.yaml")
	}
	rng := rand.New(rand.NewPCG(5, 8))
	variants, tookVariants := 0, 0
	for name, data := range corpus {
		lines := strings.Split(string(data), "\n")
		for range 150 {
			v := append([]string(nil), lines...)
			for range 1 + rng.IntN(2) {
				i := rng.IntN(len(v))
				switch rng.IntN(9) {
				case 0:
					v = append(v[:i], v[i+1:]...)
				case 1:
					v = append(v[:i+1], v[i:]...)
				case 2:
					v[i] = strings.Repeat(" ", 1+rng.IntN(3)) + v[i]
				case 3:
					v[i] = strings.TrimPrefix(v[i], " ")
				case 4:
					if strings.HasSuffix(v[i], ":") && rng.IntN(2) == 0 {
						v[i] += "  # a block follows"
					} else {
						v[i] += " # note"
					}
				case 5:
					if k := strings.Index(v[i], ": "); k >= 0 {
						s := yamlLookalikes[rng.IntN(len(yamlLookalikes))]
						switch rng.IntN(3) {
						case 1:
							s = fmt.Sprintf("%q", s)
						case 2:
							s = "'" + strings.ReplaceAll(s, "'", "''") + "'"
						}
						v[i] = v[i][:k+2] + s
					}
				case 6:
					v = append(v[:i], append([]string{"", "#", "  # x"}[rng.IntN(3):], v[i:]...)...)
				case 7, 8:
					// Characters beyond ASCII: columns count characters.
					u := []string{"é", "≥ 12", "中文", "\u00a0x", "a\u2028b", "\ufeff", "𝔘"}[rng.IntN(7)]
					if k := strings.Index(v[i], ": "); k >= 0 && rng.IntN(2) == 0 {
						v[i] = v[i][:k+2] + u + " " + v[i][k+2:]
					} else {
						v[i] += " # " + u
					}
				}
				if len(v) == 0 {
					v = []string{"a: 1"}
				}
			}
			variants++
			if checkFastYAML(t, name+" (variant)", []byte(strings.Join(v, "\n"))) {
				tookVariants++
			}
		}
	}
	t.Logf("the fast reader took %d of %d files and %d of %d variants", taken, len(corpus), tookVariants, variants)
}

func FuzzFastYAML(f *testing.F) {
	for _, data := range yamlCorpus(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastYAML(t, "fuzz", data)
	})
}

// TestNumberScannersMatchTheGrammar: the hand-written scanners accept what
// the YAML 1.2 core schema's expressions accept, and nothing else.
func TestNumberScannersMatchTheGrammar(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 9))
	const alphabet = "0123456789+-.eEx_ab"
	for i := range 200000 {
		b := make([]byte, 1+rng.IntN(8))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		if i < len(yamlLookalikes) {
			s = yamlLookalikes[i]
		}
		if got, want := isYAMLInt10(s), yamlInt10.MatchString(s); got != want {
			t.Fatalf("isYAMLInt10(%q) = %v, the expression says %v", s, got, want)
		}
		if got, want := isYAMLFloat(s), yamlFloat.MatchString(s); got != want {
			t.Fatalf("isYAMLFloat(%q) = %v, the expression says %v", s, got, want)
		}
	}
}
