package settlement

import (
	"strings"
	"testing"
)

// FuzzParseAccount: an account that parses is itself, of a known kind,
// with a principal ID that prints as written.
func FuzzParseAccount(f *testing.F) {
	f.Add("tenant/" + tenantKey.ID().String())
	f.Add("clearing/did:key:z6Mk")
	f.Add("bank/x")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAccount(s)
		if err != nil {
			return
		}
		kind, id, _ := strings.Cut(s, "/")
		if string(a) != s || a.Kind() != kind || !strings.HasPrefix(id, "did:key:") {
			t.Fatalf("%q parsed as %q", s, a)
		}
	})
}
