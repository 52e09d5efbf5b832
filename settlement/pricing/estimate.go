package pricing

import (
	"math/big"
	"math/bits"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/cinet/cinet/descriptor"
)

// Prices estimate what a run on an offer costs: exactly what settlement
// charges (spec/rating.md) for the usage record of that run with every
// time-based meter the offer prices used in full — instance-seconds,
// vCPU-seconds of all the class's vCPUs, GiB-seconds of all its memory and
// accelerator-seconds of all its devices, per model — for the whole run.
// spec/matching.md §4 defines the estimate this way; the property test in
// broker/match holds the two to each other.
//
// The arithmetic is the rating's: the run is cut where the tier in force
// changes (descriptor.TierWeek.Segments), each meter of each piece is one
// exact fraction rounded half to even to nano-units, and the minimum
// increment scales every piece. Fractions are kept as integers; products
// that overflow 128 bits are redone with math/big.
type Prices struct {
	week      *descriptor.TierWeek
	increment int64        // the minimum increment in nanoseconds; 0 for none
	tiers     []tierPrices // by tier index + 1: [0] is the base rates
	changes   int64        // how often a week the tier in force changes
	flat      int          // the tier in force all week when changes is 0 (-1: the base rates)

	// Min and Max are the lowest and highest hourly price of one instance
	// in the week: Min rounded down, Max rounded up to nano-units.
	Min, Max descriptor.Nanos
}

// tierPrices are one tier's rates (the base rates overlaid by the tier's)
// as fractions of nano-units per nanosecond, one per meter.
type tierPrices struct {
	hourly descriptor.Nanos // one instance's hourly price, rounded up
	meters []coef
}

// A coef is one meter's price for one instance per nanosecond, in
// nano-units: num/den exactly. bigNum/bigDen hold it when it does not fit
// in 64 bits.
type coef struct {
	num, den       uint64
	bigNum, bigDen *big.Int
}

// timeMeters lists the time-based meters of a class with their quantity
// per instance per second (k) and the rate each is priced at.
func timeMeters(c *descriptor.ComputeClass) []struct {
	k    *big.Rat
	rate func(*descriptor.Rates) descriptor.Decimal
} {
	type meter = struct {
		k    *big.Rat
		rate func(*descriptor.Rates) descriptor.Decimal
	}
	out := []meter{
		{big.NewRat(1, 1), Meters[InstanceSeconds].Rate},
		{big.NewRat(int64(c.CPU.Count), 1), Meters[VCPUSeconds].Rate},
		{big.NewRat(int64(c.Memory), 1<<30), Meters[GiBSeconds].Rate},
	}
	// Accelerator-seconds are metered per model.
	var models []string
	devices := map[string]int64{}
	for _, a := range c.Accelerators {
		if devices[a.Model] == 0 {
			models = append(models, a.Model)
		}
		devices[a.Model] += int64(a.Count)
	}
	for _, m := range models {
		out = append(out, meter{big.NewRat(devices[m], 1), Meters[AcceleratorSeconds].Rate})
	}
	return out
}

// ratOf returns an exact decimal as a fraction.
func ratOf(d *apd.Decimal) *big.Rat {
	r := new(big.Rat).SetInt(d.Coeff.MathBigInt())
	if d.Exponent > 0 {
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Exponent)), nil)))
	} else if d.Exponent < 0 {
		r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-d.Exponent)), nil)))
	}
	if d.Negative {
		r.Neg(r)
	}
	return r
}

var perHourNanos = big.NewRat(1_000_000_000, 3600*1_000_000_000) // a rate per hour, in nano-units per nanosecond

// NewPrices prepares an offer's schedule for estimates.
func NewPrices(o *descriptor.Offer) *Prices {
	p := new(Prices)
	p.Init(o)
	return p
}

// Init prepares p for o. An estimate reads the prices, the meters of
// every tier (one array) and the week, which offers alike share
// (PriceSchedule.Week): few places in memory, for a matching decision
// prices offers it has not touched before.
func (p *Prices) Init(o *descriptor.Offer) {
	ps := &o.Price
	*p = Prices{week: ps.Week(), increment: int64(ps.MinimumIncrement.Std()), Min: descriptor.MaxNanos}
	p.changes = int64(p.week.Changes())
	p.flat = -1
	if inForce := p.week.Tiers(); len(inForce) > 0 {
		p.flat = inForce[0]
	}
	meters := timeMeters(&o.Class)
	p.tiers = make([]tierPrices, len(ps.Tiers)+1)
	inForce := p.week.Tiers()
	all := make([]coef, 0, len(p.tiers)*len(meters))
	for ti := range p.tiers {
		rates := ps.Rates
		if ti > 0 {
			rates = ps.Rates.Overlay(ps.Tiers[ti-1].Rates)
		}
		hourly := new(big.Rat)
		cs := all[len(all):len(all):cap(all)]
		for _, m := range meters {
			// Only meters the base rates price are in the record; a tier
			// changes their rates (the descriptor refuses a tier that
			// prices a meter the base rates do not).
			if !m.rate(&ps.Rates).IsSet() || m.k.Sign() == 0 {
				continue
			}
			perHour := new(big.Rat).Mul(m.k, ratOf(m.rate(&rates).Apd()))
			hourly.Add(hourly, perHour)
			c := new(big.Rat).Mul(perHour, perHourNanos)
			num, den := c.Num(), c.Denom()
			if num.IsUint64() && den.IsUint64() {
				cs = append(cs, coef{num: num.Uint64(), den: den.Uint64()})
			} else {
				cs = append(cs, coef{bigNum: num, bigDen: den})
			}
		}
		nanos := new(big.Rat).Mul(hourly, big.NewRat(1_000_000_000, 1))
		floor, ceil := ratFloor(nanos), ratFloor(nanos)
		if !nanos.IsInt() {
			ceil = ceil.Add(1)
		}
		p.tiers[ti] = tierPrices{hourly: ceil, meters: cs}
		all = all[:len(all)+len(cs)]
		for _, t := range inForce {
			if t+1 == ti {
				p.Min, p.Max = min(p.Min, floor), max(p.Max, ceil)
			}
		}
	}
}

// ratFloor returns floor(r) as nano-units, saturating at MaxNanos.
func ratFloor(r *big.Rat) descriptor.Nanos {
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if !q.IsInt64() {
		return descriptor.MaxNanos
	}
	return descriptor.Nanos(q.Int64())
}

const week = 7 * 24 * time.Hour

// Flat reports whether the price never changes through the week.
func (p *Prices) Flat() bool { return p.changes == 0 }

// Estimate returns what nodes instances cost from start for runtime, and
// the highest hourly price of them all in force during the run. An
// amount too large for nano-units in an int64 is MaxNanos.
func (p *Prices) Estimate(start time.Time, runtime time.Duration, nodes int64) (total, peak descriptor.Nanos) {
	if runtime <= 0 {
		return 0, 0
	}
	period := uint64(runtime)
	billed := period
	if inc := uint64(p.increment); inc > 0 {
		billed = (period + inc - 1) / inc * inc
		if billed < period { // overflow
			return descriptor.MaxNanos, descriptor.MaxNanos
		}
	}
	// The increment scales each piece by billed/period.
	g := gcd(billed, period)
	scaleNum, scaleDen := billed/g, period/g
	var sum uint64
	var peakHourly descriptor.Nanos
	overflow := false
	add := func(s, e time.Time, tier int, times uint64) {
		tp := &p.tiers[tier+1]
		peakHourly = max(peakHourly, tp.hourly)
		piece := uint64(e.Sub(s))
		for i := range tp.meters {
			amount, ok := tp.meters[i].amount(piece, uint64(nodes), scaleNum, scaleDen)
			if ok && times != 1 {
				var hi uint64
				hi, amount = bits.Mul64(amount, times)
				ok = hi == 0
			}
			if !ok {
				overflow = true
				return
			}
			var carry uint64
			sum, carry = bits.Add64(sum, amount, 0)
			overflow = overflow || carry != 0
		}
	}
	end := start.Add(runtime)
	if p.changes == 0 { // one tier all week: the run is one piece
		add(start, end, p.flat, 1)
	}
	for t := start; t.Before(end) && !overflow && p.changes > 0; {
		// Within one UTC offset the week repeats: from a wall-clock
		// boundary (not a change the offset itself causes), a week of whole pieces is priced once and counted for every
		// whole week that fits, so long runs cost no more than a week.
		if p.changes > 0 && p.week.OnBoundary(t) {
			zoneEnd := p.week.NextOffsetChange(t)
			stretch := end.Sub(t)
			if !zoneEnd.IsZero() && zoneEnd.Before(end) {
				stretch = zoneEnd.Sub(t)
			}
			// The whole weeks end before the offset changes: at the change
			// itself a piece might run on into the next.
			if weeks := (stretch - 1) / week; weeks >= 2 {
				p.week.Segments(t, t.Add(week), func(s, e time.Time, tier int) { add(s, e, tier, uint64(weeks)) })
				t = t.Add(weeks * week)
				continue
			}
		}
		// Otherwise price up to the first change of tier after t that
		// leaves two weeks or more, or to the end.
		stop := end
		if p.changes > 0 && end.Sub(t) > 2*week {
			stop = t.Add(week + time.Minute)
		}
		last := t
		p.week.Segments(t, stop, func(s, e time.Time, tier int) {
			if stop != end && e.Equal(stop) {
				return // an unfinished piece: price it from its start next time
			}
			add(s, e, tier, 1)
			last = e
		})
		if last.Equal(t) { // no change of tier in a week: cannot happen when changes > 0
			p.week.Segments(t, end, func(s, e time.Time, tier int) { add(s, e, tier, 1) })
			break
		}
		t = last
	}
	if overflow || sum > uint64(descriptor.MaxNanos) {
		total = descriptor.MaxNanos
	} else {
		total = descriptor.Nanos(sum)
	}
	return total, peakHourly.Mul(nodes)
}

// amount is round_half_even(nodes × piece × num × scaleNum / (den ×
// scaleDen)): one meter's rated item.
func (c *coef) amount(piece, nodes, scaleNum, scaleDen uint64) (uint64, bool) {
	if c.bigNum == nil {
		if q, ok := mulDivRound(c.num, piece, nodes, scaleNum, c.den, scaleDen); ok {
			return q, true
		}
	}
	num := new(big.Int).SetUint64(piece)
	num.Mul(num, new(big.Int).SetUint64(nodes))
	num.Mul(num, new(big.Int).SetUint64(scaleNum))
	den := new(big.Int).SetUint64(scaleDen)
	if c.bigNum != nil {
		num.Mul(num, c.bigNum)
		den.Mul(den, c.bigDen)
	} else {
		num.Mul(num, new(big.Int).SetUint64(c.num))
		den.Mul(den, new(big.Int).SetUint64(c.den))
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if c := r.Lsh(r, 1).Cmp(den); c > 0 || c == 0 && q.Bit(0) == 1 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsUint64() {
		return 0, false
	}
	return q.Uint64(), true
}

// mulDivRound returns round_half_even(a×b×c×d / (e×f)) when the products
// fit in 128 and 64 bits; ok is false when they do not.
func mulDivRound(a, b, c, d, e, f uint64) (uint64, bool) {
	hi, lo := bits.Mul64(a, b)
	var ok bool
	if hi, lo, ok = mul128(hi, lo, c); !ok {
		return 0, false
	}
	if d != 1 {
		if hi, lo, ok = mul128(hi, lo, d); !ok {
			return 0, false
		}
	}
	dh, den := bits.Mul64(e, f)
	if dh != 0 || den == 0 || hi >= den {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, den)
	// Compare 2r with den: above rounds up, a tie to the even quotient.
	r2hi, r2 := r>>63, r<<1
	if r2hi != 0 || r2 > den || (r2 == den && q&1 == 1) {
		q++
	}
	return q, true
}

// mul128 returns (hi, lo) × m, or ok false when it needs more than 128
// bits.
func mul128(hi, lo, m uint64) (uint64, uint64, bool) {
	h1, l1 := bits.Mul64(lo, m)
	h2, l2 := bits.Mul64(hi, m)
	if h2 != 0 {
		return 0, 0, false
	}
	nh, carry := bits.Add64(h1, l2, 0)
	if carry != 0 {
		return 0, 0, false
	}
	return nh, l1, true
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Loss returns the allowance for rounding in the schedule's bounds: a run
// of billed time b is cut into at most (changes + 4) × (b/week + 1) + 1
// pieces (every change of UTC offset can add two), each with one rated
// item per meter, and each item rounds at most half a nano-unit down. So
// the items number at most perWeek × (b/week + 1) + fixed.
func (p *Prices) Loss() (perWeek, fixed int64) {
	meters := int64(len(p.tiers[0].meters) + 1)
	return (p.changes + 4) * meters, meters
}

// CostBounds is what bounds on the cost of a run need of an offer's
// prices. Entries keep a copy in their hot data, so that a scan can bound
// an offer's cost without reading its Prices.
type CostBounds struct {
	MinRate, MaxRate       descriptor.Nanos // Prices.Min, Prices.Max
	Increment              int64            // the minimum increment in nanoseconds; 0 for none
	LossPerWeek, LossFixed int32            // Prices.Loss
}

// Bounds returns the prices' cost bounds.
func (p *Prices) Bounds() CostBounds {
	perWeek, fixed := p.Loss()
	return CostBounds{MinRate: p.Min, MaxRate: p.Max, Increment: p.increment, LossPerWeek: int32(min(perWeek, 1<<31-1)), LossFixed: int32(min(fixed, 1<<31-1))}
}

// billed returns the billed time of a run: runtime rounded up to the
// minimum increment, or -1 when that overflows.
func (b *CostBounds) billed(runtime time.Duration) int64 {
	billed := int64(runtime)
	if b.Increment > 0 && billed > 0 {
		billed = (billed + b.Increment - 1) / b.Increment * b.Increment
		if billed < 0 {
			return -1
		}
	}
	return billed
}

// LowerBound is at most what nodes instances cost for runtime from any
// start: the week's lowest hourly price over the billed time, less half a
// nano-unit for every rated item the run could have (Loss).
func (p *Prices) LowerBound(runtime time.Duration, nodes int64) descriptor.Nanos {
	b := p.Bounds()
	return b.Lower(runtime, nodes)
}

// Lower is Prices.LowerBound.
func (b *CostBounds) Lower(runtime time.Duration, nodes int64) descriptor.Nanos {
	billed := b.billed(runtime)
	if billed < 0 {
		return 0
	}
	return CostBound(b.MinRate, billed, nodes, int64(b.LossPerWeek), int64(b.LossFixed))
}

// UpperBound is at least what nodes instances cost for runtime from any
// start: the week's highest hourly price over the billed time, plus half
// a nano-unit for every rated item the run could have (Loss), saturating
// at MaxNanos, as the estimate does.
func (p *Prices) UpperBound(runtime time.Duration, nodes int64) descriptor.Nanos {
	b := p.Bounds()
	return b.Upper(runtime, nodes)
}

// Upper is Prices.UpperBound.
func (b *CostBounds) Upper(runtime time.Duration, nodes int64) descriptor.Nanos {
	if runtime <= 0 {
		return 0
	}
	billed := b.billed(runtime)
	if billed < 0 || nodes <= 0 || b.MaxRate == descriptor.MaxNanos { // MaxRate saturated: no bound
		return descriptor.MaxNanos
	}
	hi, lo := bits.Mul64(uint64(b.MaxRate), uint64(nodes))
	hi, lo, ok := mul128(hi, lo, uint64(billed))
	if !ok || hi >= uint64(time.Hour) {
		return descriptor.MaxNanos
	}
	q, r := bits.Div64(hi, lo, uint64(time.Hour))
	if r != 0 {
		q++
	}
	items := uint64(b.LossPerWeek)*uint64(billed/int64(week)+1) + uint64(b.LossFixed)
	q += items/2 + 2
	if q >= uint64(descriptor.MaxNanos) {
		return descriptor.MaxNanos
	}
	return descriptor.Nanos(q)
}

// PeakBounds bound the highest hourly price of nodes instances during any
// run (Estimate's peak): at least the week's lowest hourly price, at most
// its highest.
func (p *Prices) PeakBounds(nodes int64) (lo, hi descriptor.Nanos) {
	b := p.Bounds()
	return b.Peak(nodes)
}

// Peak is Prices.PeakBounds.
func (b *CostBounds) Peak(nodes int64) (lo, hi descriptor.Nanos) {
	return b.MinRate.Mul(nodes), b.MaxRate.Mul(nodes)
}

// CostBound is a lower bound on what nodes instances cost over billed
// nanoseconds of an offer whose lowest hourly rate is at least minRate
// and whose rounding allowance (Prices.Loss) is at most perWeek and
// fixed: floor(minRate × nodes × billed / 1h), less half a nano-unit per
// item the run could have, less one. It is never negative.
func CostBound(minRate descriptor.Nanos, billed, nodes, perWeek, fixed int64) descriptor.Nanos {
	if billed <= 0 || minRate <= 0 || nodes <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(minRate), uint64(nodes))
	hi, lo, ok := mul128(hi, lo, uint64(billed))
	if !ok || hi >= uint64(time.Hour) {
		return descriptor.MaxNanos - 1
	}
	q, _ := bits.Div64(hi, lo, uint64(time.Hour))
	items := uint64(perWeek)*uint64(billed/int64(week)+1) + uint64(fixed)
	slack := items/2 + 2
	if q > uint64(descriptor.MaxNanos) {
		return descriptor.MaxNanos - 1
	}
	if q < slack {
		return 0
	}
	return descriptor.Nanos(q - slack)
}

// RemainingBound is a lower bound on the cost of every offer whose lowest
// hourly rate is at least minRate and whose rounding allowance is at most
// perWeek and fixed, for any billed time of at least billedMin; ok is false
// when there is none better than 0 to give. It is CostBound at billedMin
// less what the allowance's steps at week boundaries can take, valid when
// the rate earns more per week than the allowance grows: a longer billed
// time then never costs less.
func RemainingBound(minRate descriptor.Nanos, billedMin, nodes, perWeek, fixed int64) (descriptor.Nanos, bool) {
	hi, lo := bits.Mul64(uint64(minRate), uint64(nodes))
	hi, lo, ok := mul128(hi, lo, 168)
	if ok && hi == 0 && lo < uint64(perWeek)/2+1 {
		return 0, false
	}
	b := CostBound(minRate, billedMin, nodes, perWeek, fixed)
	step := descriptor.Nanos(perWeek/2 + 3)
	if b <= step {
		return 0, false
	}
	return b - step, true
}
