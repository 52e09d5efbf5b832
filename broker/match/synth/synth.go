// Package synth generates realistic, reproducible offer books and job
// streams for cinet's matching benchmarks and property tests: CPU-only and
// accelerator offers across 24 regions in 17 jurisdictions and three
// currencies, from a few hundred providers, and a mix of jobs by model, by
// need, CPU-only, with placement rules, budgets and CEL expressions.
//
// The same seed always yields the same documents.
package synth

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// Epoch is the clock the generated offers are valid around: a Monday
// morning in UTC.
var Epoch = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

// Region is a generated region with its jurisdiction, currency and zone.
type Region struct {
	Name, Jurisdiction, Currency, Timezone string
}

// Regions are the regions offers are spread over.
var Regions = []Region{
	{"cn-east-1", "CN-SH", "CNY", "Asia/Shanghai"}, {"cn-north-1", "CN-BJ", "CNY", "Asia/Shanghai"},
	{"cn-south-1", "CN-GD", "CNY", "Asia/Shanghai"}, {"cn-west-1", "CN-SC", "CNY", "Asia/Shanghai"},
	{"us-east-1", "US", "USD", "America/New_York"}, {"us-east-2", "US", "USD", "America/New_York"},
	{"us-west-1", "US", "USD", "America/Los_Angeles"}, {"us-west-2", "US", "USD", "America/Los_Angeles"},
	{"ca-central-1", "CA", "USD", "America/Toronto"}, {"sa-east-1", "BR", "USD", "America/Sao_Paulo"},
	{"eu-west-1", "IE", "EUR", "Europe/Dublin"}, {"eu-west-2", "GB", "USD", "Europe/London"},
	{"eu-central-1", "DE", "EUR", "Europe/Berlin"}, {"eu-north-1", "SE", "EUR", "Europe/Stockholm"},
	{"eu-south-1", "IT", "EUR", "Europe/Rome"}, {"eu-west-3", "FR", "EUR", "Europe/Paris"},
	{"me-central-1", "AE", "USD", "Asia/Dubai"}, {"af-south-1", "ZA", "USD", "Africa/Johannesburg"},
	{"ap-south-1", "IN", "USD", "Asia/Kolkata"}, {"ap-southeast-1", "SG", "USD", "Asia/Singapore"},
	{"ap-southeast-2", "AU", "USD", "Australia/Sydney"}, {"ap-northeast-1", "JP", "USD", "Asia/Tokyo"},
	{"ap-northeast-2", "KR", "USD", "Asia/Seoul"}, {"ap-east-1", "HK", "USD", "Asia/Hong_Kong"},
}

// accelerator market: model, weight, base USD per device-hour, CUDA/ROCm/
// CANN versions offers install.
var models = []struct {
	name       string
	weight     int
	perHour    float64
	framework  string
	versions   []string
	chinaOnly  bool
	notInChina bool
}{
	{"H100", 18, 2.9, "cuda", []string{"12.2", "12.4", "12.6"}, false, true},
	{"H200", 5, 3.8, "cuda", []string{"12.4", "12.6"}, false, true},
	{"A100", 18, 1.6, "cuda", []string{"11.8", "12.1", "12.2", "12.4"}, false, false},
	{"H20", 8, 1.3, "cuda", []string{"12.2", "12.4"}, true, false},
	{"L40S", 9, 1.1, "cuda", []string{"12.2", "12.4"}, false, false},
	{"L4", 8, 0.7, "cuda", []string{"12.2", "12.4"}, false, false},
	{"A10", 9, 0.8, "cuda", []string{"11.8", "12.2"}, false, false},
	{"T4", 10, 0.4, "cuda", []string{"11.8", "12.2"}, false, false},
	{"V100", 4, 0.9, "cuda", []string{"11.8", "12.1"}, false, false},
	{"MI300X", 5, 2.4, "rocm", []string{"6.0", "6.1", "6.2"}, false, true},
	{"Ascend910B", 6, 1.2, "cann", []string{"7.0", "8.0"}, true, false},
}

var currencyPerUSD = map[string]float64{"USD": 1, "EUR": 0.92, "CNY": 7.2}

// Generator makes offers and jobs from one seed.
type Generator struct {
	// Hard mixes in what makes pricing hard: rates so high that totals
	// pass 2^53 nano-units (and some pass what an int64 holds), rates with
	// nine decimals, other minimum increments or none, tiers on the hours
	// daylight saving skips or repeats, and jobs that run for fractions of
	// a second.
	Hard bool
	// Mixed gives one accelerator offer in three a second group of another
	// model, and one group in three a stated fp16 throughput below the
	// vocabulary's peak.
	Mixed bool
	// Dense puts every offer in one of three US regions, so that each
	// index bucket holds many offers.
	Dense bool
	// Epoch, when set, replaces the package's Epoch for this generator.
	Epoch time.Time

	rng       *rand.Rand
	providers []*identity.Key
	pools     int
}

// New returns a generator with providers providers.
func New(seed uint64, providers int) *Generator {
	g := &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := range providers {
		var s [ed25519.SeedSize]byte
		binary.BigEndian.PutUint64(s[:], seed)
		binary.BigEndian.PutUint64(s[8:], uint64(i))
		g.providers = append(g.providers, identity.NewKey(ed25519.NewKeyFromSeed(s[:])))
	}
	return g
}

func (g *Generator) epoch() time.Time {
	if g.Epoch.IsZero() {
		return Epoch
	}
	return g.Epoch
}

func (g *Generator) pick(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := g.rng.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func money(v float64) string { return fmt.Sprintf("%.4f", v) }

// Offer returns a signed offer document. About 60% of offers are CPU-only.
func (g *Generator) Offer() (*descriptor.Document, *identity.Envelope) {
	key := g.providers[g.rng.IntN(len(g.providers))]
	region := Regions[g.rng.IntN(len(Regions))]
	if g.Dense {
		region = Regions[4+g.rng.IntN(3)] // us-east-1, us-east-2, us-west-1
	}
	inChina := region.Currency == "CNY"
	g.pools++
	fx := currencyPerUSD[region.Currency] * (0.8 + 0.5*g.rng.Float64())
	var class map[string]any
	rates := map[string]any{}
	pool := fmt.Sprintf("p%d", g.pools)
	if g.rng.IntN(10) < 6 {
		cpus := []int{1, 2, 4, 8, 16, 32, 64, 96}[g.rng.IntN(8)]
		memPer := []int{2, 4, 8}[g.rng.IntN(3)]
		class = map[string]any{
			"cpu":    map[string]any{"arch": []string{"x86_64", "x86_64", "x86_64", "arm64"}[g.rng.IntN(4)], "count": cpus},
			"memory": fmt.Sprintf("%dGi", cpus*memPer),
			"disk":   fmt.Sprintf("%dGi", 50*(1+g.rng.IntN(20))),
		}
		rates["vcpuHour"] = money(0.035 * fx)
		rates["gibHour"] = money(0.004 * fx)
	} else {
		var weights []int
		for _, m := range models {
			w := m.weight
			if (m.chinaOnly && !inChina) || (m.notInChina && inChina) {
				w = 0
			}
			weights = append(weights, w)
		}
		m := models[g.pick(weights)]
		count := []int{1, 2, 4, 8, 8}[g.rng.IntN(5)]
		cpus := count * []int{8, 12, 16, 24}[g.rng.IntN(4)]
		arch := "x86_64"
		if m.name == "Ascend910B" {
			arch = "arm64"
		}
		class = map[string]any{
			"cpu":    map[string]any{"arch": arch, "count": cpus},
			"memory": fmt.Sprintf("%dGi", cpus*8),
			"disk":   fmt.Sprintf("%dGi", 500*count),
			"accelerators": []any{map[string]any{
				"model": m.name, "count": count,
				"frameworks": []any{map[string]any{"name": m.framework, "version": m.versions[g.rng.IntN(len(m.versions))]}},
			}},
		}
		if g.Mixed {
			g.mix(class, weights, m.name)
		}
		if g.rng.IntN(2) == 0 {
			rates["acceleratorHour"] = money(m.perHour * fx)
		} else {
			rates["instanceHour"] = money(m.perHour * float64(count) * fx)
		}
		pool = fmt.Sprintf("%s-%d", descriptorPoolName(m.name), g.pools)
	}
	market := "on-demand"
	if g.rng.IntN(10) < 3 {
		market = "spot"
		for k, v := range rates {
			var f float64
			fmt.Sscan(v.(string), &f)
			rates[k] = money(f * 0.45)
		}
	}
	price := map[string]any{"currency": region.Currency, "market": market, "rates": rates, "timezone": region.Timezone, "minimumIncrement": "1m"}
	if g.Hard {
		price["minimumIncrement"] = []string{"1m", "1s", "1h", "7m13s", "1ns"}[g.rng.IntN(5)]
		if g.rng.IntN(3) == 0 {
			delete(price, "minimumIncrement")
		}
		for k := range rates {
			switch g.rng.IntN(8) {
			case 0:
				rates[k] = fmt.Sprintf("%d.%09d", 9_000_000+g.rng.IntN(1000), g.rng.IntN(1_000_000_000)) // totals past 2^53
			case 1:
				rates[k] = fmt.Sprintf("0.%09d", 1+g.rng.IntN(999_999_999))
			}
		}
		if g.rng.IntN(4) == 0 { // a tier on the hour the clock skips or repeats
			night := map[string]any{}
			for k, v := range rates {
				night[k] = v
			}
			price["tiers"] = []any{map[string]any{"name": "dst", "start": "02:30", "end": "03:00", "rates": night}}
			for k := range night {
				night[k] = "0.5"
				break
			}
		}
	}
	if _, tiered := price["tiers"]; !tiered && g.rng.IntN(10) < 3 {
		night := map[string]any{}
		for k, v := range rates {
			var f float64
			fmt.Sscan(v.(string), &f)
			night[k] = money(f * 0.7)
		}
		price["tiers"] = []any{map[string]any{"name": "night", "start": "22:00", "end": "07:00", "rates": night}}
	}
	cid, err := identity.NewComputeID(key.ID(), region.Name, "z"+fmt.Sprint(g.rng.IntN(3)), pool)
	if err != nil {
		panic(err)
	}
	quantity := g.rng.IntN(64)
	if g.rng.IntN(20) == 0 {
		quantity = 0
	}
	doc := map[string]any{
		"apiVersion": descriptor.APIVersion, "kind": descriptor.KindOffer,
		"metadata":  map[string]any{"name": pool, "labels": map[string]any{"tier": []string{"standard", "premium", "low"}[g.rng.IntN(3)]}},
		"computeId": cid.String(), "provider": key.ID().String(),
		"broker": key.ID().String(), // each synthetic provider runs its own broker
		"region": region.Name, "zone": cid.Zone, "jurisdiction": region.Jurisdiction,
		"class": class, "quantity": quantity, "price": price,
		"validFrom":  g.epoch().Add(-time.Hour).Format(time.RFC3339),
		"validUntil": g.epoch().Add(time.Duration(1+g.rng.IntN(72)) * time.Hour).Format(time.RFC3339),
		"sequence":   1,
	}
	d := mustParse(doc)
	env, err := identity.Seal(key, OfferPayloadType, d.Canonical, identity.SealOptions{Expires: d.Offer.ValidUntil, Seq: 1})
	if err != nil {
		panic(err)
	}
	return d, env
}

// mix adds what Mixed asks for to an accelerator class.
func (g *Generator) mix(class map[string]any, weights []int, first string) {
	groups := class["accelerators"].([]any)
	if g.rng.IntN(3) == 0 {
		m := models[g.pick(weights)]
		if m.name != first {
			groups = append(groups, map[string]any{
				"model": m.name, "count": []int{1, 2, 4}[g.rng.IntN(3)],
				"frameworks": []any{map[string]any{"name": m.framework, "version": m.versions[g.rng.IntN(len(m.versions))]}},
			})
			class["accelerators"] = groups
		}
	}
	for _, gr := range groups {
		gm := gr.(map[string]any)
		if info, ok := descriptor.LookupAccelerator(gm["model"].(string)); ok && info.TFLOPS.FP16 > 0 && g.rng.IntN(3) == 0 {
			gm["tflops"] = map[string]any{"fp16": float64(int(info.TFLOPS.FP16*float64(50+g.rng.IntN(50)))) / 100}
		}
	}
}

// OfferPayloadType is the envelope payload type of offers.
const OfferPayloadType = "application/vnd.cinet.offer.v1+json"

func descriptorPoolName(model string) string {
	b := []byte(model)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Job returns a job document drawn from a realistic mix.
func (g *Generator) Job() *descriptor.Document {
	job := map[string]any{
		"apiVersion": descriptor.APIVersion, "kind": descriptor.KindJob,
		"tasks": []any{map[string]any{"name": "main", "command": []any{"/bin/true"}}},
	}
	g.pools++
	name := fmt.Sprintf("job-%d", g.pools)
	job["metadata"] = map[string]any{"name": name}
	resources := map[string]any{}
	kind := g.pick([]int{35, 40, 15, 10})
	switch kind {
	case 0: // CPU
		cpus := []int{1, 2, 4, 8, 16, 32}[g.rng.IntN(6)]
		resources["cpus"] = cpus
		resources["memory"] = fmt.Sprintf("%dGi", cpus*[]int{1, 2, 4}[g.rng.IntN(3)])
	case 1: // by model
		var weights []int
		for _, m := range models {
			weights = append(weights, m.weight)
		}
		m := models[g.pick(weights)]
		req := map[string]any{"model": m.name, "count": []int{1, 1, 2, 4, 8}[g.rng.IntN(5)]}
		if m.framework == "cuda" && g.rng.IntN(3) == 0 {
			req["frameworks"] = []any{map[string]any{"name": "cuda", "version": ">=12.2"}}
		}
		resources["accelerators"] = []any{req}
		resources["cpus"] = 8
	case 2: // by need
		req := map[string]any{"kind": "gpu", "count": []int{1, 2, 4}[g.rng.IntN(3)],
			"tflops": map[string]any{"fp16": []int{100, 300, 600}[g.rng.IntN(3)]}}
		if g.rng.IntN(4) == 0 {
			req["memory"] = []string{"40Gi", "80Gi", "100Gi"}[g.rng.IntN(3)]
		}
		if g.rng.IntN(2) == 0 {
			req["frameworks"] = []any{map[string]any{"name": "cuda", "version": ">=12.2"}}
		}
		resources["accelerators"] = []any{req}
		resources["cpus"] = 8
	default: // non-NVIDIA
		if g.rng.IntN(2) == 0 {
			resources["accelerators"] = []any{map[string]any{"kind": "npu", "count": 8}}
		} else {
			resources["accelerators"] = []any{map[string]any{"vendor": "amd", "count": []int{1, 8}[g.rng.IntN(2)]}}
		}
		resources["cpus"] = 16
	}
	if g.rng.IntN(5) == 0 {
		resources["disk"] = fmt.Sprintf("%dGi", []int{100, 500, 2000, 8000}[g.rng.IntN(4)])
	}
	if _, ok := resources["memory"]; !ok && g.rng.IntN(3) == 0 {
		resources["memory"] = fmt.Sprintf("%dGi", []int{64, 256, 1024}[g.rng.IntN(3)])
	}
	job["resources"] = resources
	job["nodes"] = []int{1, 1, 1, 2, 4}[g.rng.IntN(5)]
	placement := map[string]any{}
	switch g.rng.IntN(10) {
	case 0, 1, 2, 3:
		js := []any{}
		for range 1 + g.rng.IntN(3) {
			js = append(js, Regions[g.rng.IntN(len(Regions))].Jurisdiction[:2])
		}
		placement["jurisdictions"] = map[string]any{"allow": dedupe(js)}
	case 4, 5:
		rs := []any{}
		for range 1 + g.rng.IntN(3) {
			rs = append(rs, Regions[g.rng.IntN(len(Regions))].Name)
		}
		placement["regions"] = map[string]any{"allow": dedupe(rs)}
	case 6:
		placement["regions"] = map[string]any{"deny": []any{"cn-*"}}
	}
	if len(placement) > 0 {
		job["placement"] = placement
	}
	currency := []string{"USD", "USD", "USD", "CNY", "EUR"}[g.rng.IntN(5)]
	if g.rng.IntN(10) < 6 {
		budget := map[string]any{"currency": currency}
		if g.rng.IntN(2) == 0 {
			budget["maxPricePerHour"] = money(float64(1+g.rng.IntN(200)) * currencyPerUSD[currency])
		} else {
			budget["maxTotal"] = money(float64(5+g.rng.IntN(2000)) * currencyPerUSD[currency])
		}
		job["budget"] = budget
	}
	objective := []string{"cost", "cost", "cost", "time", "latency", "balanced"}[g.rng.IntN(6)]
	switch g.rng.IntN(20) {
	case 0, 1, 2, 3:
		job["requirements"] = []string{`offer.market == "on-demand"`, `offer.cpu.arch == "x86_64"`, `offer.labels.tier != "low"`, `offer.quantity >= 4`}[g.rng.IntN(4)]
	case 4:
		job["rank"] = `double(offer.quantity) - offer.price.perHour`
		objective = ""
	}
	if objective != "" {
		obj := map[string]any{"type": objective}
		if objective == "balanced" {
			obj["weights"] = map[string]any{"cost": 0.5, "time": 0.3, "latency": 0.2}
		}
		job["objective"] = obj
	}
	job["estimatedRuntime"] = []string{"10m", "1h", "4h", "12h", "48h"}[g.rng.IntN(5)]
	if g.Hard && g.rng.IntN(3) == 0 {
		job["estimatedRuntime"] = []string{"1500ms", "333ms", "1ns", "59s999ms", "1000h"}[g.rng.IntN(5)]
	}
	return mustParse(job)
}

func dedupe(in []any) []any {
	seen := map[any]bool{}
	var out []any
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func mustParse(v map[string]any) *descriptor.Document {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	d, err := descriptor.Parse("synth", raw)
	if err != nil {
		panic(fmt.Sprintf("synth: generated an invalid document: %v\n%s", err, raw))
	}
	return d
}
