package match

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/match/synth"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/settlementtest"
)

// TestPlacedOffersSatisfyTheirJobs generates books and job streams and
// checks, for every job, that (1) each candidate Match returns satisfies
// every hard constraint of the job, judged by an independent reading of
// spec/matching.md below, and (2) the indexed, lazily evaluating Match
// returns exactly what the full scan returns.
//
// Seeds 4 to 6 are hard books (synth.Generator.Hard): totals past 2^53
// nano-units, sub-second runtimes, tiers on the hours daylight saving
// skips or repeats, matched at a nanosecond-fraction start just before
// Europe's and America's clocks go back.
func TestPlacedOffersSatisfyTheirJobs(t *testing.T) {
	seeds, offers, jobs := []uint64{1, 2, 3, 4, 5, 6, 7, 8}, 400, 700
	if testing.Short() {
		seeds, jobs = []uint64{1, 4, 7}, 200
	}
	placed, unplaced := 0, 0
	above53, subSecond := 0, 0
	for _, seed := range seeds {
		g := synth.New(seed, 60)
		c := &clock{synth.Epoch}
		if seed >= 7 { // three regions: buckets of many offers, where early stops matter
			g.Dense = true
		}
		if seed >= 4 && seed != 7 {
			g.Hard = true
			g.Epoch = []time.Time{
				time.Date(2026, 10, 25, 0, 59, 59, 999_999_999, time.UTC), // Europe: 03:00 → 02:00 at 01:00 UTC
				time.Date(2026, 11, 1, 5, 0, 0, 123_456_789, time.UTC),    // America: 02:00 → 01:00 at 06:00 UTC (New York)
				time.Date(2026, 3, 29, 0, 30, 0, 500_000_000, time.UTC),   // Europe: 02:00 → 03:00 at 01:00 UTC
			}[seed%3]
			c.t = g.Epoch
		}
		g.Mixed = seed%2 == 0
		b := book.New(c.now)
		var held []string
		for range offers {
			d, env := g.Offer()
			if err := b.Put(d, env, d.Offer.Broker); err != nil {
				t.Fatal(err)
			}
			held = append(held, d.Offer.ComputeID.Name())
		}
		cfg := Config{HomeRegion: "us-east-1"}
		if seed%3 == 0 { // queues that differ by offer: time is not the runtime alone
			cfg.Queue = func(e *book.Entry) time.Duration { return time.Duration(e.NameHash%7) * 13 * time.Minute }
		}
		m := New(b, cfg)
		if seed%2 == 1 {
			m.rankPool = 3 // smaller than most feasible sets
		}
		rng := rand.New(rand.NewPCG(seed, 99))
		for i := range jobs {
			if i%50 == 49 { // churn: reservations, releases, withdrawals, new offers
				churn(t, rng, b, g, &held)
			}
			var exclude map[string]bool
			if rng.IntN(4) == 0 {
				exclude = map[string]bool{}
				for range 40 {
					exclude[held[rng.IntN(len(held))]] = true
				}
			}
			job := g.Job()
			res, err := m.Match(job, Options{K: 5, Exclude: exclude})
			naive, nerr := m.MatchNaive(job, Options{K: 5, Exclude: exclude})
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
			for i, c := range res.Candidates {
				if n := naive.Candidates[i]; c.Score != n.Score || c.Parts != n.Parts {
					t.Fatalf("seed %d job %s: candidate %d scores %v %+v indexed, %v %+v in the full scan\n%s",
						seed, job.Job.Metadata.Name, i+1, c.Score, c.Parts, n.Score, n.Parts, job.Canonical)
				}
			}
			for _, cand := range res.Candidates {
				if cand.Parts.Cost > 1<<53 {
					above53++
				}
				if cand.Parts.Runtime < time.Second {
					subSecond++
				}
				if why := violates(job.Job, cand, c.t, "USD"); why != "" {
					t.Fatalf("seed %d job %s placed on %s which violates: %s\n%s", seed, job.Job.Metadata.Name, cand.Entry.Name, why, job.Canonical)
				}
			}
		}
	}
	if placed < 100 || unplaced < 20 || above53 < 5 || subSecond < 5 {
		t.Fatalf("the generator gives a poor mix: %d placed, %d unplaced, %d candidates above 2^53 nano-units, %d under a second",
			placed, unplaced, above53, subSecond)
	}
	t.Logf("%d jobs placed, %d unplaced; %d candidates above 2^53 nano-units, %d under a second", placed, unplaced, above53, subSecond)
}

// churn changes a book as a broker's would between decisions: it
// reserves instances of some offers, releases some reservations, withdraws
// some offers and adds new ones.
func churn(t *testing.T, rng *rand.Rand, b *book.Book, g *synth.Generator, held *[]string) {
	t.Helper()
	var ids []string
	for range 30 {
		name := (*held)[rng.IntN(len(*held))]
		if r, err := b.Reserve(name, 1+rng.IntN(8), "churn", time.Hour); err == nil {
			ids = append(ids, r.ID)
		}
	}
	for _, id := range ids[:len(ids)/2] {
		if err := b.Release(id); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		b.Remove((*held)[rng.IntN(len(*held))])
	}
	for range 10 {
		d, env := g.Offer()
		if err := b.Put(d, env, d.Offer.Broker); err != nil {
			t.Fatal(err)
		}
		*held = append(*held, d.Offer.ComputeID.Name())
	}
}

func names(cs []Candidate) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Entry.Name)
	}
	return strings.Join(s, " ")
}

// offerOf parses an entry's offer document again: the checks here read the
// document, not the book's copies of its fields.
func offerOf(e *book.Entry) *descriptor.Offer {
	o, err := e.Offer()
	if err != nil {
		panic(err)
	}
	return o
}

// violates checks a candidate against the job from first principles.
func violates(j *descriptor.Job, c Candidate, now time.Time, defaultCurrency string) string {
	e, o := c.Entry, offerOf(c.Entry)
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
	// The cost reported must be what settlement charges for the record of
	// the run on this offer (spec/matching.md §4), and the runtime the
	// exact scaling of the job's.
	if want := wantRuntime(j, c); c.Parts.Runtime != want {
		return fmt.Sprintf("runtime %v, recomputed %v", c.Parts.Runtime, want)
	}
	// The run starts once the job's queue estimate on the offer has passed.
	start := now.Add(c.Parts.Time - c.Parts.Runtime)
	rating, err := settlement.Rate(settlementtest.FullUse(o, start, c.Parts.Runtime, int64(j.Nodes)), o)
	if err != nil {
		return fmt.Sprintf("settlement refuses the run: %v", err)
	}
	if rating.Charge != c.Parts.Cost {
		return fmt.Sprintf("cost %s, settlement charges %s", c.Parts.Cost.Decimal(), rating.Charge.Decimal())
	}
	peak := peakHourly(o, start, c.Parts.Runtime)
	exact.Mul(peak, peak, apd.New(int64(j.Nodes), 0))
	if b := j.Budget; b != nil {
		if b.MaxTotal.IsSet() && rating.Charge > descriptor.NanosFromDecimal(b.MaxTotal.Apd()) {
			return "over the total budget"
		}
		if b.MaxPricePerHour.IsSet() && peak.Cmp(b.MaxPricePerHour.Apd()) > 0 {
			return "over the hourly budget"
		}
	}
	return ""
}

// wantRuntime scales the job's runtime to the candidate's hardware by
// spec/matching.md §3, in exact fractions: ceil(estimatedRuntime × T_ref /
// T) nanoseconds, throughputs read as the decimals they are written as.
// With several groups able to serve the first request, any of theirs is
// accepted.
func wantRuntime(j *descriptor.Job, c Candidate) time.Duration {
	est := j.EstimatedRuntime.Std()
	if len(j.Resources.Accelerators) == 0 {
		return est
	}
	r := &j.Resources.Accelerators[0]
	at := func(t descriptor.TFLOPS, p int) float64 { return [...]float64{t.FP16, t.FP32, t.FP64, t.INT8}[p] }
	p := 0
	for q := range 4 {
		if at(r.TFLOPS, q) > 0 {
			p = q
			break
		}
	}
	ref := at(r.TFLOPS, p)
	if ref == 0 {
		for _, m := range descriptor.ResolveAccelerators(r) {
			if v := at(m.TFLOPS, p); v > 0 && (ref == 0 || v < ref) {
				ref = v
			}
		}
	}
	var first time.Duration = -1
	groups := offerOf(c.Entry).Class.Accelerators
	for gi := range groups {
		g := &groups[gi]
		if !groupMeets(r, g) {
			continue
		}
		want := est
		if tf := at(g.TFLOPS, p); ref > 0 && tf > 0 {
			rr, _ := new(big.Rat).SetString(strconv.FormatFloat(ref, 'g', -1, 64))
			tt, _ := new(big.Rat).SetString(strconv.FormatFloat(tf, 'g', -1, 64))
			q := new(big.Rat).Mul(big.NewRat(int64(est), 1), rr)
			q.Quo(q, tt)
			n := new(big.Int).Quo(q.Num(), q.Denom())
			if !q.IsInt() {
				n.Add(n, big.NewInt(1))
			}
			want = time.Duration(n.Int64())
		}
		if want == c.Parts.Runtime {
			return want
		}
		if first < 0 {
			first = want
		}
	}
	return first
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

var exact = apd.BaseContext.WithPrecision(50)

// peakHourly is the highest hourly price of one instance in force during
// the run, in exact decimals.
func peakHourly(o *descriptor.Offer, start time.Time, runtime time.Duration) *apd.Decimal {
	peak := new(apd.Decimal)
	o.Price.Week().Segments(start, start.Add(runtime), func(_, _ time.Time, tier int) {
		rates := o.Price.Rates
		if tier != descriptor.NoTier {
			rates = rates.Overlay(o.Price.Tiers[tier].Rates)
		}
		if h := rates.InstanceRate(&o.Class); h.Cmp(peak) > 0 {
			peak.Set(h)
		}
	})
	return peak
}

// TestConcurrentMatchesAgree: decisions made at once on one matcher (the
// broker's matching workers do) give what they give one at a time; the
// working memory decisions reuse (rankScratch) is never shared between
// two of them. Run with -race.
func TestConcurrentMatchesAgree(t *testing.T) {
	g := synth.New(11, 60)
	c := &clock{synth.Epoch}
	b := book.New(c.now)
	for range 400 {
		d, env := g.Offer()
		if err := b.Put(d, env, d.Offer.Broker); err != nil {
			t.Fatal(err)
		}
	}
	m := New(b, Config{HomeRegion: "us-east-1"})
	m.rankPool = 7
	// Mostly rank jobs, which use the reused memory, and some others.
	var jobs []*descriptor.Document
	want := map[*descriptor.Document]string{}
	for tries := 0; len(jobs) < 60 && tries < 20_000; tries++ {
		job := g.Job()
		if job.Job.Rank == nil && tries%10 != 0 {
			continue
		}
		res, err := m.Match(job, Options{})
		if err != nil {
			continue
		}
		jobs = append(jobs, job)
		want[job] = fmt.Sprint(names(res.Candidates), scores(res.Candidates))
	}
	if len(jobs) < 60 {
		t.Fatalf("only %d jobs to match", len(jobs))
	}
	errs := make(chan error, 4)
	for w := range 4 {
		go func() {
			for i := range 5 * len(jobs) {
				job := jobs[(i*(w+1)+w)%len(jobs)]
				res, err := m.Match(job, Options{})
				if err != nil {
					errs <- err
					return
				}
				if got := fmt.Sprint(names(res.Candidates), scores(res.Candidates)); got != want[job] {
					errs <- fmt.Errorf("job %s: %s at once, %s alone", job.Job.Metadata.Name, got, want[job])
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func scores(cs []Candidate) []float64 {
	var out []float64
	for _, c := range cs {
		out = append(out, c.Score)
	}
	return out
}
