package descriptor

import "testing"

func TestISOTables(t *testing.T) {
	if n := len(countries); n != 249 {
		t.Errorf("ISO 3166-1 has 249 alpha-2 codes, table has %d", n)
	}
	for _, tc := range []struct {
		code string
		want bool
	}{
		{"CN", true}, {"US", true}, {"EU", true}, {"CN-GD", true}, {"DE-BY", true},
		{"XX", false}, {"EU-AB", false}, {"cn", false}, {"CN-", false},
	} {
		if got := IsJurisdiction(tc.code); got != tc.want {
			t.Errorf("IsJurisdiction(%q) = %v, want %v", tc.code, got, tc.want)
		}
	}
	for _, tc := range []struct {
		code string
		want bool
	}{{"USD", true}, {"CNY", true}, {"EUR", true}, {"XAU", false}, {"XTS", false}, {"ABC", false}} {
		if got := IsCurrency(tc.code); got != tc.want {
			t.Errorf("IsCurrency(%q) = %v, want %v", tc.code, got, tc.want)
		}
	}
}
