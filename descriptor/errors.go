package descriptor

import (
	"fmt"
	"sort"
	"strings"
)

// An Error is one problem with a document, located by file, line, column
// and field path:
//
//	job.yaml:14:7: resources.accelerators[0].count: must be ≥ 1, got 0
type Error struct {
	File string
	Line int // 1-based; 0 when the problem has no position
	Col  int // 1-based, in characters
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Col)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// An ErrorList is every problem found in one document, in source order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortAndDedup orders errors by position then path and drops repeats.
func (l ErrorList) sortAndDedup() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Path < b.Path
	})
	out := l[:0]
	for i, e := range l {
		if i > 0 && *e == *l[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// A Pos is a 1-based line and column in a source document.
type Pos struct{ Line, Col int }
