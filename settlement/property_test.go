package settlement_test

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// propertyOffers are schedules with tiers that records keep crossing.
var propertyOffers = []string{
	`  currency: CNY
  timezone: Asia/Shanghai
  rates: {instanceHour: "100", acceleratorHour: "10.5", tokensOutPerMillion: "2", egressGiB: "0.5"}`,
	`  currency: CNY
  timezone: Asia/Shanghai
  minimumIncrement: 15m
  rates: {instanceHour: "100", acceleratorHour: "10", tokensOutPerMillion: "1.7"}
  tiers:
    - {name: night, start: "22:00", end: "08:00", rates: {instanceHour: "60", acceleratorHour: "7.25"}}
    - {name: weekend, days: [sat, sun], start: "08:00", end: "22:00", rates: {instanceHour: "80"}}`,
	`  currency: USD
  timezone: America/New_York
  minimumIncrement: 1m
  rates: {instanceHour: "3.333", acceleratorHour: "1.99", egressGiB: "0.09"}
  tiers:
    - {name: lunch, days: [mon, tue, wed, thu, fri], start: "12:00", end: "13:30", rates: {acceleratorHour: "2.49"}}`,
}

func offerWithPrice(t testing.TB, pool, price string, owner *identity.Key) *descriptor.Document {
	t.Helper()
	cid, _ := identity.NewComputeID(providerKey.ID(), "cn-east-1", "a", pool)
	src := fmt.Sprintf(`apiVersion: cinet/v1
kind: Offer
metadata: {name: %s}
computeId: %s
provider: %s
broker: %s
region: cn-east-1
zone: a
jurisdiction: CN
class:
  cpu: {arch: x86_64, count: 96}
  memory: 1Ti
  accelerators:
    - {model: H100, count: 8}
quantity: 4
price:
%s
validUntil: 2027-06-01T00:00:00Z
sequence: 1
`, pool, cid, providerKey.ID(), owner.ID(), price)
	d, err := descriptor.Parse(pool, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSettlementProperties(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 600
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store, _ := st.open(t)
			self := homeKey
			b := newSettler(t, store, self, execKey.ID())
			// Each pool is offered twice: as this broker's capacity and as
			// the other broker's, for the placements each executes.
			offers := map[*identity.Key][]*descriptor.Document{}
			for _, owner := range []*identity.Key{self, execKey} {
				for i, p := range propertyOffers {
					d := offerWithPrice(t, fmt.Sprintf("pool-%d", i), p, owner)
					offers[owner] = append(offers[owner], d)
					if err := b.RegisterOffer(ctx, d); err != nil {
						t.Fatal(err)
					}
				}
			}
			rng := rand.New(rand.NewPCG(7, 11))
			type placement struct {
				offer    *descriptor.Document
				home     *identity.Key
				exec     *identity.Key
				next     time.Time
				seq      int64
				instance int64
			}
			var placements []*placement
			for i := range 150 {
				p := &placement{home: self, exec: self, instance: int64(1 + rng.IntN(3)),
					next: now.Add(-time.Duration(200+rng.IntN(2000)) * time.Hour).Truncate(time.Minute)}
				switch rng.IntN(4) {
				case 0:
					p.exec = execKey // this broker is the home broker
				case 1:
					p.home = execKey // this broker executed for another's tenant
				}
				p.offer = offers[p.exec][i%len(propertyOffers)]
				placements = append(placements, p)
			}
			var inputs [][]byte
			type made struct {
				r     *settlement.UsageRecord
				valid bool
			}
			byDigest := map[string]made{}
			for range n {
				p := placements[rng.IntN(len(placements))]
				d := time.Duration(5+rng.IntN(600)) * time.Minute
				start := p.next
				valid := true
				if rng.IntN(40) == 0 && p.seq > 0 {
					start = start.Add(-(d / 2).Truncate(time.Minute)) // overlaps the previous record
					valid = false
				}
				p.seq++
				r := &settlement.UsageRecord{
					Job: fmt.Sprintf("job-%p", p), Placement: fmt.Sprintf("pl-%p", p), Sequence: p.seq,
					ComputeID: p.offer.Offer.ComputeID, Offer: p.offer.Digest, Instances: p.instance,
					Tenant: tenantKey.ID(), Provider: providerKey.ID(), HomeBroker: p.home.ID(), ExecutingBroker: p.exec.ID(),
					PeriodStart: start, PeriodEnd: start.Add(d),
					Fees: settlement.Fees{Home: descriptor.MustDecimal("0.015"), Executing: descriptor.MustDecimal("0.0275")},
				}
				secs := int64(d.Seconds()) * p.instance
				r.Meters = append(r.Meters, settlement.Meter{Meter: settlement.InstanceSeconds, Quantity: fmt.Sprint(rng.Int64N(secs + 1))})
				if rng.IntN(2) == 0 {
					r.Meters = append(r.Meters, settlement.Meter{Meter: settlement.AcceleratorSeconds, Model: "H100", Quantity: fmt.Sprintf("%d.%03d", rng.Int64N(secs*8), rng.IntN(1000))})
				}
				if rng.IntN(3) == 0 && p.offer == offers[p.exec][0] {
					r.Meters = append(r.Meters, settlement.Meter{Meter: settlement.TokensOut, Quantity: fmt.Sprint(rng.Int64N(50_000_000))})
				}
				if rng.IntN(50) == 0 {
					r.Meters[0].Quantity = fmt.Sprint(secs + 1) // more than the instances could use
					valid = false
				}
				if valid {
					p.next = r.PeriodEnd.Add(time.Duration(rng.IntN(3)) * time.Minute)
				}
				env := seal(t, p.exec, r)
				inputs = append(inputs, env)
				if rng.IntN(10) == 0 {
					inputs = append(inputs, env) // a duplicate
				}
				byDigest[string(env)] = made{r, valid}
			}
			// Holds for some jobs, placed before their usage arrives.
			tenant := settlement.AccountOf("tenant", tenantKey.ID())
			holdAmounts := map[string]descriptor.Nanos{}
			for _, p := range placements[:40] {
				if p.exec == self || p.home == self {
					amt := descriptor.Nanos(rng.Int64N(3000)) * 1e9
					job := fmt.Sprintf("job-%p", p)
					if _, err := b.PlaceHold(ctx, job, tenant, p.offer.Offer.Price.Currency, amt); err != nil {
						t.Fatal(err)
					}
					holdAmounts[job] = amt
				}
			}
			rng.Shuffle(len(inputs), func(i, j int) { inputs[i], inputs[j] = inputs[j], inputs[i] })
			// Ingest in batches of varied sizes, and send everything twice.
			accepted := map[settlement.RecordID]*settlement.Transaction{}
			refusedDigests := map[string]bool{}
			for round := range 2 {
				for i := 0; i < len(inputs); {
					k := min(len(inputs)-i, 1+rng.IntN(120))
					out, err := b.Ingest(ctx, inputs[i:i+k])
					if err != nil {
						t.Fatal(err)
					}
					for j, o := range out {
						switch o.Status {
						case settlement.Accepted:
							if round > 0 || accepted[o.Record] != nil {
								t.Fatalf("record %s posted twice", o.Record)
							}
							accepted[o.Record] = o.Transaction
						case settlement.Refused:
							refusedDigests[string(inputs[i+j])] = true
							if byDigest[string(inputs[i+j])].valid && o.Reason != settlement.ReasonOverlappingPeriod {
								t.Fatalf("a valid record was refused: %s %s", o.Reason, o.Detail)
							}
						}
					}
					i += k
				}
			}
			// Independently recompute every account's total.
			want := map[string]descriptor.Nanos{}
			charges := map[string]descriptor.Nanos{} // per job, what the tenant was charged on this broker
			for raw, md := range byDigest {
				env, _ := identity.DecodeEnvelope([]byte(raw))
				id := settlement.RecordIDOf(env.Payload)
				tx, ok := accepted[id]
				if !ok {
					continue
				}
				r := md.r
				all := append(slices.Clone(offers[self]), offers[execKey]...)
				doc := all[slices.IndexFunc(all, func(d *descriptor.Document) bool { return d.Digest == r.Offer })]
				charge := independentCharge(t, r, doc.Offer)
				home := roundHalfEven(charge, r.Fees.Home)
				exec := roundHalfEven(charge, r.Fees.Executing)
				cur := doc.Offer.Price.Currency
				add := func(account string, v descriptor.Nanos) { want[account+" "+cur] += v }
				switch tx.Role {
				case settlement.RoleLocal:
					add(string(tenant), -(charge + home + exec))
					add(string(settlement.AccountOf("provider", providerKey.ID())), charge)
					add(string(settlement.AccountOf("fees", self.ID())), home+exec)
					charges[r.Job] += charge + home + exec
				case settlement.RoleHome:
					add(string(tenant), -(charge + home + exec))
					add(string(settlement.AccountOf("clearing", execKey.ID())), charge+exec)
					add(string(settlement.AccountOf("fees", self.ID())), home)
					charges[r.Job] += charge + home + exec
				case settlement.RoleExecuting:
					add(string(settlement.AccountOf("clearing", execKey.ID())), -(charge + exec))
					add(string(settlement.AccountOf("provider", providerKey.ID())), charge)
					add(string(settlement.AccountOf("fees", self.ID())), exec)
				}
			}
			balances, err := b.Balances(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]descriptor.Nanos{}
			for _, bal := range balances {
				got[string(bal.Account)+" "+bal.Currency] = bal.Amount
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: books say %s, recomputed %s", k, got[k].Decimal(), v.Decimal())
				}
			}
			if len(got) != len(want) {
				t.Errorf("books have %d balances, recomputation %d", len(got), len(want))
			}
			tb, err := b.TrialBalance(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for cur, v := range tb {
				if v != 0 {
					t.Errorf("trial balance in %s is %s", cur, v.Decimal())
				}
			}
			// Holds captured exactly what they could, never going negative.
			for job, amt := range holdAmounts {
				hs, _ := b.Holds(ctx, job)
				h := hs[0]
				if h.Captured != min(amt, charges[job]) || h.Captured+h.Released > h.Amount || h.Remaining() < 0 {
					t.Errorf("hold %s: %+v, charges %s", job, h, charges[job].Decimal())
				}
				h, _ = b.ReleaseHold(ctx, job)
				if h.Captured+h.Released != h.Amount {
					t.Errorf("released hold %s: %+v", job, h)
				}
			}
			// Every accepted record has two log entries, every refusal one.
			if size := logSize(t, b); size != int64(2*len(accepted)+len(refusedDigests)) {
				t.Errorf("log has %d entries; %d records and %d refusals", size, len(accepted), len(refusedDigests))
			}
			t.Logf("%d inputs: %d records posted, %d refused", len(inputs), len(accepted), len(refusedDigests))
		})
	}
}

// independentCharge rates a record from first principles: minute by
// minute through the period, each minute's rates found from the schedule,
// consecutive minutes at the same rates grouped, each group priced exactly
// and rounded half to even to nano-units. Record periods here start and end
// on whole minutes.
func independentCharge(t testing.TB, r *settlement.UsageRecord, o *descriptor.Offer) descriptor.Nanos {
	loc := o.Price.Location()
	total := r.PeriodEnd.Sub(r.PeriodStart)
	billed := total
	if inc := o.Price.MinimumIncrement.Std(); inc > 0 {
		billed = (total + inc - 1) / inc * inc
	}
	tierOf := func(tm time.Time) string {
		lt := tm.In(loc)
		minute := lt.Hour()*60 + lt.Minute()
		days := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
		for _, tier := range o.Price.Tiers {
			s, e := descriptor.ClockMinutes(tier.Start), descriptor.ClockMinutes(tier.End)
			on := func(d string) bool { return len(tier.Days) == 0 || slices.Contains(tier.Days, d) }
			if s < e && on(days[lt.Weekday()]) && minute >= s && minute < e {
				return tier.Name
			}
			if s >= e && ((on(days[lt.Weekday()]) && minute >= s) || (on(days[(lt.Weekday()+6)%7]) && minute < e)) {
				return tier.Name
			}
		}
		return ""
	}
	rateFor := func(tier string, meter settlement.MeterKind) *apd.Decimal {
		pick := func(rs descriptor.Rates) descriptor.Decimal {
			switch meter {
			case settlement.InstanceSeconds:
				return rs.InstanceHour
			case settlement.AcceleratorSeconds:
				return rs.AcceleratorHour
			case settlement.TokensOut:
				return rs.TokensOutPerMillion
			}
			return rs.EgressGiB
		}
		for _, tr := range o.Price.Tiers {
			if tr.Name == tier && pick(tr.Rates).IsSet() {
				return pick(tr.Rates).Apd()
			}
		}
		return pick(o.Price.Rates).Apd()
	}
	type run struct {
		tier    string
		minutes int64
	}
	var runs []run
	for tm := r.PeriodStart; tm.Before(r.PeriodEnd); tm = tm.Add(time.Minute) {
		tier := tierOf(tm)
		if n := len(runs); n > 0 && runs[n-1].tier == tier {
			runs[n-1].minutes++
		} else {
			runs = append(runs, run{tier, 1})
		}
	}
	var sum descriptor.Nanos
	for _, rn := range runs {
		for _, m := range r.Meters {
			q, ok := new(big.Rat).SetString(m.Quantity)
			if !ok {
				t.Fatalf("quantity %q", m.Quantity)
			}
			if q.Sign() == 0 {
				continue
			}
			// quantity × (run / period) [× billed / period] / unit × rate, as a rational
			v := new(big.Rat).Mul(q, big.NewRat(rn.minutes*60, int64(total.Seconds())))
			per := int64(3600)
			switch m.Meter {
			case settlement.TokensOut:
				per = 1_000_000
			case settlement.EgressBytes:
				per = 1 << 30
			default:
				v.Mul(v, big.NewRat(int64(billed.Seconds()), int64(total.Seconds())))
			}
			v.Quo(v, big.NewRat(per, 1))
			rate, _ := new(big.Rat).SetString(rateFor(rn.tier, m.Meter).Text('f'))
			v.Mul(v, rate)
			sum += ratRoundHalfEven(v)
		}
	}
	return sum
}

// ratRoundHalfEven rounds a non-negative rational to nano-units.
func ratRoundHalfEven(v *big.Rat) descriptor.Nanos {
	scaled := new(big.Rat).Mul(v, big.NewRat(1_000_000_000, 1))
	lo := new(big.Int).Div(scaled.Num(), scaled.Denom())
	frac := new(big.Rat).Sub(scaled, new(big.Rat).SetInt(lo))
	switch frac.Cmp(big.NewRat(1, 2)) {
	case 1:
		lo.Add(lo, big.NewInt(1))
	case 0:
		if lo.Bit(0) == 1 {
			lo.Add(lo, big.NewInt(1))
		}
	}
	return descriptor.Nanos(lo.Int64())
}

func roundHalfEvenDec(v *apd.Decimal) descriptor.Nanos {
	ctx := apd.BaseContext.WithPrecision(100)
	ctx.Rounding = apd.RoundHalfEven
	ctx.Mul(v, v, apd.New(1, 9))
	ctx.RoundToIntegralValue(v, v)
	i, _ := v.Int64()
	return descriptor.Nanos(i)
}

func roundHalfEven(charge descriptor.Nanos, rate descriptor.Decimal) descriptor.Nanos {
	v := new(apd.Decimal)
	apd.BaseContext.WithPrecision(100).Mul(v, apd.New(int64(charge), -9), rate.Apd())
	return roundHalfEvenDec(v)
}
