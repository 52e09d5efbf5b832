package book

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/pricing"
	"github.com/cinet/cinet/settlement/settlementtest"
)

// randomOffer draws an offer whose schedule has what makes pricing hard:
// zones with daylight saving and odd offsets, tiers on some days, wrapping
// midnight or covering a skipped or repeated hour, minimum increments,
// rates with nine decimals or very large, and memory in odd sizes.
func randomOffer(t testing.TB, rng *rand.Rand) *descriptor.Document {
	zones := []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "Asia/Shanghai", "UTC", "Pacific/Chatham"}
	rate := func() string {
		switch rng.IntN(6) {
		case 0:
			return fmt.Sprintf("%d.%09d", rng.IntN(1_000_000), rng.IntN(1_000_000_000)) // large, nine places
		case 1:
			return fmt.Sprintf("0.%09d", rng.IntN(1000)) // tiny
		case 2:
			return fmt.Sprintf("%d", rng.IntN(1_000_000_000)) // enormous: totals above 2^53 nano-units and beyond int64
		default:
			return fmt.Sprintf("%d.%02d", rng.IntN(50), rng.IntN(100))
		}
	}
	meters := []string{"instanceHour", "vcpuHour", "gibHour", "acceleratorHour"}
	base := map[string]any{}
	for _, m := range meters {
		if rng.IntN(2) == 0 {
			base[m] = rate()
		}
	}
	if len(base) == 0 {
		base["instanceHour"] = rate()
	}
	price := map[string]any{"currency": "EUR", "timezone": zones[rng.IntN(len(zones))], "rates": base,
		"market": []string{"on-demand", "spot"}[rng.IntN(2)]}
	if inc := []string{"", "", "1s", "1m", "1h", "7m13s", "1ns"}[rng.IntN(7)]; inc != "" {
		price["minimumIncrement"] = inc
	}
	var tiers []any
	cuts := []int{}
	for range 2 * rng.IntN(3) {
		cuts = append(cuts, ([]int{120, 150, 180, 0, 1380, 1439}[rng.IntN(6)]+rng.IntN(2)*rng.IntN(1440))%1440)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	for k := 0; k+1 < len(cuts); k += 2 {
		rates := map[string]any{}
		for m := range base {
			if rng.IntN(2) == 0 {
				rates[m] = rate()
			}
		}
		if len(rates) == 0 {
			continue
		}
		tier := map[string]any{"name": fmt.Sprintf("t%d", k), "start": clockText(cuts[k]), "end": clockText(cuts[k+1]), "rates": rates}
		if rng.IntN(3) == 0 {
			tier["days"] = []string{[]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}[rng.IntN(7)]}
		}
		tiers = append(tiers, tier)
	}
	if len(tiers) == 1 && rng.IntN(2) == 0 { // wrap midnight
		t := tiers[0].(map[string]any)
		t["start"], t["end"] = t["end"], t["start"]
	}
	if len(tiers) > 0 {
		price["tiers"] = tiers
	}
	class := map[string]any{"cpu": map[string]any{"arch": "x86_64", "count": 1 + rng.IntN(192)},
		"memory": fmt.Sprintf("%dMi", 1+rng.IntN(1<<20))}
	if rng.IntN(2) == 0 {
		groups := []any{map[string]any{"model": []string{"H100", "A100", "T4"}[rng.IntN(3)], "count": 1 + rng.IntN(8)}}
		if rng.IntN(3) == 0 {
			groups = append(groups, map[string]any{"model": "L4", "count": 1 + rng.IntN(4)})
		}
		class["accelerators"] = groups
	}
	doc := map[string]any{"apiVersion": "cinet/v1", "kind": "Offer", "metadata": map[string]any{"name": "p"},
		"computeId": "ci:" + fingerprint + "/eu-central-1/a/p", "provider": provider, "broker": provider,
		"region": "eu-central-1", "zone": "a", "jurisdiction": "DE", "class": class, "quantity": 64, "price": price,
		"validUntil": "2027-12-31T00:00:00Z", "sequence": 1}
	raw, _ := json.Marshal(doc)
	d, err := descriptor.Parse("random", raw)
	if err != nil {
		t.Fatalf("generated an invalid offer: %v\n%s", err, raw)
	}
	return d
}

func clockText(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// TestEstimateEqualsRating holds the matcher's estimate to settlement's
// rating: for random schedules and runs — sub-second runtimes, starts at
// any nanosecond, runs across daylight-saving changes, totals above 2^53
// nano-units — the estimate is exactly the charge settlement computes for
// the record of the same run, or both refuse it as too large.
func TestEstimateEqualsRating(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	n := 3000
	if testing.Short() {
		n = 500
	}
	starts := []time.Time{
		time.Date(2026, 3, 28, 22, 0, 0, 0, time.UTC), time.Date(2026, 10, 24, 22, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC),
		time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC), time.Date(2026, 9, 26, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
	}
	runtimes := []func() time.Duration{
		func() time.Duration { return time.Duration(1 + rng.Int64N(int64(time.Second))) },
		func() time.Duration { return time.Duration(1 + rng.Int64N(int64(10*time.Second))) },
		func() time.Duration { return time.Duration(1 + rng.Int64N(int64(48*time.Hour))) },
		func() time.Duration { return time.Duration(1+rng.Int64N(100)) * time.Hour },
		func() time.Duration { return time.Duration(1 + rng.Int64N(int64(40*24*time.Hour))) },
		func() time.Duration { return time.Duration(1 + rng.Int64N(int64(400*24*time.Hour))) }, // across both changes of a year
	}
	above53, tooLarge, remaining := 0, 0, 0
	for i := range n {
		d := randomOffer(t, rng)
		o := d.Offer
		p := pricing.NewPrices(o)
		start := starts[rng.IntN(len(starts))].Add(time.Duration(rng.Int64N(int64(72 * time.Hour))))
		runtime := runtimes[rng.IntN(len(runtimes))]()
		nodes := int64(1 + rng.IntN(64))
		total, peak := p.Estimate(start, runtime, nodes)
		rating, err := settlement.Rate(settlementtest.FullUse(o, start, runtime, nodes), o)
		var re *settlement.RatingError
		switch {
		case errors.As(err, &re) || (err != nil && total == descriptor.MaxNanos):
			tooLarge++
			if total != descriptor.MaxNanos {
				t.Fatalf("case %d: settlement refuses (%v), the estimate is %s\n%s", i, err, total.Decimal(), d.Canonical)
			}
			if ub := p.UpperBound(runtime, nodes); ub != descriptor.MaxNanos {
				t.Fatalf("case %d: the estimate is too large, but its upper bound is %s\n%s", i, ub.Decimal(), d.Canonical)
			}
		case err != nil:
			t.Fatalf("case %d: %v", i, err)
		case rating.Charge != total:
			t.Fatalf("case %d: %d nodes from %s for %s: estimate %s, rating %s\n%s", i, nodes, start.Format(time.RFC3339Nano), runtime,
				total.Decimal(), rating.Charge.Decimal(), d.Canonical)
		default:
			if total > 1<<53 {
				above53++
			}
			if lb := p.LowerBound(runtime, nodes); lb > total {
				t.Fatalf("case %d: lower bound %s above the estimate %s\n%s", i, lb.Decimal(), total.Decimal(), d.Canonical)
			}
			if ub := p.UpperBound(runtime, nodes); ub < total {
				t.Fatalf("case %d: upper bound %s below the estimate %s\n%s", i, ub.Decimal(), total.Decimal(), d.Canonical)
			}
			if lo, hi := p.PeakBounds(nodes); peak < lo || peak > hi {
				t.Fatalf("case %d: peak %s outside its bounds [%s, %s]\n%s", i, peak.Decimal(), lo.Decimal(), hi.Decimal(), d.Canonical)
			}
			// The bound for offers not yet reached, from a shorter run, a
			// lower rate and a larger allowance, holds too.
			perWeek, fixed := p.Loss()
			shorter := time.Duration(rng.Int64N(int64(runtime)) + 1)
			lower := p.Min - descriptor.Nanos(rng.Int64N(int64(p.Min)/2+1))
			if rb, ok := pricing.RemainingBound(lower, int64(shorter), nodes, perWeek+int64(rng.IntN(3)), fixed); ok {
				remaining++
				if rb > total {
					t.Fatalf("case %d: the bound for what remains, %s, is above the estimate %s\n%s", i, rb.Decimal(), total.Decimal(), d.Canonical)
				}
			}
		}
	}
	if above53 < n/20 || tooLarge < n/50 || remaining < n/10 {
		t.Fatalf("the generator gives too few hard cases: %d totals above 2^53, %d too large of %d", above53, tooLarge, n)
	}
	t.Logf("%d cases: %d above 2^53 nano-units, %d too large to price, %d with a bound for what remains", n, above53, tooLarge, remaining)
}

// BenchmarkEstimate prices runs of an hour, a week and a year on an offer
// with a night and a weekend tier: a year costs about as much as a few
// weeks, since whole weeks are priced once.
func BenchmarkEstimate(b *testing.B) {
	night := `  tiers:
    - {name: night, start: "22:00", end: "06:00", rates: {instanceHour: "4"}}
    - {name: weekend, days: [sat, sun], start: "06:00", end: "22:00", rates: {instanceHour: "7"}}`
	d := offerDoc(b, "p1", 1, 1, monday.Add(200*time.Hour), night)
	p := pricing.NewPrices(d.Offer)
	start := time.Date(2026, 3, 20, 9, 30, 0, 0, time.UTC)
	for _, run := range []time.Duration{time.Hour, 7 * 24 * time.Hour, 365 * 24 * time.Hour} {
		b.Run(run.String(), func(b *testing.B) {
			for b.Loop() {
				p.Estimate(start, run, 2)
			}
		})
	}
}

// TestEstimateExtremes: runs of years on a schedule with daylight saving
// are priced exactly, and runs as long as a Duration holds end, priced or
// refused as too large, without walking every day.
func TestEstimateExtremes(t *testing.T) {
	src := `apiVersion: cinet/v1
kind: Offer
metadata: {name: p}
computeId: ci:` + fingerprint + `/eu-central-1/a/p
provider: ` + provider + `
broker: ` + provider + `
region: eu-central-1
zone: a
jurisdiction: DE
class: {cpu: {arch: x86_64, count: 3}, memory: 7Gi}
quantity: 1
price:
  currency: EUR
  timezone: Europe/Berlin
  minimumIncrement: 7m
  rates: {instanceHour: "1.000000001", vcpuHour: "0.3"}
  tiers:
    - {name: late, start: "02:30", end: "05:00", rates: {instanceHour: "2"}}
    - {name: sunday, days: [sun], start: "12:00", end: "13:00", rates: {vcpuHour: "0.1"}}
validUntil: 2027-12-31T00:00:00Z
sequence: 1
`
	d, err := descriptor.Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := pricing.NewPrices(d.Offer)
	start := time.Date(2026, 3, 1, 0, 0, 0, 1, time.UTC)
	for _, run := range []time.Duration{20_000 * time.Hour, 3 * 8766 * time.Hour} {
		total, _ := p.Estimate(start, run, 3)
		r, err := settlement.Rate(settlementtest.FullUse(d.Offer, start, run, 3), d.Offer)
		if err != nil || r.Charge != total {
			t.Fatalf("%v: estimate %s, rating %v (%v)", run, total.Decimal(), r, err)
		}
	}
	for _, run := range []time.Duration{2_000_000 * time.Hour, time.Duration(1<<63 - 1)} {
		total, peak := p.Estimate(start, run, 64)
		if total < p.LowerBound(run, 64) || peak == 0 {
			t.Fatalf("%v: estimate %s below its bound %s, peak %s", run, total.Decimal(), p.LowerBound(run, 64).Decimal(), peak.Decimal())
		}
	}
}
