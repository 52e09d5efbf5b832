package descriptor

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// An AcceleratorModel is one entry of the compute-class vocabulary: what
// every adapter translates a provider's SKU into, and what "H100:8" means.
type AcceleratorModel struct {
	Name              string // canonical name used in documents, e.g. "H100"
	Kind              string // gpu, npu, fpga or asic
	Vendor            string // nvidia, amd, huawei or intel
	Memory            Quantity
	ComputeCapability Version // NVIDIA compute capability; zero for others
	Frameworks        []FrameworkSupport
	TFLOPS            TFLOPS   // dense, per device; 0 where the maker publishes no figure
	Aliases           []string // other spellings importers accept, lower case
}

// FrameworkSupport says a model runs a framework from version Min on.
type FrameworkSupport struct {
	Name string
	Min  Version
}

// TFLOPS is normalized throughput per accelerator by precision, in TFLOPS
// (TOPS for int8), without structured sparsity. This is CATS metric level
// L1: raw vendor figures normalized to one unit and one convention.
type TFLOPS struct {
	FP64 float64 `json:"fp64,omitempty"`
	FP32 float64 `json:"fp32,omitempty"`
	FP16 float64 `json:"fp16,omitempty"`
	INT8 float64 `json:"int8,omitempty"`
}

// IsZero reports whether no figure is set.
func (t TFLOPS) IsZero() bool { return t == TFLOPS{} }

// AtLeast reports whether t meets every non-zero minimum in min.
func (t TFLOPS) AtLeast(min TFLOPS) bool {
	return t.FP64 >= min.FP64 && t.FP32 >= min.FP32 && t.FP16 >= min.FP16 && t.INT8 >= min.INT8
}

func nvidia(cuda string) []FrameworkSupport {
	return []FrameworkSupport{{"cuda", MustVersion(cuda)}, {"opencl", MustVersion("3.0")}}
}

// vocabulary is the accelerator table. Figures are the makers' published
// dense (non-sparse) peak numbers for the named form factor:
//   - NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB): FP64 9.7, FP32 19.5,
//     FP16 tensor 312, INT8 tensor 624; compute capability 8.0 (CUDA 11.0+).
//   - NVIDIA H100 Tensor Core GPU datasheet (SXM5): FP64 34, FP32 67, FP16
//     tensor 1979 with sparsity = 989.5 dense, INT8 3958 sparse = 1979 dense;
//     compute capability 9.0 (CUDA 11.8+).
//   - NVIDIA H200 datasheet (SXM, 141 GB HBM3e): the H100 SXM's compute
//     figures; compute capability 9.0.
//   - NVIDIA H20 product brief (96 GB HBM3): FP32 44, FP16 tensor 148, INT8
//     296, FP64 1; compute capability 9.0.
//   - NVIDIA L40S datasheet (48 GB GDDR6): FP32 91.6, FP16 tensor 362.05
//     dense, INT8 733 dense; FP64 not published; compute capability 8.9.
//   - NVIDIA L4 datasheet (24 GB): FP32 30.3, FP16 tensor 121 dense, INT8
//     242.5 dense; compute capability 8.9.
//   - NVIDIA A10 datasheet (24 GB GDDR6): FP32 31.2, FP16 tensor 125 dense,
//     INT8 250 dense; compute capability 8.6.
//   - NVIDIA T4 datasheet (16 GB GDDR6): FP32 8.1, FP16 mixed 65, INT8 130;
//     compute capability 7.5.
//   - NVIDIA V100 datasheet (SXM2 32 GB): FP64 7.8, FP32 15.7, tensor 125;
//     compute capability 7.0.
//   - AMD Instinct MI300X data sheet (192 GB HBM3): FP64 vector 81.7, FP32
//     vector 163.4, FP16 1307.4 dense, INT8 2614.9 dense; ROCm 6.0+.
//   - Huawei Ascend 910B (64 GB HBM2e) as published for the Atlas 800T A2
//     training server: FP16 313, INT8 640; FP64 and FP32 not published;
//     CANN 7.0+.
var vocabulary = []*AcceleratorModel{
	{Name: "A10", Kind: "gpu", Vendor: "nvidia", Memory: 24 << 30, ComputeCapability: MustVersion("8.6"),
		Frameworks: nvidia("11.1"), TFLOPS: TFLOPS{FP32: 31.2, FP16: 125, INT8: 250}, Aliases: []string{"a10g", "a10-24gb"}},
	{Name: "A100", Kind: "gpu", Vendor: "nvidia", Memory: 80 << 30, ComputeCapability: MustVersion("8.0"),
		Frameworks: nvidia("11.0"), TFLOPS: TFLOPS{FP64: 9.7, FP32: 19.5, FP16: 312, INT8: 624}, Aliases: []string{"a100-80gb", "a100-sxm4-80gb", "a100-40gb"}},
	{Name: "H100", Kind: "gpu", Vendor: "nvidia", Memory: 80 << 30, ComputeCapability: MustVersion("9.0"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP64: 34, FP32: 67, FP16: 989.5, INT8: 1979}, Aliases: []string{"h100-80gb", "h100-sxm", "h100-sxm5"}},
	{Name: "H20", Kind: "gpu", Vendor: "nvidia", Memory: 96 << 30, ComputeCapability: MustVersion("9.0"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP64: 1, FP32: 44, FP16: 148, INT8: 296}},
	{Name: "H200", Kind: "gpu", Vendor: "nvidia", Memory: 141 << 30, ComputeCapability: MustVersion("9.0"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP64: 34, FP32: 67, FP16: 989.5, INT8: 1979}, Aliases: []string{"h200-141gb", "h200-sxm"}},
	{Name: "L4", Kind: "gpu", Vendor: "nvidia", Memory: 24 << 30, ComputeCapability: MustVersion("8.9"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP32: 30.3, FP16: 121, INT8: 242.5}},
	{Name: "L40S", Kind: "gpu", Vendor: "nvidia", Memory: 48 << 30, ComputeCapability: MustVersion("8.9"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP32: 91.6, FP16: 362.05, INT8: 733}},
	{Name: "T4", Kind: "gpu", Vendor: "nvidia", Memory: 16 << 30, ComputeCapability: MustVersion("7.5"),
		Frameworks: nvidia("10.0"), TFLOPS: TFLOPS{FP32: 8.1, FP16: 65, INT8: 130}, Aliases: []string{"tesla-t4"}},
	{Name: "V100", Kind: "gpu", Vendor: "nvidia", Memory: 32 << 30, ComputeCapability: MustVersion("7.0"),
		Frameworks: nvidia("9.0"), TFLOPS: TFLOPS{FP64: 7.8, FP32: 15.7, FP16: 125}, Aliases: []string{"v100-32gb", "v100-16gb", "tesla-v100"}},
	{Name: "MI300X", Kind: "gpu", Vendor: "amd", Memory: 192 << 30,
		Frameworks: []FrameworkSupport{{"rocm", MustVersion("6.0")}, {"opencl", MustVersion("2.1")}},
		TFLOPS:     TFLOPS{FP64: 81.7, FP32: 163.4, FP16: 1307.4, INT8: 2614.9}, Aliases: []string{"instinct-mi300x"}},
	{Name: "Ascend910B", Kind: "npu", Vendor: "huawei", Memory: 64 << 30,
		Frameworks: []FrameworkSupport{{"cann", MustVersion("7.0")}},
		TFLOPS:     TFLOPS{FP16: 313, INT8: 640}, Aliases: []string{"ascend-910b", "910b", "ascend910b3"}},
}

var vocabularyByName = func() map[string]*AcceleratorModel {
	m := map[string]*AcceleratorModel{}
	for _, a := range vocabulary {
		if m[a.Name] != nil {
			panic("descriptor: duplicate accelerator " + a.Name)
		}
		m[a.Name] = a
	}
	return m
}()

// Accelerators returns the vocabulary, sorted by name.
func Accelerators() []*AcceleratorModel {
	out := slices.Clone(vocabulary)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupAccelerator returns the model with exactly this canonical name.
func LookupAccelerator(name string) (*AcceleratorModel, bool) {
	a, ok := vocabularyByName[name]
	return a, ok
}

// FindAccelerator resolves a name as users of other systems write it:
// any case, and known aliases such as "a100-80gb" or "tesla-t4".
func FindAccelerator(name string) (*AcceleratorModel, bool) {
	lower := strings.ToLower(name)
	for _, a := range vocabulary {
		if strings.ToLower(a.Name) == lower || slices.Contains(a.Aliases, lower) {
			return a, true
		}
	}
	return nil, false
}

// unknownModelError explains an unknown model and suggests the nearest.
func unknownModelError(name string) string {
	msg := fmt.Sprintf("unknown accelerator model %q", name)
	if a, ok := FindAccelerator(name); ok {
		return msg + fmt.Sprintf("; did you mean %q?", a.Name)
	}
	names := make([]string, 0, len(vocabulary))
	for _, a := range Accelerators() {
		names = append(names, a.Name)
	}
	return msg + "; known models: " + strings.Join(names, ", ")
}

// Supports reports the minimum version of a framework the model runs.
func (a *AcceleratorModel) Supports(framework string) (Version, bool) {
	for _, f := range a.Frameworks {
		if f.Name == framework {
			return f.Min, true
		}
	}
	return Version{}, false
}

// Satisfies reports whether the model can meet the request on an offer that
// installs suitable framework versions: model, kind, vendor, memory,
// framework availability, compute capability and throughput.
func (a *AcceleratorModel) Satisfies(r *AcceleratorRequest) bool {
	switch {
	case r.Model != "" && r.Model != a.Name,
		r.Kind != "" && r.Kind != a.Kind,
		r.Vendor != "" && r.Vendor != a.Vendor,
		r.Memory > a.Memory,
		!a.TFLOPS.AtLeast(r.TFLOPS):
		return false
	}
	if !r.ComputeCapability.IsZero() && (a.ComputeCapability.IsZero() || !r.ComputeCapability.Allows(a.ComputeCapability)) {
		return false
	}
	for _, f := range r.Frameworks {
		min, ok := a.Supports(f.Name)
		if !ok || !f.Version.allowsSomeFrom(min) {
			return false
		}
	}
	return true
}

// ResolveAccelerators returns every vocabulary model that can satisfy r.
func ResolveAccelerators(r *AcceleratorRequest) []*AcceleratorModel {
	var out []*AcceleratorModel
	for _, a := range Accelerators() {
		if a.Satisfies(r) {
			out = append(out, a)
		}
	}
	return out
}

// allowsSomeFrom reports whether some version at or above min satisfies c.
// Constraints are conjunctions of comparisons, so testing min, every clause
// bound, a point just above each bound and a very large version suffices.
func (c VersionConstraint) allowsSomeFrom(min Version) bool {
	candidates := []Version{min, MustVersion("100000")}
	for _, cl := range c.clauses {
		candidates = append(candidates, cl.v, cl.v.justAbove())
	}
	for _, v := range candidates {
		if v.Compare(min) >= 0 && c.Allows(v) {
			return true
		}
	}
	return false
}

// justAbove returns the version one step past v in the fourth part:
// 12.2 -> 12.2.0.1.
func (v Version) justAbove() Version {
	parts := make([]int, 4)
	copy(parts, v.parts)
	parts[3]++
	return Version{parts: parts}
}

// explainUnsatisfiable names the first part of a request that leaves no
// vocabulary model standing, applying the parts in the order a reader
// writes them.
func explainUnsatisfiable(r *AcceleratorRequest) string {
	stages := []struct {
		what string
		keep func(a *AcceleratorModel) bool
	}{
		{"model " + r.Model, func(a *AcceleratorModel) bool { return r.Model == "" || a.Name == r.Model }},
		{"kind " + r.Kind, func(a *AcceleratorModel) bool { return r.Kind == "" || a.Kind == r.Kind }},
		{"vendor " + r.Vendor, func(a *AcceleratorModel) bool { return r.Vendor == "" || a.Vendor == r.Vendor }},
		{"memory ≥ " + r.Memory.String(), func(a *AcceleratorModel) bool { return a.Memory >= r.Memory }},
		{"the frameworks asked for", func(a *AcceleratorModel) bool {
			for _, f := range r.Frameworks {
				min, ok := a.Supports(f.Name)
				if !ok || !f.Version.allowsSomeFrom(min) {
					return false
				}
			}
			return true
		}},
		{"compute capability " + r.ComputeCapability.String(), func(a *AcceleratorModel) bool {
			return r.ComputeCapability.IsZero() || (!a.ComputeCapability.IsZero() && r.ComputeCapability.Allows(a.ComputeCapability))
		}},
		{"the throughput asked for", func(a *AcceleratorModel) bool { return a.TFLOPS.AtLeast(r.TFLOPS) }},
	}
	left := Accelerators()
	var applied []string
	for _, st := range stages {
		var next []*AcceleratorModel
		for _, a := range left {
			if st.keep(a) {
				next = append(next, a)
			}
		}
		if len(next) == 0 {
			if len(applied) == 0 {
				return "no accelerator in the vocabulary has " + st.what
			}
			return fmt.Sprintf("no accelerator in the vocabulary with %s has %s", strings.Join(applied, ", "), st.what)
		}
		if len(next) < len(left) {
			applied = append(applied, st.what)
		}
		left = next
	}
	return "no accelerator in the vocabulary meets this request"
}
