package descriptor

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// An Import is a document converted from another system's format.
type Import struct {
	Document *Document
	// Warnings name each input field that has no meaning in v1, or only
	// part of one, and say what became of it.
	Warnings []Warning
}

// A Warning reports an input field the conversion dropped or changed.
type Warning struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (w Warning) String() string {
	loc := w.File
	if w.Line > 0 {
		loc = fmt.Sprintf("%s:%d", w.File, w.Line)
	}
	return fmt.Sprintf("%s: %s: %s", loc, w.Field, w.Msg)
}

// importer collects the job being built, warnings and errors.
type importer struct {
	file     string
	job      map[string]any
	warnings []Warning
	errs     ErrorList
	// cur is the line of the input being converted; set records it for
	// each path it writes, so that an error in the converted job points
	// at the user's line, not at the converted form.
	cur   int
	lines map[string]int
}

func newImporter(file string) *importer {
	return &importer{file: file, job: map[string]any{"apiVersion": APIVersion, "kind": KindJob}, lines: map[string]int{}}
}

func (im *importer) warn(line int, field, format string, args ...any) {
	im.warnings = append(im.warnings, Warning{File: im.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (im *importer) fail(line, col int, field, format string, args ...any) {
	im.errs = append(im.errs, &Error{File: im.file, Line: line, Col: col, Path: field, Msg: fmt.Sprintf(format, args...)})
}

// set puts v at a dotted path in the job, creating objects on the way.
func (im *importer) set(path string, v any) {
	if im.cur > 0 {
		im.lines[path] = im.cur
	}
	parts := strings.Split(path, ".")
	m := im.job
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// finish validates the converted job; a conversion always yields a valid
// v1 document or an error.
func (im *importer) finish() (*Import, error) {
	if len(im.errs) > 0 {
		return nil, im.errs.sortAndDedup()
	}
	raw, err := json.Marshal(im.job)
	if err != nil {
		return nil, fmt.Errorf("descriptor: encoding the converted job: %w", err)
	}
	doc, err := Parse(im.file, raw)
	if err != nil {
		var list ErrorList
		if !errors.As(err, &list) {
			return nil, err
		}
		out := make(ErrorList, 0, len(list))
		for _, e := range list {
			c := *e
			c.Line, c.Col = im.lineOf(e.Path), 1
			c.Msg = e.Msg + " (in the converted job)"
			out = append(out, &c)
		}
		return nil, out.sortAndDedup()
	}
	sort.SliceStable(im.warnings, func(i, j int) bool { return im.warnings[i].Line < im.warnings[j].Line })
	return &Import{Document: doc, Warnings: im.warnings}, nil
}

// lineOf returns the input line that wrote the converted job's path
// ("resources.accelerators[0].model"), or of its nearest written parent;
// 1 when none is known.
func (im *importer) lineOf(path string) int {
	p := indexSuffix.ReplaceAllString(path, "")
	for p != "" {
		if l, ok := im.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = indexSuffix.ReplaceAllString(p[:i], "")
	}
	return 1
}

var indexSuffix = regexp.MustCompile(`\[\d+\]`)

var nameCleaner = regexp.MustCompile(`[^a-z0-9.-]+`)

// cleanName turns a name from another system into a v1 name.
func cleanName(s string) string {
	s = nameCleaner.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "-.")
	if len(s) > 63 {
		s = strings.Trim(s[:63], "-.")
	}
	return s
}

// setName sets metadata.name, warning when the name had to change.
func (im *importer) setName(line int, field, name, fallback string) {
	clean := cleanName(name)
	if clean == "" {
		clean = fallback
	}
	if name != "" && clean != name {
		im.warn(line, field, "name %q became %q (v1 names are lowercase letters, digits, '.' and '-')", name, clean)
	}
	im.set("metadata.name", clean)
}
