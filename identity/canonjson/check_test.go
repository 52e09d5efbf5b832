package canonjson

import (
	"bytes"
	"testing"

	"github.com/gowebpki/jcs"
)

func TestPlainCanonical(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{}`, true},
		{`[]`, true},
		{`{"a":1,"b":[true,false,null,"x"],"c":{"d":-5}}`, true},
		{`{"a":"é\u001f\n\"\\ ","b":9007199254740992}`, true},
		{`"\u00e9"`, false}, // written raw
		{`"\u000a"`, false}, // written \n
		{`"\u001F"`, false}, // upper-case hex
		{`"\/"`, false},
		{`{"b":1,"a":2}`, false}, // order
		{`{"a":1,"a":2}`, false}, // duplicate
		{`{"a":1 }`, false},
		{` {}`, false},
		{`{}x`, false},
		{`01`, false},
		{`-0`, false},
		{`1.5`, false}, // canonical, but left to the canonicalizer
		{`1e3`, false}, // not canonical
		{`9007199254740993`, false},
		{`{"é":1}`, false}, // non-ASCII key: left to the canonicalizer
		{"\"\xff\"", false},
		{"\"a\x01\"", false},
		{`"abc`, false},
		{``, false},
		{`tru`, false},
	} {
		if got := IsCanonical([]byte(tc.in)); got != tc.want {
			t.Errorf("IsCanonical(%s) = %v, want %v", tc.in, got, tc.want)
		}
		if tc.want {
			canon, err := jcs.Transform([]byte(tc.in))
			if err != nil || !bytes.Equal(canon, []byte(tc.in)) {
				t.Errorf("table error: %s is not canonical (%s, %v)", tc.in, canon, err)
			}
		}
	}
}

// FuzzPlainCanonical: whatever IsCanonical vouches for is exactly what
// the RFC 8785 canonicalizer writes.
func FuzzPlainCanonical(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[true,null,"x\n"]}`, `{"a":{"b":{}},"c":[[],[-1]]}`, `"\u001f"`, `{"a":"\u2028"}`, `"\u007f"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !IsCanonical(b) {
			return
		}
		canon, err := jcs.Transform(b)
		if err != nil || !bytes.Equal(canon, b) {
			t.Fatalf("IsCanonical accepted %q; the canonicalizer gives %q (%v)", b, canon, err)
		}
	})
}
