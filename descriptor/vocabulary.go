package descriptor

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// An AcceleratorModel is one entry of the compute-class vocabulary: what
// every adapter translates a provider's SKU into, and what "H100:8" means.
type AcceleratorModel struct {
	Name              string // canonical name used in documents, e.g. "H100"
	Kind              string // gpu, npu, fpga or asic
	Vendor            string // nvidia, amd, huawei, intel, google or aws
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
//   - NVIDIA L40 datasheet (48 GB GDDR6): FP32 90.5, FP16 tensor 181.05
//     dense, INT8 362 dense; compute capability 8.9.
//   - NVIDIA L4 datasheet (24 GB): FP32 30.3, FP16 tensor 121 dense, INT8
//     242.5 dense; compute capability 8.9.
//   - NVIDIA A10 datasheet (24 GB GDDR6): FP32 31.2, FP16 tensor 125 dense,
//     INT8 250 dense; compute capability 8.6. AWS's A10G is listed as an
//     A10 spelling.
//   - NVIDIA T4 datasheet (16 GB GDDR6): FP32 8.1, FP16 mixed 65, INT8 130;
//     compute capability 7.5.
//   - NVIDIA V100 datasheet (SXM2 32 GB): FP64 7.8, FP32 15.7, tensor 125;
//     compute capability 7.0. Its 16 GB and PCIe forms are spellings that
//     carry their memory (see FindAcceleratorVariant).
//   - NVIDIA Tesla P100 datasheet (SXM2, 16 GB HBM2): FP64 5.3, FP32 10.6,
//     FP16 21.2; compute capability 6.0 (CUDA 8.0+).
//   - AMD Instinct MI300X data sheet (192 GB HBM3): FP64 vector 81.7, FP32
//     vector 163.4, FP16 1307.4 dense, INT8 2614.9 dense; ROCm 6.0+.
//     SkyPilot's catalogs write it MI300.
//   - AMD Instinct MI250X and MI250 data sheets (128 GB HBM2e): FP64 vector
//     47.9 and 45.3, FP32 vector 47.9 and 45.3, FP16 383 and 362.1, INT8 383
//     and 362.1; ROCm 5.0+.
//   - Huawei Ascend 910B (64 GB HBM2e) as published for the Atlas 800T A2
//     training server: FP16 313, INT8 640; FP64 and FP32 not published;
//     CANN 7.0+. Its B1–B4 bins are spellings of it.
//   - Huawei Ascend 910 as announced (32 GB HBM2): FP16 256, INT8 512;
//     CANN 3.0+.
//   - Google Cloud TPU system architecture pages, per chip (bf16 in the fp16
//     column): v2 16 GiB, 45; v3 32 GiB, 123; v4 32 GiB, 275, INT8 275;
//     v5e 16 GiB, 197, INT8 394; v5p 95 GiB, 459, INT8 918; v6e (Trillium)
//     32 GiB, 918, INT8 1836. SkyPilot names slices ("tpu-v4-8"); the
//     SkyPilot importer turns a single-host slice into its chips.
//   - AWS Inferentia, Inferentia2 and Trainium product pages, per chip:
//     Inferentia 8 GiB, FP16/BF16 64, INT8 128; Inferentia2 32 GiB, FP16 190;
//     Trainium 32 GiB, FP16/BF16 190.
//   - Intel Gaudi 2 and Gaudi 3 white papers: 96 GB HBM2e, BF16 matrix 432;
//     128 GB HBM2e, BF16 matrix 1835.
//
// The Neuron, SynapseAI and XLA runtimes are listed with minimum version 0:
// the vocabulary records which runtime a device takes, not from which
// release; a job that needs a release says so in its constraint.
var vocabulary = []*AcceleratorModel{
	{Name: "A10", Kind: "gpu", Vendor: "nvidia", Memory: 24 << 30, ComputeCapability: MustVersion("8.6"),
		Frameworks: nvidia("11.1"), TFLOPS: TFLOPS{FP32: 31.2, FP16: 125, INT8: 250}, Aliases: []string{"a10g", "a10-24gb", "a10g-24gb"}},
	{Name: "A100", Kind: "gpu", Vendor: "nvidia", Memory: 80 << 30, ComputeCapability: MustVersion("8.0"),
		Frameworks: nvidia("11.0"), TFLOPS: TFLOPS{FP64: 9.7, FP32: 19.5, FP16: 312, INT8: 624},
		Aliases: []string{"a100-80gb", "a100-sxm4-80gb", "a100-pcie-80gb", "a100-40gb", "a100-sxm4-40gb", "a100-pcie-40gb", "a100-sxm4", "a100-pcie", "a100-sxm"}},
	{Name: "H100", Kind: "gpu", Vendor: "nvidia", Memory: 80 << 30, ComputeCapability: MustVersion("9.0"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP64: 34, FP32: 67, FP16: 989.5, INT8: 1979},
		Aliases: []string{"h100-80gb", "h100-sxm", "h100-sxm5", "h100-mega", "h100-mega-80gb", "h100-sxm5-80gb"}},
	{Name: "H20", Kind: "gpu", Vendor: "nvidia", Memory: 96 << 30, ComputeCapability: MustVersion("9.0"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP64: 1, FP32: 44, FP16: 148, INT8: 296}},
	{Name: "H200", Kind: "gpu", Vendor: "nvidia", Memory: 141 << 30, ComputeCapability: MustVersion("9.0"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP64: 34, FP32: 67, FP16: 989.5, INT8: 1979}, Aliases: []string{"h200-141gb", "h200-sxm"}},
	{Name: "L4", Kind: "gpu", Vendor: "nvidia", Memory: 24 << 30, ComputeCapability: MustVersion("8.9"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP32: 30.3, FP16: 121, INT8: 242.5}, Aliases: []string{"l4-24gb"}},
	{Name: "L40", Kind: "gpu", Vendor: "nvidia", Memory: 48 << 30, ComputeCapability: MustVersion("8.9"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP32: 90.5, FP16: 181.05, INT8: 362}, Aliases: []string{"l40-48gb"}},
	{Name: "L40S", Kind: "gpu", Vendor: "nvidia", Memory: 48 << 30, ComputeCapability: MustVersion("8.9"),
		Frameworks: nvidia("11.8"), TFLOPS: TFLOPS{FP32: 91.6, FP16: 362.05, INT8: 733}, Aliases: []string{"l40s-48gb"}},
	{Name: "P100", Kind: "gpu", Vendor: "nvidia", Memory: 16 << 30, ComputeCapability: MustVersion("6.0"),
		Frameworks: nvidia("8.0"), TFLOPS: TFLOPS{FP64: 5.3, FP32: 10.6, FP16: 21.2},
		Aliases: []string{"tesla-p100", "p100-16gb", "p100-sxm2", "p100-pcie", "p100-pcie-16gb", "p100-sxm2-16gb"}},
	{Name: "T4", Kind: "gpu", Vendor: "nvidia", Memory: 16 << 30, ComputeCapability: MustVersion("7.5"),
		Frameworks: nvidia("10.0"), TFLOPS: TFLOPS{FP32: 8.1, FP16: 65, INT8: 130}, Aliases: []string{"tesla-t4", "t4-16gb"}},
	{Name: "V100", Kind: "gpu", Vendor: "nvidia", Memory: 32 << 30, ComputeCapability: MustVersion("7.0"),
		Frameworks: nvidia("9.0"), TFLOPS: TFLOPS{FP64: 7.8, FP32: 15.7, FP16: 125},
		Aliases: []string{"v100-32gb", "v100-16gb", "tesla-v100", "v100s", "v100-sxm2", "v100-pcie", "v100-sxm2-16gb", "v100-sxm2-32gb", "v100-pcie-16gb", "v100-pcie-32gb", "v100s-32gb"}},
	{Name: "MI300X", Kind: "gpu", Vendor: "amd", Memory: 192 << 30,
		Frameworks: []FrameworkSupport{{"rocm", MustVersion("6.0")}, {"opencl", MustVersion("2.1")}},
		TFLOPS:     TFLOPS{FP64: 81.7, FP32: 163.4, FP16: 1307.4, INT8: 2614.9}, Aliases: []string{"instinct-mi300x", "mi300"}},
	{Name: "MI250X", Kind: "gpu", Vendor: "amd", Memory: 128 << 30,
		Frameworks: []FrameworkSupport{{"rocm", MustVersion("5.0")}, {"opencl", MustVersion("2.1")}},
		TFLOPS:     TFLOPS{FP64: 47.9, FP32: 47.9, FP16: 383, INT8: 383}, Aliases: []string{"instinct-mi250x"}},
	{Name: "MI250", Kind: "gpu", Vendor: "amd", Memory: 128 << 30,
		Frameworks: []FrameworkSupport{{"rocm", MustVersion("5.0")}, {"opencl", MustVersion("2.1")}},
		TFLOPS:     TFLOPS{FP64: 45.3, FP32: 45.3, FP16: 362.1, INT8: 362.1}, Aliases: []string{"instinct-mi250"}},
	{Name: "Ascend910B", Kind: "npu", Vendor: "huawei", Memory: 64 << 30,
		Frameworks: []FrameworkSupport{{"cann", MustVersion("7.0")}},
		TFLOPS:     TFLOPS{FP16: 313, INT8: 640}, Aliases: []string{"ascend-910b", "910b", "ascend910b1", "ascend910b2", "ascend910b3", "ascend910b4", "910b1", "910b2", "910b3", "910b4"}},
	{Name: "Ascend910", Kind: "npu", Vendor: "huawei", Memory: 32 << 30,
		Frameworks: []FrameworkSupport{{"cann", MustVersion("3.0")}},
		TFLOPS:     TFLOPS{FP16: 256, INT8: 512}, Aliases: []string{"ascend-910", "910", "ascend910a", "910a"}},
	{Name: "TPUv2", Kind: "npu", Vendor: "google", Memory: 16 << 30,
		Frameworks: xla, TFLOPS: TFLOPS{FP16: 45}, Aliases: []string{"tpu-v2"}},
	{Name: "TPUv3", Kind: "npu", Vendor: "google", Memory: 32 << 30,
		Frameworks: xla, TFLOPS: TFLOPS{FP16: 123}, Aliases: []string{"tpu-v3"}},
	{Name: "TPUv4", Kind: "npu", Vendor: "google", Memory: 32 << 30,
		Frameworks: xla, TFLOPS: TFLOPS{FP16: 275, INT8: 275}, Aliases: []string{"tpu-v4"}},
	{Name: "TPUv5e", Kind: "npu", Vendor: "google", Memory: 16 << 30,
		Frameworks: xla, TFLOPS: TFLOPS{FP16: 197, INT8: 394}, Aliases: []string{"tpu-v5e", "tpu-v5litepod", "tpu-v5-lite"}},
	{Name: "TPUv5p", Kind: "npu", Vendor: "google", Memory: 95 << 30,
		Frameworks: xla, TFLOPS: TFLOPS{FP16: 459, INT8: 918}, Aliases: []string{"tpu-v5p"}},
	{Name: "TPUv6e", Kind: "npu", Vendor: "google", Memory: 32 << 30,
		Frameworks: xla, TFLOPS: TFLOPS{FP16: 918, INT8: 1836}, Aliases: []string{"tpu-v6e", "trillium"}},
	{Name: "Inferentia", Kind: "npu", Vendor: "aws", Memory: 8 << 30,
		Frameworks: neuron, TFLOPS: TFLOPS{FP16: 64, INT8: 128}, Aliases: []string{"inferentia1", "inf1"}},
	{Name: "Inferentia2", Kind: "npu", Vendor: "aws", Memory: 32 << 30,
		Frameworks: neuron, TFLOPS: TFLOPS{FP16: 190}, Aliases: []string{"inf2"}},
	{Name: "Trainium", Kind: "npu", Vendor: "aws", Memory: 32 << 30,
		Frameworks: neuron, TFLOPS: TFLOPS{FP16: 190}, Aliases: []string{"trainium1", "trn1"}},
	{Name: "Gaudi2", Kind: "npu", Vendor: "intel", Memory: 96 << 30,
		Frameworks: synapse, TFLOPS: TFLOPS{FP16: 432}, Aliases: []string{"gaudi-2", "hl-225", "hl-225h"}},
	{Name: "Gaudi3", Kind: "npu", Vendor: "intel", Memory: 128 << 30,
		Frameworks: synapse, TFLOPS: TFLOPS{FP16: 1835}, Aliases: []string{"gaudi-3", "hl-325", "hl-325l"}},
}

var (
	xla     = []FrameworkSupport{{"xla", MustVersion("0")}}
	neuron  = []FrameworkSupport{{"neuron", MustVersion("0")}}
	synapse = []FrameworkSupport{{"synapseai", MustVersion("0")}}
)

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

// variantMemory reads the memory size a spelling names, "a100-40gb" or
// "V100-SXM2-16GB": the device memory the user asked for.
var variantMemory = regexp.MustCompile(`-(\d{1,4})gb$`)

// FindAcceleratorVariant resolves a spelling as FindAccelerator does and
// also returns the device memory it names, zero when it names none. A
// request for "A100-40GB" is a request for an A100 with at least 40 GiB,
// which both forms of the card meet; "A100-80GB" only the larger one.
func FindAcceleratorVariant(name string) (*AcceleratorModel, Quantity, bool) {
	a, ok := FindAccelerator(name)
	if !ok {
		return nil, 0, false
	}
	var mem Quantity
	if m := variantMemory.FindStringSubmatch(strings.ToLower(name)); m != nil {
		gb, _ := strconv.Atoi(m[1])
		mem = Quantity(gb) << 30
	}
	return a, mem, true
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
	if len(r.AnyOf) > 0 {
		for i := range r.AnyOf {
			if a.Satisfies(&r.AnyOf[i]) {
				return true
			}
		}
		return false
	}
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
