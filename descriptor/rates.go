package descriptor

import (
	"github.com/cockroachdb/apd/v3"
)

// decimalContext is the arithmetic context for price estimates: 34
// significant digits (IEEE 754 decimal128) and no silent inexactness.
var decimalContext = apd.BaseContext.WithPrecision(34)

// InstanceRate returns the base hourly price of one instance of class:
// instanceHour + vcpuHour × vCPUs + gibHour × memory in GiB +
// acceleratorHour × accelerators. Tiers are not applied.
func (r *Rates) InstanceRate(c *ComputeClass) *apd.Decimal {
	total := new(apd.Decimal)
	add := func(rate Decimal, qty *apd.Decimal) {
		if !rate.IsSet() {
			return
		}
		term := rate.Apd()
		if qty != nil {
			decimalContext.Mul(term, term, qty)
		}
		decimalContext.Add(total, total, term)
	}
	add(r.InstanceHour, nil)
	add(r.VCPUHour, apd.New(int64(c.CPU.Count), 0))
	if r.GiBHour.IsSet() {
		gib := new(apd.Decimal)
		decimalContext.Quo(gib, apd.New(int64(c.Memory), 0), apd.New(1<<30, 0))
		add(r.GiBHour, gib)
	}
	accels := 0
	for _, a := range c.Accelerators {
		accels += a.Count
	}
	add(r.AcceleratorHour, apd.New(int64(accels), 0))
	return total
}

// A rateName is one of Rates' fields with its name in documents.
type rateName struct {
	name string
	in   func(*Rates) Decimal
}

// names lists the rates by their document names, in document order.
func (*Rates) names() []rateName {
	return []rateName{
		{"instanceHour", func(r *Rates) Decimal { return r.InstanceHour }},
		{"vcpuHour", func(r *Rates) Decimal { return r.VCPUHour }},
		{"gibHour", func(r *Rates) Decimal { return r.GiBHour }},
		{"acceleratorHour", func(r *Rates) Decimal { return r.AcceleratorHour }},
		{"egressGiB", func(r *Rates) Decimal { return r.EgressGiB }},
		{"tokensInPerMillion", func(r *Rates) Decimal { return r.TokensInPerMillion }},
		{"tokensOutPerMillion", func(r *Rates) Decimal { return r.TokensOutPerMillion }},
		{"tokensCachedPerMillion", func(r *Rates) Decimal { return r.TokensCachedPerMillion }},
	}
}

// Overlay returns r with the rates tier sets replacing r's: the rates in
// force during a tier.
func (r Rates) Overlay(tier Rates) Rates {
	out := r
	for _, p := range []struct{ dst, src *Decimal }{
		{&out.InstanceHour, &tier.InstanceHour}, {&out.VCPUHour, &tier.VCPUHour},
		{&out.GiBHour, &tier.GiBHour}, {&out.AcceleratorHour, &tier.AcceleratorHour},
		{&out.EgressGiB, &tier.EgressGiB}, {&out.TokensInPerMillion, &tier.TokensInPerMillion},
		{&out.TokensOutPerMillion, &tier.TokensOutPerMillion}, {&out.TokensCachedPerMillion, &tier.TokensCachedPerMillion},
	} {
		if p.src.IsSet() {
			*p.dst = *p.src
		}
	}
	return out
}
