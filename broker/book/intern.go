package book

import (
	"slices"
	"strconv"
	"strings"
)

// interned shares values that many offers hold alike — zones, markets,
// processor names, labels, installed frameworks — so that the book keeps
// one copy of each. It counts the entries holding a value and forgets the
// value with its last holder, so that a peer publishing ever different
// values cannot grow the table beyond the offers the book holds.
type interned[V any] struct{ m map[string]*held[V] }

type held[V any] struct {
	v V
	n int32
}

// hold returns the shared value under key (v when there is none yet) and
// counts one more holder.
func (t *interned[V]) hold(key string, v V) V {
	if h, ok := t.m[key]; ok {
		h.n++
		return h.v
	}
	if t.m == nil {
		t.m = map[string]*held[V]{}
	}
	t.m[key] = &held[V]{v: v, n: 1}
	return v
}

// release counts one holder of key fewer.
func (t *interned[V]) release(key string) {
	h, ok := t.m[key]
	if !ok {
		return
	}
	if h.n--; h.n <= 0 {
		delete(t.m, key)
	}
}

// len returns how many distinct values the table holds.
func (t *interned[V]) len() int { return len(t.m) }

// strs interns strings.
type strs struct{ interned[string] }

func (t *strs) hold(s string) string {
	if s == "" {
		return ""
	}
	return t.interned.hold(s, s)
}

func (t *strs) release(s string) {
	if s != "" {
		t.interned.release(s)
	}
}

// stringMaps interns the small string maps offers carry. Nothing writes to
// a map once an offer is parsed.
type stringMaps struct{ interned[map[string]string] }

func (t *stringMaps) hold(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return t.interned.hold(mapKey(m), m)
}

func (t *stringMaps) release(m map[string]string) {
	if m != nil {
		t.interned.release(mapKey(m))
	}
}

// mapKey is a map's contents as a string, the same for equal maps.
func mapKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		keys = append(keys, strconv.Quote(k)+"="+strconv.Quote(v))
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}
