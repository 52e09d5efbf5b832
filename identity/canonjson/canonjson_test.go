package canonjson

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// TestMarshal: Marshal equals the canonicalizer on what takes the fast
// path (sorted fields, integers, ASCII) and on what does not.
func TestMarshal(t *testing.T) {
	type sorted struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	type unsorted struct {
		B string `json:"b"`
		A int    `json:"a"`
	}
	for name, v := range map[string]any{
		"sorted":      sorted{1, "x"},
		"unsorted":    unsorted{"x", 1},
		"float":       map[string]any{"f": 1.5e21},
		"large int":   sorted{1 << 60, ""},
		"non-ASCII":   sorted{0, "é\u2028<&>"},
		"control":     sorted{0, "a\x01\n"},
		"unicode key": map[string]int{"\U0001F600": 1, "\uE000": 2, "a": 3},
	} {
		got, err := Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(v)
		want, err := jcs.Transform(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %s, want %s", name, got, want)
		}
	}
}

// FuzzAppendString: a string written by AppendString, as a member name
// too, is what the canonicalizer writes, and CompareKeys orders keys as it
// does.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "é\u2028", "\x00\x1f\x7f\"\\", "\U0001F600", "\uE000"} {
		f.Add(s, "b")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) || a == b {
			return
		}
		first, second := a, b
		if CompareKeys(a, b) > 0 {
			first, second = b, a
		}
		var out []byte
		out = append(out, '{')
		out = AppendString(out, first)
		out = append(out, ":1,"...)
		out = AppendString(out, second)
		out = append(out, ":2}"...)
		want, err := jcs.Transform(out)
		if err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("got %s, want %s", out, want)
		}
	})
}
