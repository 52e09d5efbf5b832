package descriptor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/*")
	n := 0
	for _, f := range files {
		ext := filepath.Ext(f)
		if ext != ".yaml" && ext != ".json" || filepath.Base(filepath.Dir(f)) == "import" {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(filepath.Base(f), data); err != nil {
				t.Fatalf("%v", err)
			}
		})
	}
	if n < 5 {
		t.Fatalf("found only %d examples", n)
	}
}
