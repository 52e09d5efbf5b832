// Package money holds amounts of money as exact fixed-point decimals: an
// integer count of billionths of a currency unit (spec/rating.md §1).
// Money never travels or computes as a float.
package money

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/cockroachdb/apd/v3"
)

// Nanos is an amount of money in billionths of a currency unit: exact
// fixed-point decimal arithmetic on integers. Matching estimates cost in
// Nanos; the settlement ledger keeps its amounts in Nanos.
type Nanos int64

// MaxNanos stands for "more than can be represented": arithmetic saturates
// to it rather than wrapping.
const MaxNanos = Nanos(math.MaxInt64)

const nanosPerUnit = 1_000_000_000

// FromDecimal converts a non-negative decimal to Nanos, rounding a
// fraction of a nano up so that estimates never understate a price.
func FromDecimal(d *apd.Decimal) Nanos {
	var scaled apd.Decimal
	ctx := apd.BaseContext.WithPrecision(60)
	ctx.Rounding = apd.RoundCeiling
	if _, err := ctx.Mul(&scaled, d, apd.New(nanosPerUnit, 0)); err != nil {
		return MaxNanos
	}
	var whole apd.Decimal
	if _, err := ctx.RoundToIntegralValue(&whole, &scaled); err != nil {
		return MaxNanos
	}
	i, err := whole.Int64()
	if err != nil || i < 0 {
		return MaxNanos
	}
	return Nanos(i)
}

// Add returns a+b, saturating at MaxNanos.
func (a Nanos) Add(b Nanos) Nanos {
	s, carry := bits.Add64(uint64(a), uint64(b), 0)
	if carry != 0 || s > uint64(MaxNanos) {
		return MaxNanos
	}
	return Nanos(s)
}

// Mul returns a×n, saturating at MaxNanos.
func (a Nanos) Mul(n int64) Nanos {
	if a < 0 || n < 0 {
		panic("descriptor: Mul of negative amounts")
	}
	hi, lo := bits.Mul64(uint64(a), uint64(n))
	if hi != 0 || lo > uint64(MaxNanos) {
		return MaxNanos
	}
	return Nanos(lo)
}

// MulDiv returns a×m/d rounded up, saturating at MaxNanos. It prices a rate
// per hour (d = 3600) over m seconds without losing precision.
func (a Nanos) MulDiv(m, d int64) Nanos {
	if a < 0 || m < 0 || d <= 0 {
		panic("descriptor: MulDiv of negative amounts")
	}
	hi, lo := bits.Mul64(uint64(a), uint64(m))
	if hi >= uint64(d) {
		return MaxNanos
	}
	q, r := bits.Div64(hi, lo, uint64(d))
	if r != 0 {
		q++
	}
	if q > uint64(MaxNanos) {
		return MaxNanos
	}
	return Nanos(q)
}

// Decimal returns the amount as a decimal string with up to nine places:
// "12.5", "-0.000000001".
func (a Nanos) Decimal() string {
	if a == MaxNanos {
		return "overflow"
	}
	sign, v := "", uint64(a)
	if a < 0 {
		sign, v = "-", uint64(-a)
	}
	s := sign + strconv.FormatUint(v/nanosPerUnit, 10)
	frac := v % nanosPerUnit
	if frac == 0 {
		return s
	}
	return s + "." + strings.TrimRight(fmt.Sprintf("%09d", frac), "0")
}

// ParseNanos reads a decimal with at most nine places ("-12.5").
func ParseNanos(s string) (Nanos, error) {
	d, _, err := apd.NewFromString(s)
	if err != nil || d.Form != apd.Finite {
		return 0, fmt.Errorf("%q is not a decimal amount", s)
	}
	var scaled apd.Decimal
	ctx := apd.BaseContext.WithPrecision(60)
	if _, err := ctx.Mul(&scaled, d, apd.New(nanosPerUnit, 0)); err != nil {
		return 0, fmt.Errorf("%q: %v", s, err)
	}
	var whole apd.Decimal
	if _, err := ctx.RoundToIntegralExact(&whole, &scaled); err != nil || whole.Cmp(&scaled) != 0 {
		return 0, fmt.Errorf("%q has more than nine decimal places", s)
	}
	i, err := whole.Int64()
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Nanos(i), nil
}

// UnmarshalText reads a decimal amount.
func (a *Nanos) UnmarshalText(b []byte) error {
	n, err := ParseNanos(string(b))
	if err != nil {
		return err
	}
	*a = n
	return nil
}

// CheckedAdd returns a+b, or an error if the sum does not fit.
func (a Nanos) CheckedAdd(b Nanos) (Nanos, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, fmt.Errorf("amount overflows: %s + %s", a.Decimal(), b.Decimal())
	}
	return s, nil
}

// MarshalText writes the amount as a decimal string; money never travels
// as a JSON number.
func (a Nanos) MarshalText() ([]byte, error) { return []byte(a.Decimal()), nil }

// Round returns the amount as a decimal with exactly places decimals
// (0 to 9), rounding half up: for display.
func (a Nanos) Round(places int) string {
	if a == MaxNanos {
		return "overflow"
	}
	places = min(max(places, 0), 9)
	unit := int64(1)
	for range 9 - places {
		unit *= 10
	}
	v := (int64(a) + unit/2) / unit
	if places == 0 {
		return strconv.FormatInt(v, 10)
	}
	scale := int64(1)
	for range places {
		scale *= 10
	}
	return fmt.Sprintf("%d.%0*d", v/scale, places, v%scale)
}

// String is Decimal, so that amounts print as the decimals they are.
func (a Nanos) String() string { return a.Decimal() }
