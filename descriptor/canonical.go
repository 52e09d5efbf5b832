package descriptor

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/cinet/cinet/identity/canonjson"
)

// canonicalJSON writes the tree in RFC 8785 (JCS) form: members sorted by
// the UTF-16 code units of their names, strings escaped as ECMAScript's
// JSON.stringify does, numbers in ECMAScript's shortest round-trip form
// (jcs.NumberToJSON), no insignificant white space.
func canonicalJSON(n *node) ([]byte, error) {
	b, err := appendCanonical(make([]byte, 0, 1024), n)
	if err != nil {
		return nil, err
	}
	// Offer books keep the canonical bytes of every offer: keep no slack.
	return append([]byte(nil), b...), nil
}

func appendCanonical(b []byte, n *node) ([]byte, error) {
	switch n.kind {
	case kindNull:
		return append(b, "null"...), nil
	case kindBool:
		return strconv.AppendBool(b, n.boolean), nil
	case kindNumber:
		f, err := strconv.ParseFloat(n.str, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %v", n.str, err)
		}
		out, err := canonjson.AppendNumber(b, f)
		if err != nil {
			return nil, fmt.Errorf("number %s: %v", n.str, err)
		}
		return out, nil
	case kindString:
		return canonjson.AppendString(b, n.str), nil
	case kindArray:
		b = append(b, '[')
		for i, it := range n.items {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendCanonical(b, it); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	members := n.members
	if !slices.IsSortedFunc(members, compareMembers) {
		members = slices.Clone(members)
		slices.SortFunc(members, compareMembers)
	}
	b = append(b, '{')
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = canonjson.AppendString(b, m.name)
		b = append(b, ':')
		var err error
		if b, err = appendCanonical(b, m.val); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func compareMembers(a, b member) int { return canonjson.CompareKeys(a.name, b.name) }
