package match

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/match/synth"
	"github.com/cinet/cinet/descriptor"
)

// TestPlacedOffersSatisfyTheirJobs generates books and job streams and
// checks, for every job, that (1) each candidate Match returns satisfies
// every hard constraint of the job, judged by an independent reading of
// spec/matching.md below, and (2) the indexed, lazily evaluating Match
// returns exactly what the full scan returns.
func TestPlacedOffersSatisfyTheirJobs(t *testing.T) {
	seeds, offers, jobs := []uint64{1, 2, 3}, 400, 700
	if testing.Short() {
		seeds, jobs = seeds[:1], 200
	}
	placed, unplaced := 0, 0
	for _, seed := range seeds {
		g := synth.New(seed, 60)
		c := &clock{synth.Epoch}
		b := book.New(c.now)
		for range offers {
			d, env := g.Offer()
			if err := b.Put(d, env, d.Offer.Broker); err != nil {
				t.Fatal(err)
			}
		}
		m := New(b, Config{HomeRegion: "us-east-1"})
		for range jobs {
			job := g.Job()
			res, err := m.Match(job, Options{K: 5})
			naive, nerr := m.MatchNaive(job, Options{K: 5})
			var nm *NoMatchError
			if errors.As(err, &nm) {
				unplaced++
				if !errors.As(nerr, &nm) {
					t.Fatalf("seed %d job %s: Match finds nothing, the full scan finds %d", seed, job.Job.Metadata.Name, len(naive.Candidates))
				}
				if nm.Explanation().Feasible != 0 {
					t.Fatalf("job %s: no match but %d feasible offers explained", job.Job.Metadata.Name, nm.Explanation().Feasible)
				}
				continue
			}
			if err != nil || nerr != nil {
				t.Fatalf("job %s: %v / %v", job.Job.Metadata.Name, err, nerr)
			}
			placed++
			if got, want := names(res.Candidates), names(naive.Candidates); got != want {
				t.Fatalf("seed %d job %s: indexed %s, full scan %s\n%s", seed, job.Job.Metadata.Name, got, want, job.Canonical)
			}
			for _, cand := range res.Candidates {
				if why := violates(job.Job, cand, c.t, "USD"); why != "" {
					t.Fatalf("seed %d job %s placed on %s which violates: %s\n%s", seed, job.Job.Metadata.Name, cand.Entry.Name, why, job.Canonical)
				}
			}
		}
	}
	if placed < 100 || unplaced < 20 {
		t.Fatalf("the generator gives a poor mix: %d placed, %d unplaced", placed, unplaced)
	}
	t.Logf("%d jobs placed, %d unplaced", placed, unplaced)
}

func names(cs []Candidate) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Entry.Name)
	}
	return strings.Join(s, " ")
}

// violates checks a candidate against the job from first principles.
func violates(j *descriptor.Job, c Candidate, now time.Time, defaultCurrency string) string {
	e, o := c.Entry, c.Entry.Offer
	if now.Before(o.ValidFrom) || !now.Before(o.ValidUntil) {
		return "validity"
	}
	if int(e.Free) < j.Nodes {
		return "quantity"
	}
	inList := func(list []string, v string, prefixOK bool) bool {
		for _, x := range list {
			if x == v || (prefixOK && strings.HasSuffix(x, "*") && strings.HasPrefix(v, x[:len(x)-1])) {
				return true
			}
		}
		return false
	}
	if r := j.Placement.Regions; (len(r.Allow) > 0 && !inList(r.Allow, o.Region, true)) || inList(r.Deny, o.Region, true) {
		return "region"
	}
	inJ := func(list []string) bool {
		for _, x := range list {
			if o.Jurisdiction == x || strings.HasPrefix(o.Jurisdiction, x+"-") {
				return true
			}
		}
		return false
	}
	if jl := j.Placement.Jurisdictions; (len(jl.Allow) > 0 && !inJ(jl.Allow)) || inJ(jl.Deny) {
		return "jurisdiction"
	}
	if p := j.Placement.Providers; (len(p.Allow) > 0 && !inList(p.Allow, o.Provider.String(), false)) || inList(p.Deny, o.Provider.String(), false) {
		return "provider"
	}
	currency := defaultCurrency
	if j.Budget != nil {
		currency = j.Budget.Currency
	}
	if o.Price.Currency != currency {
		return "currency"
	}
	if float64(o.Class.CPU.Count) < j.Resources.CPUs || o.Class.Memory < j.Resources.Memory || o.Class.Disk < j.Resources.Disk {
		return "resources"
	}
	if len(j.Resources.Accelerators) == 0 {
		if len(o.Class.Accelerators) > 0 {
			return "an accelerator offer for a CPU job"
		}
	} else if !assign(j.Resources.Accelerators, o.Class.Accelerators, 0, 0) {
		return "accelerators"
	}
	if j.Requirements != nil {
		if ok, err := j.Requirements.EvalBool(e.Attrs); err != nil || !ok {
			return "requirements"
		}
	}
	// The cost reported must be the schedule's price over the reported
	// runtime, recomputed minute by minute in exact decimals.
	total, peak := exactCost(o, now, c.Parts.Runtime)
	total.Mul(total, int64(j.Nodes))
	peak.Mul(peak, int64(j.Nodes))
	if got := c.Parts.Cost.Decimal(); !total.close(got) {
		return fmt.Sprintf("cost %s, recomputed %s", got, total)
	}
	if b := j.Budget; b != nil {
		if b.MaxTotal.IsSet() && total.GreaterThan(b.MaxTotal.Apd()) {
			return "over the total budget"
		}
		if b.MaxPricePerHour.IsSet() && peak.GreaterThan(b.MaxPricePerHour.Apd()) {
			return "over the hourly budget"
		}
	}
	return ""
}

// assign tries every assignment of requests to distinct groups.
func assign(reqs []descriptor.AcceleratorRequest, groups []descriptor.Accelerator, i int, used uint) bool {
	if i == len(reqs) {
		return true
	}
	for gi := range groups {
		if used&(1<<gi) == 0 && groupMeets(&reqs[i], &groups[gi]) && assign(reqs, groups, i+1, used|1<<gi) {
			return true
		}
	}
	return false
}

func groupMeets(r *descriptor.AcceleratorRequest, g *descriptor.Accelerator) bool {
	m, _ := descriptor.LookupAccelerator(g.Model)
	if (r.Model != "" && r.Model != g.Model) || (r.Kind != "" && r.Kind != m.Kind) || (r.Vendor != "" && r.Vendor != m.Vendor) ||
		g.Count < r.Count || g.Memory < r.Memory || !g.TFLOPS.AtLeast(r.TFLOPS) {
		return false
	}
	if !r.ComputeCapability.IsZero() && !r.ComputeCapability.Allows(g.ComputeCapability) {
		return false
	}
	for _, f := range r.Frameworks {
		ok := false
		for _, have := range g.Frameworks {
			ok = ok || (have.Name == f.Name && f.Version.Allows(have.Version))
		}
		if !ok {
			return false
		}
	}
	return true
}

type dec struct{ apd.Decimal }

var exact = apd.BaseContext.WithPrecision(50)

func (d *dec) Mul(a *dec, n int64) { exact.Mul(&d.Decimal, &a.Decimal, apd.New(n, 0)) }

func (d *dec) GreaterThan(x *apd.Decimal) bool { return d.Cmp(x) > 0 }

// close compares with a Nanos decimal, which rounds up each priced span to
// the nano: allow a few nanos per span.
func (d *dec) close(nanos string) bool {
	got, _, _ := apd.NewFromString(nanos)
	var diff apd.Decimal
	exact.Sub(&diff, got, &d.Decimal)
	diff.Abs(&diff)
	return diff.Cmp(apd.New(1, -6)) <= 0
}

// exactCost walks the run from tier boundary to tier boundary in local
// time, pricing each stretch at the rate of its tier.
func exactCost(o *descriptor.Offer, start time.Time, runtime time.Duration) (*dec, *dec) {
	total, peak := &dec{}, &dec{}
	loc := o.Price.Location()
	for t := start; t.Before(start.Add(runtime)); {
		lt := t.In(loc)
		minute := lt.Hour()*60 + lt.Minute()
		day := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}[lt.Weekday()]
		prevDay := []string{"sat", "sun", "mon", "tue", "wed", "thu", "fri"}[lt.Weekday()]
		rates := o.Price.Rates
		for _, tier := range o.Price.Tiers {
			s, e := descriptor.ClockMinutes(tier.Start), descriptor.ClockMinutes(tier.End)
			onDay := func(d string) bool {
				if len(tier.Days) == 0 {
					return true
				}
				for _, x := range tier.Days {
					if x == d {
						return true
					}
				}
				return false
			}
			in := false
			if s < e {
				in = onDay(day) && minute >= s && minute < e
			} else {
				in = (onDay(day) && minute >= s) || (onDay(prevDay) && minute < e)
			}
			if in {
				for _, p := range []struct{ dst, src *descriptor.Decimal }{
					{&rates.InstanceHour, &tier.Rates.InstanceHour}, {&rates.VCPUHour, &tier.Rates.VCPUHour},
					{&rates.GiBHour, &tier.Rates.GiBHour}, {&rates.AcceleratorHour, &tier.Rates.AcceleratorHour},
				} {
					if p.src.IsSet() {
						*p.dst = *p.src
					}
				}
			}
		}
		hourly := rates.InstanceRate(&o.Class)
		// The rate holds until the next minute of the day at which some
		// tier starts or ends, or midnight.
		boundary := 24 * 60
		for _, tier := range o.Price.Tiers {
			for _, b := range []int{descriptor.ClockMinutes(tier.Start), descriptor.ClockMinutes(tier.End)} {
				if b > minute && b < boundary {
					boundary = b
				}
			}
		}
		next := time.Date(lt.Year(), lt.Month(), lt.Day(), boundary/60, boundary%60, 0, 0, loc) // 24:00 normalizes to the next midnight
		if end := start.Add(runtime); next.After(end) {
			next = end.In(loc)
		}
		secs := int64(next.Sub(lt) / time.Second)
		var part apd.Decimal
		exact.Mul(&part, hourly, apd.New(secs, 0))
		exact.Quo(&part, &part, apd.New(3600, 0))
		exact.Add(&total.Decimal, &total.Decimal, &part)
		if hourly.Cmp(&peak.Decimal) > 0 {
			peak.Set(hourly)
		}
		t = next
	}
	return total, peak
}
