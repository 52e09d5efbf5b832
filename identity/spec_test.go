package identity

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestSpecExamples checks every row of the examples table in
// spec/identifiers.md against the parsers, so the spec and the code agree.
func TestSpecExamples(t *testing.T) {
	f, err := os.Open("../spec/identifiers.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		text := strings.Trim(strings.TrimSpace(cells[1]), "`")
		valid := strings.TrimSpace(cells[2]) == "yes"
		var err error
		if strings.HasPrefix(text, "did:") {
			_, err = ParsePrincipalID(text)
		} else {
			_, err = ParseComputeID(text)
		}
		if (err == nil) != valid {
			t.Errorf("%s: spec says valid=%v, parser says %v", text, valid, err)
		}
		n++
	}
	if n < 6 {
		t.Fatalf("found %d examples in spec/identifiers.md", n)
	}
}
