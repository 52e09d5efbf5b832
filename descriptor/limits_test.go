package descriptor

import (
	"fmt"
	"strings"
	"testing"
)

// hostileDocuments are documents built to make a parser spend time or
// memory out of proportion to their size. Each must be refused with an
// error that names the problem.
func hostileDocuments() map[string]struct{ doc, want string } {
	head := "apiVersion: cinet/v1\nkind: Job\nmetadata:\n  name: x\n  labels: "
	jhead := `{"apiVersion":"cinet/v1","kind":"Job","metadata":{"name":"x","labels":`
	var indent strings.Builder
	indent.WriteString(head + "\n")
	for i := range 200 {
		fmt.Fprintf(&indent, "%sk%d:\n", strings.Repeat(" ", 4+i), i)
	}
	return map[string]struct{ doc, want string }{
		"yaml-flow-nesting":    {head + strings.Repeat("[", 200000), "nested more than"},
		"yaml-mapping-nesting": {head + strings.Repeat("{a: ", 100000), "nested more than"},
		"yaml-dash-nesting":    {head + "\n    " + strings.Repeat("- ", 200000) + "x\n", "nested more than"},
		"yaml-indent-nesting":  {indent.String(), "nested more than"},
		"yaml-wide":            {head + "[" + strings.Repeat("1,", 200000) + "1]\n", "more than 20000 values"},
		"json-nesting":         {jhead + strings.Repeat("[", 200000), "nested more than"},
		"json-wide":            {jhead + "[" + strings.Repeat("1,", 200000) + "1]}}", "more than 20000 values"},
		"too-large":            {head + strings.Repeat("x", MaxDocumentSize), "larger than"},
	}
}

func TestHostileDocuments(t *testing.T) {
	for name, tc := range hostileDocuments() {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("job.yaml", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestDeepestAccepted: a document at the depth limit is accepted by the
// pre-parse check (its bound is twice the tree's), and one past it is
// refused by the tree, with the same message.
func TestDepthAtTheLimit(t *testing.T) {
	for _, n := range []int{maxDepth - 3, maxDepth + 5} {
		doc := "apiVersion: cinet/v1\nkind: Job\nmetadata:\n  name: x\n  labels:\n    a: " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"
		_, err := Parse("job.yaml", []byte(doc))
		if err == nil || (n < maxDepth) == strings.Contains(err.Error(), "nested") {
			t.Errorf("depth %d: %v", n, err)
		}
	}
}

// BenchmarkHostile reports what refusing each hostile document costs, and
// what the worst documents the limits still accept cost to parse.
func BenchmarkHostile(b *testing.B) {
	docs := map[string]string{}
	for name, tc := range hostileDocuments() {
		docs["refused/"+name] = tc.doc
	}
	// Accepted at the limits: as wide as allowed, as deep as allowed, and
	// as large as allowed (one long string).
	tasks := func(n int, task func(i int) string) string {
		var b strings.Builder
		b.WriteString("apiVersion: cinet/v1\nkind: Job\nmetadata:\n  name: x\ntasks:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - name: t%d\n    command: %s\n", i, task(i))
		}
		return b.String()
	}
	docs["accepted/yaml-wide"] = tasks(60, func(int) string { return "[" + strings.Repeat("a,", 149) + "a]" })
	var js strings.Builder
	js.WriteString(`{"apiVersion":"cinet/v1","kind":"Job","metadata":{"name":"x"},"tasks":[`)
	for i := range 64 {
		fmt.Fprintf(&js, `{"name":"t%d","command":[%s"a"]},`, i, strings.Repeat(`"a",`, 255))
	}
	docs["accepted/json-wide"] = strings.TrimSuffix(js.String(), ",") + "]}"
	docs["accepted/yaml-large"] = tasks(15, func(int) string { return "['" + strings.Repeat("a", 65000) + "']" })
	for _, name := range []string{"refused/yaml-flow-nesting", "refused/yaml-mapping-nesting", "refused/yaml-dash-nesting",
		"refused/yaml-indent-nesting", "refused/yaml-wide", "refused/json-nesting", "refused/json-wide", "refused/too-large",
		"accepted/yaml-wide", "accepted/json-wide", "accepted/yaml-large"} {
		doc := []byte(docs[name])
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				_, err := Parse("job.yaml", doc)
				if strings.HasPrefix(name, "accepted") && err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
