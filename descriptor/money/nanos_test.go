package money

import (
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"
)

func TestNanos(t *testing.T) {
	for in, want := range map[string]Nanos{"0": 0, "1": 1e9, "0.000000001": 1, "0.0000000001": 1, "2.5": 2_500_000_000, "12345678.123456789": 12345678123456789} {
		d, _, _ := apd.NewFromString(in)
		if got := FromDecimal(d); got != want {
			t.Errorf("FromDecimal(%s) = %d, want %d", in, got, want)
		}
	}
	if got := Nanos(10e9).MulDiv(1, 3600); got != 2777778 {
		t.Errorf("10 per hour for one second = %d nanos, want 2777778 (rounded up)", got)
	}
	if got := MaxNanos.MulDiv(2, 1); got != MaxNanos {
		t.Errorf("overflow does not saturate: %d", got)
	}
	if got := Nanos(5).Add(MaxNanos); got != MaxNanos {
		t.Errorf("Add does not saturate: %d", got)
	}
	if s := Nanos(1_500_000_000).Decimal(); s != "1.5" {
		t.Errorf("Decimal = %s", s)
	}
	if !strings.Contains(MaxNanos.Decimal(), "overflow") {
		t.Error("MaxNanos prints as a number")
	}
}

func TestNanosRound(t *testing.T) {
	for _, tc := range []struct {
		n      Nanos
		places int
		want   string
	}{{12_345_000_000, 2, "12.35"}, {12_344_999_999, 2, "12.34"}, {5, 2, "0.00"}, {999_999_999, 0, "1"}, {1_500_000_000, 4, "1.5000"}} {
		if got := tc.n.Round(tc.places); got != tc.want {
			t.Errorf("%d.Round(%d) = %s, want %s", tc.n, tc.places, got, tc.want)
		}
	}
}

func TestParseNanos(t *testing.T) {
	for in, want := range map[string]Nanos{"0": 0, "12.5": 12_500_000_000, "-0.000000001": -1, "1e-9": 1, "3": 3e9} {
		got, err := ParseNanos(in)
		if err != nil || got != want {
			t.Errorf("ParseNanos(%q) = %d, %v; want %d", in, got, err, want)
		}
		if back, _ := ParseNanos(got.Decimal()); back != got {
			t.Errorf("Decimal of %d does not parse back", got)
		}
	}
	for _, bad := range []string{"0.0000000001", "abc", "NaN", "1e30"} {
		if _, err := ParseNanos(bad); err == nil {
			t.Errorf("ParseNanos(%q) accepted", bad)
		}
	}
	if _, err := MaxNanos.CheckedAdd(1); err == nil {
		t.Error("CheckedAdd overflowed silently")
	}
	if s, err := Nanos(-5).CheckedAdd(3); err != nil || s != -2 {
		t.Errorf("CheckedAdd(-5, 3) = %d, %v", s, err)
	}
}
