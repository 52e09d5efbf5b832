package descriptor

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// yamlLookalikes are strings that a YAML reader takes for something else
// when they are written plain: numbers in every notation, booleans and
// nulls of YAML 1.1 and 1.2, timestamps, and text with indicators.
var yamlLookalikes = []string{
	"1e-06", "1e5", "1E+3", "-1.5e-3", ".5", "5.", "+12", "0x1F", "0o17", "017", "0b101", "1_000",
	".inf", "-.Inf", ".NaN", "1:30", "190:20:30",
	"true", "False", "yes", "No", "on", "OFF", "y", "n", "null", "Null", "~", "",
	"2001-12-14", "2001-12-14t21:59:43.10-05:00",
	"- a", "a: b", "a #b", "#x", "&anchor", "*alias", "!tag", "%x", "@x", "`x", "|", ">", "[x]", "{x}",
	"'q'", "\"q\"", "?", ":", "-", "---", "...", " lead", "trail ", "tab\tin", "a\nb", "a\n b", "\u00e9t\u00e9",
	"3", "3.0", "-0", "00", "1.2.3", "1e", "e5", "12h", "4Gi",
}

// TestFormatQuotesLookalikes: every document fmt prints validates and has
// the same digest, whatever strings it carries. Random documents put the
// lookalikes, and random mixes of them, in every kind of string field.
func TestFormatQuotesLookalikes(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 5))
	pick := func() string {
		s := yamlLookalikes[rng.IntN(len(yamlLookalikes))]
		if rng.IntN(4) == 0 {
			s += yamlLookalikes[rng.IntN(len(yamlLookalikes))]
		}
		return s
	}
	for i := range 2000 {
		v := pick()
		if i < len(yamlLookalikes) {
			v = yamlLookalikes[i] // each one at least once
		}
		doc := fmt.Sprintf(`{"apiVersion":"cinet/v1","kind":"Job","metadata":{"name":"j","labels":{"l":%q}},
"tasks":[{"name":"t","image":"img","command":[%q,%q],"args":[%q],"env":{"E":%q}}],"resources":{"cpus":1}}`,
			v, v, pick(), pick(), v)
		d, err := Parse("gen.json", []byte(doc))
		if err != nil {
			if strings.Contains(err.Error(), "labels") {
				continue // label values have their own grammar
			}
			t.Fatalf("generated document refused: %v\n%s", err, doc)
		}
		checkFormatted(t, d)
	}
}

// checkFormatted: the document's formatted YAML validates and has its
// digest.
func checkFormatted(t *testing.T, d *Document) {
	t.Helper()
	y, err := d.FormatYAML()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse("formatted.yaml", y)
	if err != nil {
		t.Fatalf("formatted YAML refused: %v\n%s", err, y)
	}
	if again.Digest != d.Digest {
		t.Fatalf("formatted YAML changed the document:\nwant %s\n got %s\n%s", d.Canonical, again.Canonical, y)
	}
}
