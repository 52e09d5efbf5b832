package pricing

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/cinet/cinet/descriptor"
)

// TestRateRefuses: usage of a meter the schedule does not price, or of an
// unknown meter, is ErrUnpriced; a charge beyond the largest amount is
// ErrTooLarge; every meter the table knows has a rate, a divisor and units.
func TestRateRefuses(t *testing.T) {
	ps := &descriptor.PriceSchedule{Currency: "EUR", Rates: descriptor.Rates{InstanceHour: descriptor.MustDecimal("9000000000")}}
	start := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	q := func(s string) *apd.Decimal { d, _, _ := apd.NewFromString(s); return d }
	for _, tc := range []struct {
		name  string
		usage []Usage
		want  error
		text  string
	}{
		{"no rate", []Usage{{Meter: TokensIn, Quantity: q("5")}}, ErrUnpriced, "no rate for tokens-in"},
		{"unknown meter", []Usage{{Meter: "watts", Quantity: q("5")}}, ErrUnpriced, `no such meter "watts"`},
		{"too large", []Usage{{Meter: InstanceSeconds, Quantity: q("7200")}}, ErrTooLarge, "the largest amount"},
	} {
		_, err := Rate(ps, start, start.Add(2*time.Hour), tc.usage, Fees{Home: descriptor.MustDecimal("0"), Executing: descriptor.MustDecimal("0")})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v, want %v (%q)", tc.name, err, tc.want, tc.text)
		}
	}
	for m, info := range Meters {
		if info.Rate == nil || info.Per <= 0 || info.PricingUnit == "" || info.ConsumedUnit == "" {
			t.Errorf("meter %s: %+v", m, info)
		}
	}
}
