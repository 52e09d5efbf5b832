package pricing

import (
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/cinet/cinet/descriptor"
)

// A Rating is what a record costs under an offer's price schedule
// (spec/rating.md). Amounts are in nano-units of Currency.
type Rating struct {
	Currency     string
	Market       string // on-demand or spot
	Items        []RatedItem
	Charge       descriptor.Nanos // what the provider earns: the sum of Items
	HomeFee      descriptor.Nanos
	ExecutingFee descriptor.Nanos
}

// Total is what the tenant pays. Rate refuses records whose total would
// overflow.
func (r *Rating) Total() descriptor.Nanos { return r.Charge + r.HomeFee + r.ExecutingFee }

// A RatedItem prices one meter over one stretch of the period in which one
// set of rates was in force.
type RatedItem struct {
	Meter           Meter
	Model           string
	Tier            string // "" for the base rates
	Start, End      time.Time
	ConsumedQty     string // the meter's quantity in this stretch, in its own unit
	PricingQuantity string // in PricingUnit, after the minimum increment
	PricingUnit     string // FOCUS unit the unit price is per: "Hours", "1000000 Tokens", "GiB"
	UnitPrice       string // the rate, per PricingUnit
	Amount          descriptor.Nanos
}

// rateContext is exact enough for every intermediate product: quantities
// and rates have at most 40 digits each.
// Inexact results (the displayed quantities) round half to even. It is
// shared and never modified.
var rateContext = func() *apd.Context {
	c := apd.BaseContext.WithPrecision(100)
	c.Rounding = apd.RoundHalfEven
	return c
}()

// roundNanos rounds an exact amount to nano-units, half to even.
func roundNanos(d *apd.Decimal) (descriptor.Nanos, error) {
	var scaled, whole apd.Decimal
	if _, err := rateContext.Mul(&scaled, d, apd.New(1, 9)); err != nil {
		return 0, err
	}
	if _, err := rateContext.RoundToIntegralValue(&whole, &scaled); err != nil {
		return 0, err
	}
	i, err := whole.Int64()
	if err != nil {
		return 0, fmt.Errorf("%w: amount %s exceeds the largest amount", ErrTooLarge, d.Text('f'))
	}
	return descriptor.Nanos(i), nil
}

// divRoundHalfEven returns num/den in nano-units, rounded half to even,
// computed exactly: both are finite decimals c·10^e, so
// num/den·10^9 = cN·10^(eN−eD+9) / cD is a ratio of integers and ties are
// true ties.
func divRoundHalfEven(num, den *apd.Decimal) (descriptor.Nanos, error) {
	if den.IsZero() {
		return 0, fmt.Errorf("rating: division by zero")
	}
	n, d := num.Coeff.MathBigInt(), den.Coeff.MathBigInt()
	if e := int64(num.Exponent) - int64(den.Exponent) + 9; e >= 0 {
		n.Mul(n, pow10(e))
	} else {
		d.Mul(d, pow10(-e))
	}
	whole, rem := new(big.Int).QuoRem(n, d, new(big.Int))
	// Compare 2·remainder with the divisor: above rounds up, a tie to even.
	switch c := rem.Lsh(rem, 1).Cmp(d); {
	case c > 0, c == 0 && whole.Bit(0) == 1:
		whole.Add(whole, big.NewInt(1))
	}
	if num.Negative != den.Negative {
		whole.Neg(whole)
	}
	if !whole.IsInt64() {
		return 0, fmt.Errorf("%w: an item's amount exceeds %s, the largest amount", ErrTooLarge, descriptor.MaxNanos.Decimal())
	}
	return descriptor.Nanos(whole.Int64()), nil
}

// pow10 returns 10^e.
func pow10(e int64) *big.Int {
	if e < int64(len(pow10s)) {
		return pow10s[e]
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(e), nil)
}

var pow10s = func() []*big.Int {
	out := make([]*big.Int, 64)
	p := big.NewInt(1)
	for i := range out {
		out[i] = new(big.Int).Set(p)
		p.Mul(p, big.NewInt(10))
	}
	return out
}()

// A Usage is one meter's quantity over a period: Model names the
// accelerator model of accelerator-seconds.
type Usage struct {
	Meter    Meter
	Model    string
	Quantity *apd.Decimal
}

// Fees are the brokers' fee rates, fractions of the provider's charge.
type Fees struct {
	Home, Executing descriptor.Decimal
}

// ErrUnpriced is usage of a meter the schedule has no rate for; ErrTooLarge
// an amount beyond the largest one (spec/rating.md §1).
var (
	ErrUnpriced = errors.New("unpriced")
	ErrTooLarge = errors.New("too large")
)

// Rate prices usage over [start, end) under a price schedule
// (spec/rating.md §3):
//
//  1. the period is cut where the tier in force changes, in the schedule's
//     time zone; every meter is taken as spread evenly over the period;
//  2. time-based meters are billed over the period rounded up to a whole
//     number of minimum increments (their quantities scaled by
//     rounded/actual);
//  3. each stretch of each meter costs pricing quantity × rate, rounded
//     half to even to nano-units;
//  4. the charge is the sum; each broker fee is charge × its rate, rounded
//     half to even to nano-units.
//
// Errors wrap ErrUnpriced or ErrTooLarge.
func Rate(ps *descriptor.PriceSchedule, start, end time.Time, usage []Usage, fees Fees) (*Rating, error) {
	out := &Rating{Currency: ps.Currency, Market: ps.Market}
	period := end.Sub(start)
	total := apd.New(period.Nanoseconds(), 0)
	billedNanos := total // the period rounded up to whole minimum increments
	if inc := ps.MinimumIncrement.Std(); inc > 0 {
		billedNanos = apd.New(((period + inc - 1) / inc * inc).Nanoseconds(), 0)
	}
	scale := new(apd.Decimal) // billed / actual, for time-based meters
	if _, err := rateContext.Quo(scale, billedNanos, total); err != nil {
		return nil, err
	}
	for _, seg := range tierSegments(ps, start, end) {
		rates := ps.Rates
		tierName := ""
		if seg.tier != nil {
			tierName = seg.tier.Name
			rates = ps.Rates.Overlay(seg.tier.Rates)
		}
		stretch := apd.New(seg.end.Sub(seg.start).Nanoseconds(), 0)
		for _, u := range usage {
			if u.Quantity.IsZero() {
				continue
			}
			item, err := rateItem(u, &rates, stretch, total, billedNanos, scale)
			if err != nil {
				return nil, err
			}
			item.Tier, item.Start, item.End = tierName, seg.start, seg.end
			out.Items = append(out.Items, item)
			if out.Charge, err = out.Charge.CheckedAdd(item.Amount); err != nil {
				return nil, tooLarge(out.Currency)
			}
		}
	}
	var err error
	if out.HomeFee, err = fee(out.Charge, fees.Home); err != nil {
		return nil, err
	}
	if out.ExecutingFee, err = fee(out.Charge, fees.Executing); err != nil {
		return nil, err
	}
	sum, err := out.Charge.CheckedAdd(out.HomeFee)
	if err == nil {
		_, err = sum.CheckedAdd(out.ExecutingFee)
	}
	if err != nil {
		return nil, tooLarge(out.Currency)
	}
	return out, nil
}

// rateItem prices usage u over one stretch of the period (of total
// nanoseconds, billed as billed) with rates in force.
func rateItem(u Usage, rates *descriptor.Rates, stretch, total, billed, scale *apd.Decimal) (RatedItem, error) {
	info, ok := Meters[u.Meter]
	if !ok {
		return RatedItem{}, fmt.Errorf("%w: no such meter %q", ErrUnpriced, u.Meter)
	}
	rate := info.Rate(rates)
	if !rate.IsSet() {
		return RatedItem{}, fmt.Errorf("%w: the offer's schedule has no rate for %s", ErrUnpriced, u.Meter)
	}
	per := apd.New(info.Per, 0)
	// The amount is one exact fraction, rounded once:
	//   q × stretch × rate [× billed] / (period × per [× period])
	num, den := new(apd.Decimal), new(apd.Decimal)
	rateContext.Mul(num, u.Quantity, stretch)
	rateContext.Mul(num, num, rate.Apd())
	rateContext.Mul(den, total, per)
	if info.TimeBased {
		rateContext.Mul(num, num, billed)
		rateContext.Mul(den, den, total)
	}
	n, err := divRoundHalfEven(num, den)
	if err != nil {
		return RatedItem{}, err
	}
	// The quantities shown beside the amount, to 18 places.
	frac, consumed := new(apd.Decimal), new(apd.Decimal)
	rateContext.Quo(frac, stretch, total)
	rateContext.Mul(consumed, u.Quantity, frac)
	pricedQty := new(apd.Decimal).Set(consumed)
	if info.TimeBased {
		rateContext.Mul(pricedQty, pricedQty, scale)
	}
	pricingQty := new(apd.Decimal)
	rateContext.Quo(pricingQty, pricedQty, per)
	return RatedItem{
		Meter: u.Meter, Model: u.Model,
		ConsumedQty: DecimalText(consumed), PricingQuantity: DecimalText(pricingQty),
		PricingUnit: info.PricingUnit, UnitPrice: rate.String(), Amount: n,
	}, nil
}

// tooLarge refuses amounts beyond what the ledger holds.
func tooLarge(currency string) error {
	return fmt.Errorf("%w: the charge with fees exceeds %s %s, the largest amount one record may move", ErrTooLarge, descriptor.MaxNanos.Decimal(), currency)
}

func fee(charge descriptor.Nanos, rate descriptor.Decimal) (descriptor.Nanos, error) {
	f := new(apd.Decimal)
	if _, err := rateContext.Mul(f, apd.New(int64(charge), -9), rate.Apd()); err != nil {
		return 0, err
	}
	return roundNanos(f)
}

// DecimalText writes an exact decimal, trimmed to at most 18 places (the
// display form of quantities; amounts are exact in nano-units).
func DecimalText(d *apd.Decimal) string {
	var r apd.Decimal
	rateContext.Quantize(&r, d, -18)
	r.Reduce(&r)
	return r.Text('f')
}

// A segment is a stretch of the period during which one tier (or none)
// is in force.
type segment struct {
	start, end time.Time
	tier       *descriptor.Tier
}

// tierSegments cuts [start, end) where the tier in force changes, by the
// schedule's local wall clock (descriptor.TierWeek.Segments).
func tierSegments(ps *descriptor.PriceSchedule, start, end time.Time) []segment {
	var out []segment
	ps.Week().Segments(start, end, func(s, e time.Time, tier int) {
		seg := segment{start: s, end: e}
		if tier != descriptor.NoTier {
			seg.tier = &ps.Tiers[tier]
		}
		out = append(out, seg)
	})
	return out
}
