package descriptor

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
)

// uncountedCorpus are expressions tenants write, and heavier ones: string
// functions over the largest attributes, comprehensions over labels and
// frameworks, and nested ones that no offer could afford.
var uncountedCorpus = []string{
	`offer.market == "on-demand"`,
	`offer.cpu.arch == "x86_64" && offer.memoryGiB >= 64.0`,
	`offer.labels.tier != "low"`,
	`offer.quantity >= 4`,
	`double(offer.quantity) - offer.price.perHour`,
	`offer.region.startsWith("cn-") && offer.zone.endsWith("a")`,
	`offer.computeId.contains(offer.region)`,
	`offer.computeId.matches("^ci:[a-z0-9]+/.*$")`,
	`size(offer.labels) < 10 && size(offer.computeId) > 3`,
	`offer.labels.exists(k, k.startsWith("team") && offer.labels[k] == "ml")`,
	`offer.labels.all(k, offer.labels[k].size() <= 63)`,
	`offer.labels.exists(k, offer.labels.exists(j, k + j == "ab"))`,
	`offer.frameworks.exists(f, versionAtLeast(offer.frameworks[f], "1.0"))`,
	`"cuda" in offer.frameworks && offer.frameworks.cuda.startsWith("12")`,
	`offer.labels.map(k, offer.labels[k] + offer.labels[k]).exists(v, v.contains("zz"))`,
	`offer.provider.lowerAscii().contains(offer.broker.lowerAscii().substring(8, 12))`,
	`offer.labels.exists(a, offer.labels.exists(b, offer.labels.exists(c, a + b + c == offer.computeId)))`,
	`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))`,
}

// randomAttrs draws attributes within attrBounds; large draws fill every
// string and map to its bound.
func randomAttrs(rng *rand.Rand, large bool) *OfferAttributes {
	str := func(path string) string {
		n := rng.IntN(int(attrBounds[path]) + 1)
		if large {
			n = int(attrBounds[path])
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = "abcz09-"[rng.IntN(7)]
		}
		return string(b)
	}
	m := func(path string) map[string]string {
		n := rng.IntN(int(attrBounds[path]) + 1)
		if large {
			n = int(attrBounds[path])
		}
		out := map[string]string{}
		for len(out) < n {
			k := fmt.Sprint(len(out)) + str(path+".@keys") // distinct, maybe too long
			v := fmt.Sprintf("%d.%d", rng.IntN(20), rng.IntN(9))
			if rng.IntN(2) == 0 {
				v = str(path + ".@values")
			}
			out[k[:min(len(k), int(attrBounds[path+".@keys"]))]] = v
		}
		return out
	}
	a := &OfferAttributes{
		ComputeID: str("offer.computeId"), Provider: str("offer.provider"), Broker: str("offer.broker"),
		Region: str("offer.region"), Zone: str("offer.zone"), Jurisdiction: str("offer.jurisdiction"), Market: str("offer.market"),
		Quantity: rng.Int64N(100), MemoryGiB: rng.Float64() * 1000,
		CPU:         CPUAttributes{Arch: str("offer.cpu.arch"), Vendor: str("offer.cpu.vendor"), Count: rng.Int64N(256)},
		Accelerator: AcceleratorAttributes{Model: str("offer.accelerator.model"), Kind: str("offer.accelerator.kind"), Vendor: str("offer.accelerator.vendor")},
		Frameworks:  m("offer.frameworks"), Labels: m("offer.labels"),
		Price: PriceAttributes{Currency: str("offer.price.currency"), PerHour: rng.Float64() * 100},
	}
	a.withinBounds = a.checkBounds()
	return a
}

// TestUncountedWithinLimit holds the uncounted programs to the counted
// ones: over attributes within attrBounds, an expression that runs
// uncounted gives what the counted program gives, and the counted cost
// never exceeds the estimate that let it run uncounted. The heaviest
// expressions stay counted.
func TestUncountedWithinLimit(t *testing.T) {
	c, err := newExprCompiler()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	fast := 0
	for _, src := range uncountedCorpus {
		rank := !strings.Contains(src, "==") && strings.HasPrefix(src, "double")
		progs, err := c.compile(src, rank)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		ast, _ := c.env.Compile(src)
		est, err := c.env.EstimateCost(ast, attrSizes{})
		if err != nil {
			t.Fatal(err)
		}
		if progs.fast == nil {
			if est.Max <= celCostLimit {
				t.Errorf("%s: estimated at most %d, yet counted", src, est.Max)
			}
			continue
		}
		fast++
		counted, err := c.env.Program(ast, cel.CostTracking(nil), cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 120 {
			a := randomAttrs(rng, i%3 == 0)
			if !a.withinBounds {
				t.Fatalf("drawn attributes beyond the bounds: %+v", a)
			}
			want, details, werr := counted.Eval(offerActivation{a})
			cost := details.ActualCost()
			if cost == nil {
				t.Fatalf("%s: the counted program gives no cost", src)
			}
			if *cost > est.Max {
				t.Fatalf("%s: counted cost %d above the estimate %d (draw %d)", src, *cost, est.Max, i)
			}
			got, gerr := (&Expr{Source: src, prog: progs}).eval(a)
			if (werr == nil) != (gerr == nil) || (werr == nil && want.Equal(got) != types.True) {
				t.Fatalf("%s: uncounted %v, %v; counted %v, %v", src, got, gerr, want, werr)
			}
		}
	}
	t.Logf("%d of %d expressions run uncounted", fast, len(uncountedCorpus))
	if fast < len(uncountedCorpus)/2 || fast == len(uncountedCorpus) {
		t.Fatalf("%d of %d expressions run uncounted: the corpus no longer tells the two apart", fast, len(uncountedCorpus))
	}
}

// TestCountedBeyondBounds: attributes beyond attrBounds (which no parsed
// offer has) are evaluated counted, so that an expression cheap on real
// offers still hits the limit on a crafted one.
func TestCountedBeyondBounds(t *testing.T) {
	c, err := newExprCompiler()
	if err != nil {
		t.Fatal(err)
	}
	src := `offer.labels.exists(k, offer.labels.exists(j, k + j == "ab"))`
	progs, err := c.compile(src, false)
	if err != nil || progs.fast == nil {
		t.Fatalf("%s: %v; fast %v", src, err, progs.fast != nil)
	}
	a := randomAttrs(rand.New(rand.NewPCG(1, 2)), false)
	a.Labels = map[string]string{}
	for i := range 2000 {
		a.Labels[fmt.Sprint("k", i)] = "v"
	}
	a.withinBounds = a.checkBounds()
	if a.withinBounds {
		t.Fatal("2,000 labels are within the bounds")
	}
	if _, err := (&Expr{Source: src, prog: progs}).EvalBool(a); err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("2,000 labels: %v, want the cost limit", err)
	}
}

// BenchmarkExprEval measures an evaluation counted and uncounted.
func BenchmarkExprEval(b *testing.B) {
	c, err := newExprCompiler()
	if err != nil {
		b.Fatal(err)
	}
	a := randomAttrs(rand.New(rand.NewPCG(3, 4)), false)
	for _, src := range uncountedCorpus[:5] {
		progs, err := c.compile(src, strings.HasPrefix(src, "double"))
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range []struct {
			name string
			p    programs
		}{{"counted", programs{tracked: progs.tracked}}, {"uncounted", progs}} {
			e := &Expr{Source: src, prog: v.p}
			b.Run(src+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					e.eval(a)
				}
			})
		}
	}
}

// TestEveryBoundIsChecked: each size the cost estimate assumes
// (attrBounds) is one checkBounds enforces, found here by the attributes'
// CEL names, not by checkBounds's own list: an attribute one past any
// bound makes the offer's expressions run counted.
func TestEveryBoundIsChecked(t *testing.T) {
	for path, bound := range attrBounds {
		a := randomAttrs(rand.New(rand.NewPCG(7, 8)), false)
		if !a.checkBounds() {
			t.Fatal("small attributes are beyond the bounds")
		}
		elems := strings.Split(path, ".")[1:] // after "offer"
		part := ""
		if last := elems[len(elems)-1]; strings.HasPrefix(last, "@") {
			part, elems = last, elems[:len(elems)-1]
		}
		v := reflect.ValueOf(a).Elem()
		for _, name := range elems {
			v = celField(t, v, name)
		}
		long := strings.Repeat("x", int(bound)+1)
		switch {
		case v.Kind() == reflect.String:
			v.SetString(long)
		case part == "":
			m := map[string]string{}
			for i := range int(bound) + 1 {
				m[fmt.Sprint(i)] = "v"
			}
			v.Set(reflect.ValueOf(m))
		case part == "@keys":
			v.Set(reflect.ValueOf(map[string]string{long: "v"}))
		case part == "@values":
			v.Set(reflect.ValueOf(map[string]string{"k": long}))
		}
		if a.checkBounds() {
			t.Errorf("%s one past its bound of %d passes checkBounds", path, bound)
		}
	}
}

// celField returns the field of a struct value that CEL names name.
func celField(t *testing.T, v reflect.Value, name string) reflect.Value {
	t.Helper()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("cel") == name {
			return v.Field(i)
		}
	}
	t.Fatalf("no attribute %q in %s", name, v.Type())
	return reflect.Value{}
}
