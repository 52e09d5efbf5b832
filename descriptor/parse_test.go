package descriptor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readExample(tb testing.TB, rel string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", rel))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func mustParse(tb testing.TB, rel string) *Document {
	tb.Helper()
	d, err := Parse(filepath.Base(rel), readExample(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestParseLimits(t *testing.T) {
	big := "apiVersion: cinet/v1\nkind: Job\nmetadata:\n  name: x\n  labels:\n    a: \"" + strings.Repeat("x", MaxDocumentSize) + "\"\n"
	deep := "{\"a\":" + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "}"
	deepYAML := "a:" + strings.Repeat(" [", 40) + strings.Repeat("]", 40) + "\n"
	for _, tc := range []struct{ name, in, want string }{
		{"oversized", big, "larger than the 1048576 allowed"},
		{"deep JSON", deep, "nested more than"},
		{"deep YAML", deepYAML, "nested more than"},
		{"empty", "  \n", "document is empty"},
		{"comment only", "# nothing\n", "document is empty"},
		{"tag", "apiVersion: !!int 1\n", "YAML tag"},
		{"merge key", "a: {b: 1}\nc:\n  <<: {b: 2}\n", "merge keys"},
		{"non-string key", "1: a\n", "a key must be a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("doc", []byte(tc.in))
			var list ErrorList
			if !errors.As(err, &list) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an ErrorList containing %q", err, tc.want)
			}
		})
	}
}

func TestParseKindMismatch(t *testing.T) {
	data := readExample(t, "offers/local-cpu.yaml")
	_, err := ParseJob("local-cpu.yaml", data)
	if err == nil || !strings.Contains(err.Error(), `local-cpu.yaml:3:1: kind: must be "Job" here, got "Offer"`) {
		t.Fatalf("ParseJob on an offer = %v", err)
	}
	if _, err := ParseOffer("local-cpu.yaml", data); err != nil {
		t.Fatal(err)
	}
}

func TestJobDefaults(t *testing.T) {
	d, err := Parse("j", []byte("apiVersion: cinet/v1\nkind: Job\nmetadata: {name: j}\ntasks: [{name: t, command: [x]}]\ntimeouts: {run: 10m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	j := d.Job
	if j.Nodes != 1 || j.Resources.CPUs != 1 || j.Objective.Type != "cost" || j.EstimatedRuntime.String() != "10m" {
		t.Fatalf("defaults: nodes %d cpus %v objective %q runtime %s", j.Nodes, j.Resources.CPUs, j.Objective.Type, j.EstimatedRuntime)
	}
	if !strings.Contains(string(d.Canonical), `"timeouts"`) || strings.Contains(string(d.Canonical), `"nodes"`) {
		t.Fatalf("defaults leaked into the canonical form: %s", d.Canonical)
	}
}

func TestOfferDefaultsAndAttributes(t *testing.T) {
	o := mustParse(t, "offers/alpha-cn-east-1-h100.yaml").Offer
	acc := o.Class.Accelerators[0]
	if acc.Memory != 80<<30 || acc.TFLOPS.FP16 != 989.5 || acc.ComputeCapability.String() != "9.0" {
		t.Fatalf("vocabulary defaults not applied: %+v", acc)
	}
	if o.Price.Location().String() != "Asia/Shanghai" {
		t.Fatalf("location %s", o.Price.Location())
	}
	a := o.Attributes()
	if a.Accelerator.Model != "H100" || a.Accelerator.Kind != "gpu" || a.Accelerator.Vendor != "nvidia" || a.Accelerator.Count != 8 ||
		a.Frameworks["cuda"] != "12.4" || a.Price.PerHour != 640 || a.Price.Currency != "CNY" || a.MemoryGiB != 2048 || a.Labels["tier"] != "premium" {
		t.Fatalf("attributes %+v", a)
	}
	local := mustParse(t, "offers/local-cpu.yaml").Offer.Attributes()
	// vcpuHour 0.04 × 1 vCPU + gibHour 0.005 × 2 GiB = 0.05
	if local.Price.PerHour != 0.05 || local.Market != "on-demand" {
		t.Fatalf("local attributes %+v", local)
	}
}

func TestExprEval(t *testing.T) {
	offer := mustParse(t, "offers/alpha-cn-east-1-h100.yaml").Offer.Attributes()
	p, err := defaultParser()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{`offer.region.startsWith("cn-") && offer.accelerator.count >= 8`, true},
		{`offer.accelerator.tflops.fp16 >= 600.0 && versionAtLeast(offer.frameworks.cuda, "12.2")`, true},
		{`versionAtLeast(offer.frameworks.cuda, "12.5")`, false},
		{`offer.labels.tier == "premium" && offer.price.perHour < 700.0`, true},
		{`offer.accelerator.computeCapability >= 9.0`, true},
	} {
		prog, err := p.exprs.compile(tc.src, false)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		got, err := (&Expr{Source: tc.src, prog: prog}).EvalBool(offer)
		if err != nil || got != tc.want {
			t.Errorf("%s = %v, %v; want %v", tc.src, got, err, tc.want)
		}
	}
	// A missing map key fails evaluation for this offer only.
	prog, err := p.exprs.compile(`offer.frameworks.rocm == "6.0"`, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Expr{prog: prog}).EvalBool(offer); err == nil {
		t.Error("evaluating a missing key succeeded")
	}
	rank, err := p.exprs.compile(`-offer.price.perHour`, true)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := (&Expr{prog: rank}).EvalNumber(offer); err != nil || v != -640 {
		t.Errorf("rank = %v, %v", v, err)
	}
	// A runaway expression hits the cost limit instead of stalling.
	heavy, err := p.exprs.compile(`[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, a+b+c+d+e > 0)))))`, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Expr{prog: heavy}).EvalBool(offer); err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("heavy expression: %v, want a cost limit error", err)
	}
}

// FuzzParse: the parser never panics; whatever it accepts has a canonical
// form that parses to the same digest, in JSON and as formatted YAML.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(vectorsDir, "*", "*"))
	for _, s := range seeds {
		if ext := filepath.Ext(s); ext == ".yaml" || ext == ".json" {
			if data, err := os.ReadFile(s); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("fuzz", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is not an ErrorList: %v", err)
			}
			return
		}
		again, err := Parse("canonical", d.Canonical)
		if err != nil {
			t.Fatalf("canonical form rejected: %v\n%s", err, d.Canonical)
		}
		if again.Digest != d.Digest {
			t.Fatalf("canonical form changes the digest")
		}
		checkFormatted(t, d)
	})
}

// BenchmarkParseJob measures validate + canonicalize + hash of a typical
// job, the whole of Parse. The YAML case is what a tenant submits; the JSON
// case is the canonical form brokers exchange.
func BenchmarkParseJob(b *testing.B) {
	yamlDoc := readExample(b, "jobs/train-llama.yaml")
	d, err := Parse("train-llama.yaml", yamlDoc)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{{"format=yaml", yamlDoc}, {"format=json", d.Canonical}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse("job", tc.data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

func TestAllowDeny(t *testing.T) {
	regions := AllowDeny{Allow: []string{"cn-*", "us-west-2"}, Deny: []string{"cn-north-9"}}
	for v, want := range map[string]bool{"cn-east-1": true, "cn-north-9": false, "us-west-2": true, "us-west-1": false, "c": false} {
		if got := regions.Permits(v); got != want {
			t.Errorf("regions.Permits(%q) = %v, want %v", v, got, want)
		}
	}
	if !(AllowDeny{}).Permits("anything") {
		t.Error("empty lists refuse")
	}
	j := AllowDeny{Allow: []string{"CN", "DE-BY"}, Deny: []string{"CN-HK"}}
	for v, want := range map[string]bool{"CN": true, "CN-GD": true, "CN-HK": false, "CNX": false, "DE-BY": true, "DE": false, "DE-BE": false} {
		if got := j.PermitsJurisdiction(v); got != want {
			t.Errorf("PermitsJurisdiction(%q) = %v, want %v", v, got, want)
		}
	}
}
