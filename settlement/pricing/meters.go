// Package pricing is cinet's one price rule (spec/rating.md): how usage
// is priced under an offer's schedule — exactly, item by item, as
// settlement rates usage records (Rate) — and its integer fast path, which
// estimates a run at full use for matching (Prices), held equal to Rate by
// the property tests in broker/book.
package pricing

import "github.com/cinet/cinet/descriptor"

// A Meter names what usage counts (spec/usage-record.md).
type Meter string

// Meters.
const (
	InstanceSeconds    Meter = "instance-seconds"
	VCPUSeconds        Meter = "vcpu-seconds"
	GiBSeconds         Meter = "gib-seconds"
	AcceleratorSeconds Meter = "accelerator-seconds"
	TokensIn           Meter = "tokens-in"
	TokensOut          Meter = "tokens-out"
	TokensCached       Meter = "tokens-cached"
	EgressBytes        Meter = "egress-bytes"
)

// A MeterInfo says how a meter is priced (spec/rating.md §2): by which
// rate of the schedule, per how many of its units (Per), in which FOCUS
// units, and whether it is billed over time (tiers and the minimum
// increment apply).
type MeterInfo struct {
	Rate         func(*descriptor.Rates) descriptor.Decimal
	Per          int64
	PricingUnit  string // FOCUS PricingUnit: what the rate is per
	ConsumedUnit string // FOCUS ConsumedUnit: what the meter counts in
	TimeBased    bool
}

// Meters are the meters a usage record may carry.
var Meters = map[Meter]MeterInfo{
	InstanceSeconds:    {func(r *descriptor.Rates) descriptor.Decimal { return r.InstanceHour }, 3600, "Hours", "Instance-Seconds", true},
	VCPUSeconds:        {func(r *descriptor.Rates) descriptor.Decimal { return r.VCPUHour }, 3600, "vCPU-Hours", "vCPU-Seconds", true},
	GiBSeconds:         {func(r *descriptor.Rates) descriptor.Decimal { return r.GiBHour }, 3600, "GiB-Hours", "GiB-Seconds", true},
	AcceleratorSeconds: {func(r *descriptor.Rates) descriptor.Decimal { return r.AcceleratorHour }, 3600, "Accelerator-Hours", "Accelerator-Seconds", true},
	TokensIn:           {func(r *descriptor.Rates) descriptor.Decimal { return r.TokensInPerMillion }, 1_000_000, "1000000 Tokens", "Tokens", false},
	TokensOut:          {func(r *descriptor.Rates) descriptor.Decimal { return r.TokensOutPerMillion }, 1_000_000, "1000000 Tokens", "Tokens", false},
	TokensCached:       {func(r *descriptor.Rates) descriptor.Decimal { return r.TokensCachedPerMillion }, 1_000_000, "1000000 Tokens", "Tokens", false},
	EgressBytes:        {func(r *descriptor.Rates) descriptor.Decimal { return r.EgressGiB }, 1 << 30, "GiB", "Bytes", false},
}
