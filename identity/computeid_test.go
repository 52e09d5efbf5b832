package identity

import (
	"strings"
	"testing"
)

func TestComputeIDRoundTrip(t *testing.T) {
	k := testKey(t, 7)
	c, err := NewComputeID(k.ID(), "cn-east-1", "a", "h100-spot")
	if err != nil {
		t.Fatal(err)
	}
	if !c.OwnedBy(k.ID()) || c.OwnedBy(testKey(t, 8).ID()) {
		t.Fatal("OwnedBy does not tell owners apart")
	}
	withAlias, err := c.WithAlias("cn-nci", "0310-9A.x_1")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []ComputeID{c, withAlias} {
		s := id.String()
		back, err := ParseComputeID(s)
		if err != nil {
			t.Fatalf("ParseComputeID(%s): %v", s, err)
		}
		if back != id {
			t.Fatalf("round trip of %s gave %+v", s, back)
		}
		if back.Name() != c.Name() {
			t.Fatalf("Name() of %s = %s, want %s", s, back.Name(), c.Name())
		}
	}
	if !strings.HasSuffix(withAlias.String(), ";cn-nci=0310-9A.x_1") {
		t.Fatalf("alias text form: %s", withAlias)
	}
}

func TestParseComputeIDRejects(t *testing.T) {
	fp := ProviderFingerprint(testKey(t, 9).ID())
	base := "ci:" + fp
	long := strings.Repeat("a", 33)
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "must start with"},
		{"scheme case", "CI:" + fp + "/r/z/p", "must start with"},
		{"three segments", base + "/r/z", "got 3 segments"},
		{"five segments", base + "/r/z/p/q", "got 5 segments"},
		{"uppercase region", base + "/CN-east/z/p", "only lowercase"},
		{"leading hyphen", base + "/-r/z/p", "inner hyphens"},
		{"trailing hyphen", base + "/r/z-/p", "inner hyphens"},
		{"empty zone", base + "/r//p", "zone is empty"},
		{"long region", base + "/" + long + "/z/p", "longer than 32"},
		{"short fingerprint", "ci:" + fp[:25] + "/r/z/p", "26 base32"},
		{"fingerprint alphabet", "ci:" + fp[:25] + "1/r/z/p", "not lowercase base32"},
		{"fingerprint padding bits", "ci:" + fp[:25] + "z/r/z/p", "not lowercase base32"},
		{"alias without code", base + "/r/z/p;cn-nci", "alias must be"},
		{"alias empty code", base + "/r/z/p;cn-nci=", "alias code is empty"},
		{"alias bad char", base + "/r/z/p;cn-nci=a/b", "alias code"},
		{"empty alias", base + "/r/z/p;=", "empty alias"},
		{"too long", base + "/" + strings.Repeat("a", 300), "longer than the maximum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseComputeID(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseComputeID(%q) = %v, want error containing %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestComputeIDMaxLength(t *testing.T) {
	c := ComputeID{
		Provider:    ProviderFingerprint(testKey(t, 10).ID()),
		Region:      strings.Repeat("r", maxRegionLen),
		Zone:        strings.Repeat("z", maxZoneLen),
		Pool:        strings.Repeat("p", maxPoolLen),
		AliasScheme: strings.Repeat("s", maxAliasSchemeLen),
		AliasCode:   strings.Repeat("C", maxAliasCodeLen),
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if n := len(c.String()); n != MaxComputeIDLen {
		t.Fatalf("longest identifier is %d characters, MaxComputeIDLen is %d", n, MaxComputeIDLen)
	}
	if _, err := ParseComputeID(c.String()); err != nil {
		t.Fatalf("longest identifier rejected: %v", err)
	}
}

func FuzzParseComputeID(f *testing.F) {
	fp := ProviderFingerprint(testKey(f, 11).ID())
	for _, s := range []string{
		"ci:" + fp + "/cn-east-1/a/h100-spot",
		"ci:" + fp + "/us-west-2/b/cpu;cn-nci=12.AB-3",
		"ci:" + fp + "/r/z/p;=x",
		"ci:/a/b/c",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseComputeID(s)
		if err != nil {
			return
		}
		if got := c.String(); got != s {
			t.Fatalf("accepted %q but formats it as %q", s, got)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted %q but Validate says %v", s, err)
		}
		if len(s) > MaxComputeIDLen {
			t.Fatalf("accepted %d characters, above the maximum", len(s))
		}
	})
}
