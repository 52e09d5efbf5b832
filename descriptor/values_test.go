package descriptor

import (
	"strings"
	"testing"
	"time"
)

func TestParseQuantity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Quantity
		text string
		err  string
	}{
		{"0", 0, "0", ""},
		{"1024", 1024, "1Ki", ""},
		{"64Gi", 64 << 30, "64Gi", ""},
		{"1.5Gi", 3 << 29, "1536Mi", ""},
		{"500M", 500e6, "500M", ""},
		{"2Ti", 2 << 40, "2Ti", ""},
		{"1k", 1000, "1k", ""},
		{"1001", 1001, "1001", ""},
		{"0.3", 0, "", "whole number of bytes"},
		{"64GB", 0, "", "not a quantity"},
		{"-1Gi", 0, "", "not a quantity"},
		{"01Gi", 0, "", "not a quantity"},
		{"1e3", 0, "", "not a quantity"},
		{"9999999Pi", 0, "", "too large"},
		{"", 0, "", "not a quantity"},
	} {
		got, err := ParseQuantity(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseQuantity(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			continue
		}
		if got.String() != tc.text {
			t.Errorf("Quantity(%d).String() = %q, want %q", got, got.String(), tc.text)
		}
		if back, err := ParseQuantity(got.String()); err != nil || back != got {
			t.Errorf("String() of %q does not parse back: %v %v", tc.in, back, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		text string
		ok   bool
	}{
		{"90s", 90 * time.Second, "1m30s", true},
		{"1h30m", 90 * time.Minute, "1h30m", true},
		{"12h", 12 * time.Hour, "12h", true},
		{"250ms", 250 * time.Millisecond, "250ms", true},
		{"0s", 0, "", false},
		{"-1h", 0, "", false},
		{"1 h", 0, "", false},
		{"1d", 0, "", false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (got.Std() != tc.want || got.String() != tc.text)) {
			t.Errorf("ParseDuration(%q) = %v (%q), %v", tc.in, got.Std(), got.String(), err)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0", true}, {"2.50", true}, {"640.00", true}, {"0.0000001", true},
		{"-1", false}, {"1e3", false}, {"01", false}, {".5", false}, {"5.", false}, {"", false},
		{strings.Repeat("9", 40), true}, {strings.Repeat("9", 41), false},
	} {
		d, err := ParseDecimal(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDecimal(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && d.String() != tc.in {
			t.Errorf("ParseDecimal(%q).String() = %q: the amount must keep its written form", tc.in, d.String())
		}
	}
}

func TestVersionConstraint(t *testing.T) {
	for _, tc := range []struct {
		constraint, version string
		want                bool
	}{
		{">=12.2", "12.4", true},
		{">=12.2", "12.2.0", true},
		{">=12.2", "12.1.9", false},
		{">12", "12.0.1", true},
		{">=11.8,<13", "12.9", true},
		{">=11.8,<13", "13.0", false},
		{"==9.0", "9", true},
		{"!=8.0", "8.0", false},
		{"<=7.5", "7.5", true},
	} {
		c := MustVersionConstraint(tc.constraint)
		if got := c.Allows(MustVersion(tc.version)); got != tc.want {
			t.Errorf("%s allows %s = %v, want %v", tc.constraint, tc.version, got, tc.want)
		}
	}
	for _, bad := range []string{"12.2", ">=", ">=1.2.3.4.5", "~12", ">=a"} {
		if _, err := ParseVersionConstraint(bad); err == nil {
			t.Errorf("ParseVersionConstraint(%q) accepted", bad)
		}
	}
}

func TestVersionFloat(t *testing.T) {
	for in, want := range map[string]float64{"9.0": 9.0, "8.9": 8.9, "7.5": 7.5, "10.12": 10.12, "12": 12} {
		if got := MustVersion(in).Float(); got != want {
			t.Errorf("Version(%q).Float() = %v, want %v", in, got, want)
		}
	}
}
