package match

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
)

// now is a Monday, 10:00 in Shanghai.
var now = time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

const (
	alphaDID = "did:key:z6Mks48eSrUKafTKbm8Cvsentvn9xaxXwge3E3xPv11Bwik2"
	alphaFP  = "4xudxs76i6fhwzlfejczdta7pa"
	betaDID  = "did:key:z6MkmEAwS2tKyJmKCJPn83hgYcmsy2jGmGxcseYQ6WVXKWhN"
	betaFP   = "zbvpoeys54f6kdbl26utl4glee"
)

const baseOffer = `apiVersion: cinet/v1
kind: Offer
metadata: {name: POOL}
computeId: ci:FP/REGION/a/POOL
provider: DID
broker: did:key:z6MkvhVViYBE4mnmVqqiJiPVFfynt7nAe9TXn4iAnkJEVNBg
region: REGION
zone: a
jurisdiction: JURIS
class:
  cpu: {arch: x86_64, count: 96}
  memory: 1Ti
  disk: 2Ti
  accelerators:
    - model: MODEL
      count: 8
      frameworks: [{name: cuda, version: "12.4"}]
quantity: 4
price:
  currency: CURRENCY
  timezone: Asia/Shanghai
  rates: {instanceHour: "RATE"}
validFrom: 2026-11-30T01:00:00Z
validUntil: 2026-12-02T00:00:00Z
sequence: 1
`

const baseJob = `apiVersion: cinet/v1
kind: Job
metadata: {name: train}
tasks: [{name: main, command: [train]}]
nodes: 2
resources:
  cpus: 64
  memory: 512Gi
  disk: 1Ti
  accelerators:
    - model: H100
      count: 8
      frameworks: [{name: cuda, version: ">=12.2"}]
placement:
  jurisdictions: {allow: [CN]}
budget: {currency: CNY, maxPricePerHour: "500"}
estimatedRuntime: 1h
`

type offerSpec struct {
	pool, fp, did, region, juris, model, currency, rate string
	edits                                               []string // pairs of old, new
}

func (s offerSpec) doc(t testing.TB) *descriptor.Document {
	t.Helper()
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	src := strings.NewReplacer(
		"POOL", def(s.pool, "p1"), "FP", def(s.fp, alphaFP), "DID", def(s.did, alphaDID),
		"REGION", def(s.region, "cn-east-1"), "JURIS", def(s.juris, "CN"), "MODEL", def(s.model, "H100"),
		"CURRENCY", def(s.currency, "CNY"), "RATE", def(s.rate, "100"),
	).Replace(baseOffer)
	src = edit(t, src, s.edits)
	d, err := descriptor.Parse(s.pool+".yaml", []byte(src))
	if err != nil {
		t.Fatalf("offer: %v\n%s", err, src)
	}
	return d
}

func edit(t testing.TB, src string, edits []string) string {
	t.Helper()
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(src, edits[i]) {
			t.Fatalf("edit: %q not in\n%s", edits[i], src)
		}
		src = strings.Replace(src, edits[i], edits[i+1], 1)
	}
	return src
}

func jobDoc(t testing.TB, edits ...string) *descriptor.Document {
	t.Helper()
	src := edit(t, baseJob, edits)
	d, err := descriptor.Parse("job.yaml", []byte(src))
	if err != nil {
		t.Fatalf("job: %v\n%s", err, src)
	}
	return d
}

func newBook(t testing.TB, c *clock, offers ...offerSpec) *book.Book {
	t.Helper()
	b := book.New(c.now)
	for _, o := range offers {
		d := o.doc(t)
		if err := b.Put(d, nil, d.Offer.Broker); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func fateOf(x *Explanation, pool string) Fate {
	for _, f := range x.Fates {
		if strings.HasSuffix(f.Offer, "/"+pool) {
			return f
		}
	}
	return Fate{}
}

// TestReasons: each reason code, from one change to a job or offer that
// otherwise match.
func TestReasons(t *testing.T) {
	cpuOffer := []string{"  accelerators:\n    - model: H100\n      count: 8\n      frameworks: [{name: cuda, version: \"12.4\"}]\n", ""}
	cpuJob := []string{"  accelerators:\n    - model: H100\n      count: 8\n      frameworks: [{name: cuda, version: \">=12.2\"}]\n", ""}
	// An offer with an H200 group first and a V100 group second.
	twoGroups := offerSpec{model: "H200", edits: []string{"quantity: 4", "    - model: V100\n      count: 8\n      frameworks: [{name: cuda, version: \"12.1\"}]\nquantity: 4"}}
	requests := func(reqs string) []string {
		return []string{"  accelerators:\n    - model: H100\n      count: 8\n      frameworks: [{name: cuda, version: \">=12.2\"}]\n", "  accelerators:\n" + reqs}
	}
	cases := []struct {
		name      string
		job       []string
		offer     offerSpec
		advance   time.Duration
		exclude   bool
		emptyPool bool // a rank pool of no offers
		want      Reason
		detailHas string
	}{
		{name: "placed", want: ""},
		{name: "expired", advance: 47 * time.Hour, want: Expired},
		{name: "not yet valid", offer: offerSpec{edits: []string{"validFrom: 2026-11-30T01:00:00Z", "validFrom: 2026-11-30T03:00:00Z"}}, want: NotYetValid},
		{name: "refused", exclude: true, want: Refused},
		{name: "quantity", job: []string{"nodes: 2", "nodes: 5"}, want: InsufficientQuantity, detailHas: "4 free, job needs 5"},
		{name: "region", job: []string{"placement:\n", "placement:\n  regions: {deny: [\"cn-*\"]}\n"}, want: RegionDenied},
		{name: "jurisdiction", job: []string{"allow: [CN]", "allow: [US]"}, want: JurisdictionDenied},
		{name: "jurisdiction subdivision allowed", offer: offerSpec{juris: "CN-SH"}, want: ""},
		{name: "provider", job: []string{"placement:\n", "placement:\n  providers: {deny: [\"" + alphaDID + "\"]}\n"}, want: ProviderDenied},
		{name: "currency", job: []string{"currency: CNY", "currency: USD"}, want: CurrencyMismatch, detailHas: "priced in CNY, job pays in USD"},
		{name: "cpu", job: []string{"cpus: 64", "cpus: 128"}, want: InsufficientCPU},
		{name: "memory", job: []string{"memory: 512Gi", "memory: 4Ti"}, want: InsufficientMemory},
		{name: "disk", job: []string{"disk: 1Ti", "disk: 10Ti"}, want: InsufficientDisk},
		{name: "accelerators unrequested", job: cpuJob, want: AcceleratorsUnrequested},
		{name: "accelerator missing", offer: offerSpec{edits: cpuOffer}, want: AcceleratorMissing},
		{name: "model", job: []string{"model: H100", "model: A100"}, want: AcceleratorModel},
		{name: "kind", job: []string{"model: H100", "kind: npu", "frameworks: [{name: cuda, version: \">=12.2\"}]", "frameworks: [{name: cann, version: \">=7\"}]"}, want: AcceleratorKind},
		{name: "vendor", job: []string{"model: H100", "vendor: amd", "      frameworks: [{name: cuda, version: \">=12.2\"}]\n", ""}, want: AcceleratorVendor},
		{name: "count", job: []string{"count: 8", "count: 16"}, want: AcceleratorCount},
		{name: "accelerator memory", job: []string{"model: H100", "kind: gpu\n      memory: 100Gi", "      frameworks: [{name: cuda, version: \">=12.2\"}]\n", ""}, want: AcceleratorMemory},
		{name: "throughput", job: []string{"model: H100", "kind: gpu\n      tflops: {fp16: 1000}", "      frameworks: [{name: cuda, version: \">=12.2\"}]\n", ""}, want: AcceleratorThroughput},
		{name: "compute capability", offer: offerSpec{model: "A100"}, job: []string{"model: H100", "kind: gpu\n      computeCapability: \">=9.0\""}, want: ComputeCapability},
		{name: "framework missing", offer: offerSpec{edits: []string{"      frameworks: [{name: cuda, version: \"12.4\"}]\n", ""}}, want: FrameworkMissing},
		{name: "framework version", offer: offerSpec{edits: []string{"version: \"12.4\"", "version: \"12.1\""}}, want: FrameworkVersion},
		// A missing framework is the reason even when a framework listed
		// before it is at a refused version.
		{name: "framework missing and another too old", offer: offerSpec{edits: []string{"version: \"12.4\"", "version: \"12.1\""}},
			job: []string{"frameworks: [{name: cuda, version: \">=12.2\"}]", "frameworks: [{name: cuda, version: \">=12.2\"}, {name: opencl, version: \">=3.0\"}]"}, want: FrameworkMissing},
		// First-fit would give the H200 to the first request and leave the
		// second without; the assignment gives it the V100.
		{name: "assignment", offer: twoGroups, job: requests("    - {kind: gpu, count: 8, tflops: {fp16: 100.1}}\n    - {kind: gpu, count: 8, tflops: {fp16: 600}}\n"), want: ""},
		{name: "accelerator groups", offer: twoGroups, job: requests("    - {kind: gpu, count: 8, tflops: {fp16: 600}}\n    - {model: H200, count: 8}\n"), want: AcceleratorGroups, detailHas: "no assignment"},
		{name: "more requests than groups", offer: twoGroups, job: requests("    - {kind: gpu, count: 1}\n    - {kind: gpu, count: 1}\n    - {kind: gpu, count: 1}\n"), want: AcceleratorGroups},
		{name: "over budget hourly", job: []string{"maxPricePerHour: \"500\"", "maxPricePerHour: \"150\""}, want: OverBudget, detailHas: "up to 200 CNY/hour, budget 150"},
		{name: "over budget total", job: []string{"maxPricePerHour: \"500\"", "maxTotal: \"150\"", "estimatedRuntime: 1h", "estimatedRuntime: 2h"}, want: OverBudget, detailHas: "about 400 CNY in all, budget 150"},
		{name: "requirements false", job: []string{"placement:", "requirements: offer.market == \"spot\"\nplacement:"}, want: RequirementsFalse},
		{name: "requirements error", job: []string{"placement:", "requirements: offer.frameworks.rocm == \"6.0\"\nplacement:"}, want: RequirementsError, detailHas: "rocm"},
		{name: "outside the rank pool", job: []string{"placement:", "rank: double(offer.quantity)\nplacement:"}, emptyPool: true, want: OutsideRankPool, detailHas: "0 cheapest"},
		{name: "rank error", job: []string{"placement:", "rank: double(offer.frameworks.rocm)\nplacement:"}, want: RankError, detailHas: "rocm"},
	}
	covered := map[Reason]bool{}
	for _, tc := range cases {
		covered[tc.want] = true
	}
	for _, r := range Reasons {
		if !covered[r] {
			t.Errorf("no case gives reason %s", r)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now}
			b := newBook(t, c, tc.offer)
			c.t = c.t.Add(tc.advance)
			m := New(b, Config{HomeRegion: "cn-east-1"})
			if tc.emptyPool {
				m.rankPool = 0
			}
			job := jobDoc(t, tc.job...)
			opts := Options{}
			if tc.exclude {
				opts.Exclude = map[string]bool{"ci:" + alphaFP + "/cn-east-1/a/p1": true}
			}
			x, err := m.Explain(job, opts)
			if err != nil {
				t.Fatal(err)
			}
			f := fateOf(x, "p1")
			if f.Reason != tc.want {
				t.Fatalf("reason %q (%s), want %q", f.Reason, f.Detail, tc.want)
			}
			if !strings.Contains(f.Detail, tc.detailHas) {
				t.Errorf("detail %q lacks %q", f.Detail, tc.detailHas)
			}
			res, err := m.Match(job, opts)
			if tc.want == "" {
				if err != nil || len(res.Candidates) != 1 || f.Status != Placed {
					t.Fatalf("Match = %v, %v; fate %v", res, err, f.Status)
				}
				return
			}
			var nm *NoMatchError
			if !errors.As(err, &nm) || nm.Explanation().Summary[tc.want] != 1 || !strings.Contains(err.Error(), "1 "+string(tc.want)) {
				t.Fatalf("Match = %v, want a NoMatchError counting %s", err, tc.want)
			}
		})
	}
}

func TestObjectives(t *testing.T) {
	c := &clock{now}
	offers := []offerSpec{
		// cheap and far, on A100 (slower: runs 989.5/312 ≈ 3.2× longer)
		{pool: "cheap-a100", model: "A100", region: "cn-west-1", rate: "60"},
		// mid-priced H100 next door
		{pool: "near-h100", model: "H100", region: "cn-east-1", rate: "120"},
		// expensive H200 far away, same speed as H100
		{pool: "far-h200", model: "H200", region: "cn-north-1", rate: "150"},
	}
	b := newBook(t, c, offers...)
	lat := &LatencyTable{Pairs: map[string]map[string]float64{"cn-east-1": {"cn-west-1": 40, "cn-north-1": 25}}}
	m := New(b, Config{HomeRegion: "cn-east-1", Latency: lat})
	need := []string{"model: H100", "kind: gpu\n      tflops: {fp16: 300}", "maxPricePerHour: \"500\"", "maxPricePerHour: \"1000\""}
	for _, tc := range []struct {
		objective string
		want      []string
	}{
		// cost: A100 60×2 nodes × 3.17h ≈ 380; H100 120×2×1h = 240; H200 300
		{"cost", []string{"near-h100", "far-h200", "cheap-a100"}},
		// time: H100 = H200 = 1h (tie broken by hash), A100 ≈ 3.2h
		{"time", nil},
		{"latency", []string{"near-h100", "far-h200", "cheap-a100"}},
	} {
		job := jobDoc(t, append(need, "estimatedRuntime: 1h", "estimatedRuntime: 1h\nobjective: {type: "+tc.objective+"}")...)
		res, err := m.Match(job, Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.objective, err)
		}
		var got []string
		for _, c := range res.Candidates {
			got = append(got, offerOf(c.Entry).Metadata.Name)
		}
		if tc.want != nil && strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: order %v, want %v", tc.objective, got, tc.want)
		}
		if tc.objective == "time" && got[2] != "cheap-a100" {
			t.Errorf("time: slowest device not last: %v", got)
		}
	}
	// Runtime scaling: the job's hour is measured on a 300-TFLOPS device.
	job := jobDoc(t, need...)
	res, _ := m.Match(job, Options{})
	for _, c := range res.Candidates {
		if offerOf(c.Entry).Metadata.Name == "cheap-a100" && c.Parts.Runtime != 3461538461539 { // 3600 s × 300/312, rounded up to the nanosecond
			t.Errorf("A100 runtime %v", c.Parts.Runtime)
		}
	}
}

func TestBalancedAndRank(t *testing.T) {
	c := &clock{now}
	b := newBook(t, c,
		offerSpec{pool: "a", region: "cn-east-1", rate: "200"},
		offerSpec{pool: "b", region: "cn-west-1", rate: "100"},
	)
	lat := &LatencyTable{Pairs: map[string]map[string]float64{"cn-east-1": {"cn-west-1": 90}}}
	m := New(b, Config{HomeRegion: "cn-east-1", Latency: lat})
	order := func(job *descriptor.Document) string {
		res, err := m.Match(job, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range res.Candidates {
			names = append(names, fmt.Sprintf("%s:%.2f", offerOf(c.Entry).Metadata.Name, c.Score))
		}
		return strings.Join(names, " ")
	}
	costHeavy := jobDoc(t, "estimatedRuntime: 1h", "estimatedRuntime: 1h\nobjective: {type: balanced, weights: {cost: 3, latency: 1}}")
	if got := order(costHeavy); got != "b:0.25 a:0.75" { // b: (3×0 + 1×1)/4, a: (3×1 + 1×0)/4
		t.Errorf("cost-heavy balanced: %s", got)
	}
	latencyHeavy := jobDoc(t, "estimatedRuntime: 1h", "estimatedRuntime: 1h\nobjective: {type: balanced, weights: {cost: 1, latency: 3}}")
	if got := order(latencyHeavy); got != "a:0.25 b:0.75" {
		t.Errorf("latency-heavy balanced: %s", got)
	}
	ranked := jobDoc(t, "estimatedRuntime: 1h", "estimatedRuntime: 1h\nrank: offer.price.perHour")
	if got := order(ranked); got != "a:-200.00 b:-100.00" {
		t.Errorf("CEL rank (higher first): %s", got)
	}
}

// TestTieBreakSeededByDigest: identical offers order by a hash seeded with
// the job digest: stable for one job, different across jobs.
func TestTieBreakSeededByDigest(t *testing.T) {
	c := &clock{now}
	var specs []offerSpec
	for i := range 8 {
		specs = append(specs, offerSpec{pool: fmt.Sprintf("same-%d", i)})
	}
	m := New(newBook(t, c, specs...), Config{})
	first := func(name string) string {
		job := jobDoc(t, "name: train", "name: "+name, "nodes: 2", "nodes: 1")
		res, err := m.Match(job, Options{K: 8})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range res.Candidates {
			names = append(names, offerOf(c.Entry).Metadata.Name)
		}
		return strings.Join(names, ",")
	}
	a1, a2 := first("job-a"), first("job-a")
	if a1 != a2 {
		t.Fatalf("same job ordered differently: %s vs %s", a1, a2)
	}
	different := false
	for i := range 10 {
		if first(fmt.Sprintf("job-%d", i)) != a1 {
			different = true
		}
	}
	if !different {
		t.Fatal("ties break the same way for every job")
	}
}

func TestPlaceFailover(t *testing.T) {
	c := &clock{now}
	var specs []offerSpec
	for i, rate := range []string{"100", "110", "120", "130", "140", "150", "160"} {
		specs = append(specs, offerSpec{pool: fmt.Sprintf("o%d", i), rate: rate})
	}
	b := newBook(t, c, specs...)
	m := New(b, Config{})
	job := jobDoc(t)
	asked := map[string]int{}
	refuse := map[string]bool{"o0": true, "o1": true, "o2": true, "o3": true, "o4": true}
	granted, attempts, err := m.Place(context.Background(), job, Options{K: 3}, func(_ context.Context, c Candidate) error {
		asked[offerOf(c.Entry).Metadata.Name]++
		if refuse[offerOf(c.Entry).Metadata.Name] {
			return errors.New("no capacity")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if offerOf(granted.Entry).Metadata.Name != "o5" || len(attempts) != 6 {
		t.Fatalf("granted %s after %d attempts, want o5 after 6", offerOf(granted.Entry).Metadata.Name, len(attempts))
	}
	for name, n := range asked {
		if n != 1 {
			t.Errorf("%s asked %d times; a refused candidate must be skipped on retry", name, n)
		}
	}
	_, attempts, err = m.Place(context.Background(), job, Options{K: 3}, func(context.Context, Candidate) error { return errors.New("no") })
	var nm *NoMatchError
	if !errors.As(err, &nm) || len(attempts) != 7 || nm.Explanation().Summary[Refused] != 7 {
		t.Fatalf("all refuse: %v after %d attempts", err, len(attempts))
	}
}

func TestNoOffersAtAll(t *testing.T) {
	m := New(book.New((&clock{now}).now), Config{})
	_, err := m.Match(jobDoc(t), Options{})
	if err == nil || !strings.Contains(err.Error(), "holds no offers") {
		t.Fatalf("empty book: %v", err)
	}
	if _, err := m.Match(&descriptor.Document{Kind: descriptor.KindOffer}, Options{}); err == nil {
		t.Fatal("matched an offer document as a job")
	}
}

// FuzzParseLatencyTable: a table that parses holds only latencies: finite
// and not negative.
func FuzzParseLatencyTable(f *testing.F) {
	f.Add([]byte("default: 150\nsameRegion: 1\npairs:\n  cn-east-1: {cn-north-1: 28, us-west-2: 170}\n"))
	f.Add([]byte("default: -1\n"))
	f.Add([]byte("pairs: {a: {b: .nan}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ParseLatencyTable("fuzz.yaml", data)
		if err != nil {
			return
		}
		check := func(ms float64) {
			if ms < 0 || math.IsNaN(ms) || math.IsInf(ms, 0) {
				t.Fatalf("accepted latency %v in %q", ms, data)
			}
		}
		for _, ms := range []*float64{tab.Default, tab.SameRegion} {
			if ms != nil {
				check(*ms)
			}
		}
		for _, row := range tab.Pairs {
			for _, ms := range row {
				check(ms)
			}
		}
	})
}

// TestNoMatchExplainedLater: the explanation of a decision that found
// nothing is computed when asked for; if the book changed in between, the
// error says so instead of blaming an empty book.
func TestNoMatchExplainedLater(t *testing.T) {
	c := &clock{now}
	b := newBook(t, c, offerSpec{pool: "only"})
	e := b.Snapshot()[0]
	res, err := b.Reserve(e.Name, int(e.Quantity), "other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(b, Config{Currency: "CNY"}).Match(jobDoc(t), Options{})
	var nm *NoMatchError
	if !errors.As(err, &nm) {
		t.Fatalf("a full offer: %v", err)
	}
	b.Release(res.ID)
	if msg := nm.Error(); !strings.Contains(msg, "1 can now") {
		t.Fatalf("after the capacity freed: %q", msg)
	}
}

// TestScaleRuntimeIntegers holds the integer path of scaleRuntime to the
// big.Rat one, over published figures, random decimals and extremes.
func TestScaleRuntimeIntegers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	figures := []float64{989.5, 133.2, 148, 312, 0.1, 1e-9, 1e9, 1979, 65.5, 362.1, 1.7976931348623157e308, 5e-324}
	runtimes := []time.Duration{1, 1500 * time.Millisecond, time.Hour, 1000 * time.Hour, time.Duration(math.MaxInt64)}
	for i := range 20000 {
		ref, tf := figures[rng.IntN(len(figures))], figures[rng.IntN(len(figures))]
		if i%2 == 0 {
			ref = float64(rng.IntN(100000)) / math.Pow(10, float64(rng.IntN(6)))
			tf = float64(1+rng.IntN(100000)) / math.Pow(10, float64(rng.IntN(6)))
		}
		rt := runtimes[rng.IntN(len(runtimes))]
		if i%3 == 0 {
			rt = time.Duration(rng.Int64N(int64(400 * 24 * time.Hour)))
		}
		if ref <= 0 || tf <= 0 {
			continue
		}
		got, ok := scaleRuntime64(rt, ref, tf)
		if !ok {
			continue
		}
		r, tt := decimalRat(ref), decimalRat(tf)
		q := new(big.Rat).Mul(new(big.Rat).SetInt64(int64(rt)), r)
		q.Quo(q, tt)
		n, rem := new(big.Int).QuoRem(q.Num(), q.Denom(), new(big.Int))
		if rem.Sign() != 0 {
			n.Add(n, big.NewInt(1))
		}
		if !n.IsInt64() || n.Int64() != int64(got) {
			t.Fatalf("%v × %v / %v: integers give %d, big.Rat %s", rt, ref, tf, got, n)
		}
	}
}

// TestRulesAfterIDsReused: when the last offer of a region, jurisdiction
// or provider leaves, the book gives its ID to the next new one; placement
// rules still judge every offer by its own region, jurisdiction and
// provider, and no withdrawn one is matched.
func TestRulesAfterIDsReused(t *testing.T) {
	c := &clock{now}
	b := newBook(t, c,
		offerSpec{pool: "gone", region: "cn-north-9", juris: "CN-BJ", did: betaDID, fp: betaFP},
		offerSpec{pool: "stays", region: "cn-east-1", juris: "CN"})
	if !b.Remove("ci:" + betaFP + "/cn-north-9/a/gone") {
		t.Fatal("the offer to withdraw is not in the book")
	}
	d := offerSpec{pool: "new", region: "cn-west-2", juris: "CN-SC", rate: "90"}.doc(t)
	if err := b.Put(d, nil, d.Offer.Broker); err != nil {
		t.Fatal(err)
	}
	b.View(func(v book.View) {
		if r, j := v.Regions(), v.Jurisdictions(); len(r) != 2 || len(j) != 2 || r[0] != "cn-west-2" || j[0] != "CN-SC" {
			t.Fatalf("regions %q, jurisdictions %q: the withdrawn offer's IDs were not reused", r, j)
		}
	})
	m := New(b, Config{Currency: "CNY"})
	for _, tc := range []struct {
		rule string
		want string
	}{
		{"jurisdictions: {allow: [CN]}", "new stays"}, // CN covers its subdivisions
		{"jurisdictions: {allow: [CN-BJ]}", ""},
		{"jurisdictions: {allow: [CN-SC]}", "new"},
		{"jurisdictions: {allow: [CN-BJ, CN-SC]}", "new"},
		{"regions: {allow: [cn-north-9]}", ""},
		{"regions: {allow: [cn-west-2]}", "new"},
		{"regions: {deny: [cn-west-2]}", "stays"},
		{"regions: {deny: [cn-north-9]}", "new stays"},
	} {
		job := jobDoc(t, "jurisdictions: {allow: [CN]}", tc.rule, "nodes: 2", "nodes: 1")
		res, err := m.Match(job, Options{K: 5})
		got := ""
		if err == nil {
			var s []string
			for _, c := range res.Candidates {
				s = append(s, offerOf(c.Entry).Metadata.Name)
			}
			got = strings.Join(s, " ")
		}
		if got != tc.want {
			t.Errorf("%s: placed on %q, want %q (%v)", tc.rule, got, tc.want, err)
		}
	}
}
