package settlement

import (
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
	Meter           MeterKind
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
		return 0, fmt.Errorf("amount %s is too large", d.Text('f'))
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
		return 0, fmt.Errorf("rating: amount is too large")
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

// pricing says how a meter maps to a rate: the quantity is divided by
// per to give the pricing quantity in unit.
type pricing struct {
	rate func(*descriptor.Rates) descriptor.Decimal
	per  *apd.Decimal
	unit string
}

var meterPricing = map[MeterKind]pricing{
	InstanceSeconds:    {func(r *descriptor.Rates) descriptor.Decimal { return r.InstanceHour }, apd.New(3600, 0), "Hours"},
	VCPUSeconds:        {func(r *descriptor.Rates) descriptor.Decimal { return r.VCPUHour }, apd.New(3600, 0), "vCPU-Hours"},
	GiBSeconds:         {func(r *descriptor.Rates) descriptor.Decimal { return r.GiBHour }, apd.New(3600, 0), "GiB-Hours"},
	AcceleratorSeconds: {func(r *descriptor.Rates) descriptor.Decimal { return r.AcceleratorHour }, apd.New(3600, 0), "Accelerator-Hours"},
	TokensIn:           {func(r *descriptor.Rates) descriptor.Decimal { return r.TokensInPerMillion }, apd.New(1_000_000, 0), "1000000 Tokens"},
	TokensOut:          {func(r *descriptor.Rates) descriptor.Decimal { return r.TokensOutPerMillion }, apd.New(1_000_000, 0), "1000000 Tokens"},
	TokensCached:       {func(r *descriptor.Rates) descriptor.Decimal { return r.TokensCachedPerMillion }, apd.New(1_000_000, 0), "1000000 Tokens"},
	EgressBytes:        {func(r *descriptor.Rates) descriptor.Decimal { return r.EgressGiB }, apd.New(1<<30, 0), "GiB"},
}

// A RatingError refuses a record that cannot be priced.
type RatingError struct {
	Reason Reason
	Detail string
}

func (e *RatingError) Error() string { return string(e.Reason) + ": " + e.Detail }

// Rate prices a record under an offer's schedule:
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
func Rate(r *UsageRecord, offer *descriptor.Offer) (*Rating, error) {
	ps := &offer.Price
	out := &Rating{Currency: ps.Currency, Market: ps.Market}
	period := r.PeriodEnd.Sub(r.PeriodStart)
	total := apd.New(period.Nanoseconds(), 0)
	billedNanos := total // the period rounded up to whole minimum increments
	if inc := ps.MinimumIncrement.Std(); inc > 0 {
		billedNanos = apd.New(((period + inc - 1) / inc * inc).Nanoseconds(), 0)
	}
	scale := new(apd.Decimal) // billed / actual, for time-based meters
	if _, err := rateContext.Quo(scale, billedNanos, total); err != nil {
		return nil, err
	}
	for _, seg := range tierSegments(ps, r.PeriodStart, r.PeriodEnd) {
		rates := ps.Rates
		tierName := ""
		if seg.tier != nil {
			tierName = seg.tier.Name
			rates = ps.Rates.Overlay(seg.tier.Rates)
		}
		frac := new(apd.Decimal)
		if _, err := rateContext.Quo(frac, apd.New(seg.end.Sub(seg.start).Nanoseconds(), 0), total); err != nil {
			return nil, err
		}
		for _, m := range r.Meters {
			q := m.quantity().Apd()
			if q.IsZero() {
				continue
			}
			pr := meterPricing[m.Meter]
			rate := pr.rate(&rates)
			if !rate.IsSet() {
				return nil, &RatingError{ReasonUnpriced, fmt.Sprintf("the offer's schedule has no rate for %s", m.Meter)}
			}
			// The amount is one exact fraction, rounded once:
			//   q × stretch × rate [× billed] / (period × per [× period])
			num, den := new(apd.Decimal), new(apd.Decimal)
			rateContext.Mul(num, q, apd.New(seg.end.Sub(seg.start).Nanoseconds(), 0))
			rateContext.Mul(num, num, rate.Apd())
			rateContext.Mul(den, total, pr.per)
			if meters[m.Meter].timeBased {
				rateContext.Mul(num, num, billedNanos)
				rateContext.Mul(den, den, total)
			}
			n, err := divRoundHalfEven(num, den)
			if err != nil {
				return nil, err
			}
			// The quantities shown beside the amount, to 18 places.
			consumed := new(apd.Decimal)
			rateContext.Mul(consumed, q, frac)
			billed := new(apd.Decimal).Set(consumed)
			if meters[m.Meter].timeBased {
				rateContext.Mul(billed, billed, scale)
			}
			pricingQty := new(apd.Decimal)
			rateContext.Quo(pricingQty, billed, pr.per)
			out.Items = append(out.Items, RatedItem{
				Meter: m.Meter, Model: m.Model, Tier: tierName, Start: seg.start, End: seg.end,
				ConsumedQty: decimalText(consumed), PricingQuantity: decimalText(pricingQty),
				PricingUnit: pr.unit, UnitPrice: rate.String(), Amount: n,
			})
			if out.Charge, err = out.Charge.CheckedAdd(n); err != nil {
				return nil, tooLarge(out.Currency)
			}
		}
	}
	var err error
	if out.HomeFee, err = fee(out.Charge, r.Fees.Home); err != nil {
		return nil, err
	}
	if out.ExecutingFee, err = fee(out.Charge, r.Fees.Executing); err != nil {
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

// tooLarge refuses a record whose amounts exceed what the ledger holds.
func tooLarge(currency string) error {
	return &RatingError{ReasonAbsurdQuantity, fmt.Sprintf("the charge with fees exceeds %s %s, the largest amount one record may move", descriptor.MaxNanos.Decimal(), currency)}
}

func fee(charge descriptor.Nanos, rate descriptor.Decimal) (descriptor.Nanos, error) {
	f := new(apd.Decimal)
	if _, err := rateContext.Mul(f, apd.New(int64(charge), -9), rate.Apd()); err != nil {
		return 0, err
	}
	return roundNanos(f)
}

// decimalText writes an exact decimal, trimmed to at most 18 places (the
// display form of quantities; amounts are exact in nano-units).
func decimalText(d *apd.Decimal) string {
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
