//go:build linux

package local

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDeniedSyscallsSpecified holds spec/jobs.md §8's table to the filter:
// every system call denied is listed there, and every one listed is
// denied.
func TestDeniedSyscallsSpecified(t *testing.T) {
	doc, err := os.ReadFile("../../spec/jobs.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## 8. The local adapter's sandbox")
	if !ok {
		t.Fatal("spec/jobs.md has no §8")
	}
	var specified []string
	for line := range strings.SplitSeq(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		cell, _, _ = strings.Cut(cell, ";") // "clone with CLONE_NEWUSER" is the filter's clone rule
		for _, m := range regexp.MustCompile("`([a-z_0-9]+)`").FindAllStringSubmatch(cell, -1) {
			specified = append(specified, m[1])
		}
	}
	var denied []string
	for _, g := range deniedSyscalls {
		denied = append(denied, g.names...)
	}
	slices.Sort(specified)
	slices.Sort(denied)
	if !slices.Equal(specified, denied) {
		t.Fatalf("spec/jobs.md §8 lists %v\nthe filter denies %v", specified, denied)
	}
	// And the filter assembles on this machine's architecture.
	f := taskFilter()
	if _, err := f.Policy.Assemble(); err != nil {
		t.Fatal(err)
	}
}
