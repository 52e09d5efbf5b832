package descriptor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // every broker resolves price-schedule time zones alike

	"github.com/cinet/cinet/identity"
)

// Schema URNs, the $id of each file in spec/descriptor/v1.
const (
	commonSchemaID = "urn:cinet:descriptor:v1:common"
	jobSchemaID    = "urn:cinet:descriptor:v1:job"
	offerSchemaID  = "urn:cinet:descriptor:v1:offer"
)

// formats are the checks a pattern cannot express; the schemas name them,
// and validators that do not know them treat them as annotations.
var schemaFormats = map[string]*schemaFormat{
	"cinet-quantity":           stringFormat(func(s string) error { _, err := ParseQuantity(s); return err }),
	"cinet-duration":           stringFormat(func(s string) error { _, err := ParseDuration(s); return err }),
	"cinet-decimal":            stringFormat(func(s string) error { _, err := ParseDecimal(s); return err }),
	"cinet-version":            stringFormat(func(s string) error { _, err := ParseVersion(s); return err }),
	"cinet-version-constraint": stringFormat(func(s string) error { _, err := ParseVersionConstraint(s); return err }),
	"cinet-currency": stringFormat(func(s string) error {
		if !IsCurrency(s) {
			return fmt.Errorf("%q is not an ISO 4217 currency code", s)
		}
		return nil
	}),
	"cinet-jurisdiction": stringFormat(func(s string) error {
		if !IsJurisdiction(s) {
			return fmt.Errorf("%q is not an ISO 3166 country or subdivision code", s)
		}
		return nil
	}),
	"cinet-principal-id": stringFormat(func(s string) error {
		_, err := identity.ParsePrincipalID(s)
		return trimPrefixErr(err)
	}),
	"cinet-compute-id": stringFormat(func(s string) error {
		_, err := identity.ParseComputeID(s)
		return trimPrefixErr(err)
	}),
	"cinet-accelerator-model": stringFormat(func(s string) error {
		if _, ok := LookupAccelerator(s); !ok {
			return errors.New(unknownModelError(s))
		}
		return nil
	}),
	"cinet-timestamp": stringFormat(func(s string) error {
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("%q is not a valid time", s)
		}
		return nil
	}),
	"cinet-timezone": stringFormat(func(s string) error {
		if _, err := loadLocation(s); err != nil || s == "Local" {
			return fmt.Errorf("%q is not an IANA time zone name", s)
		}
		return nil
	}),
}

// A schemaFormat checks a string value the schema marks with "format".
type schemaFormat struct {
	check func(string) error
}

func stringFormat(check func(string) error) *schemaFormat { return &schemaFormat{check} }

func trimPrefixErr(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(strings.TrimPrefix(err.Error(), "identity: "))
}

// located builds an Error for the value at loc. Errors point at the key of
// the field they concern, or at the item for an array element.
func located(t *tree, file string, loc []string, msg string) *Error {
	path, pos := describePath(t, loc)
	return &Error{File: file, Line: pos.Line, Col: pos.Col, Path: path, Msg: msg}
}

// lookup walks the tree along a JSON Pointer's tokens, stopping at the
// deepest node that exists.
func lookup(tree *node, loc []string) *node {
	n := tree
	for _, tok := range loc {
		next := child(n, tok)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

func child(n *node, tok string) *node {
	switch n.kind {
	case kindObject:
		return n.get(tok)
	case kindArray:
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i >= len(n.items) {
			return nil
		}
		return n.items[i]
	}
	return nil
}

// describePath renders loc as "resources.accelerators[0].count" and finds
// the position to report: the key of the last field, or the last item.
func describePath(t *tree, loc []string) (string, Pos) {
	var b strings.Builder
	n, at := t.root, t.root.at
	for _, tok := range loc {
		if n != nil && n.kind == kindArray {
			b.WriteString("[" + tok + "]")
			n = child(n, tok)
			if n != nil {
				at = n.at
			}
			continue
		}
		if isIdentifier(tok) {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(tok)
		} else {
			b.WriteString("[" + strconv.Quote(tok) + "]")
		}
		if n != nil && n.kind == kindObject {
			found := false
			for _, m := range n.members {
				if m.name == tok {
					n, at, found = m.val, m.at, true
					break
				}
			}
			if !found {
				n = nil
			}
		} else {
			n = nil
		}
	}
	return b.String(), t.pos(at)
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func describeValue(v *node) string {
	switch v.kind {
	case kindString:
		return strconv.Quote(truncateText(v.str))
	case kindNumber:
		return v.str
	case kindBool:
		return strconv.FormatBool(v.boolean)
	case kindNull:
		return "null"
	}
	return article(v.kind.String())
}

func truncateText(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func article(jsonType string) string {
	switch jsonType {
	case "integer", "object", "array":
		return "an " + jsonType
	case "null":
		return "null"
	}
	return "a " + jsonType
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// nearest returns the candidate within edit distance 2 of s, if any.
func nearest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
