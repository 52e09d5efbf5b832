package descriptor

import (
	"slices"
	"testing"
)

func names(models []*AcceleratorModel) []string {
	var out []string
	for _, m := range models {
		out = append(out, m.Name)
	}
	return out
}

// TestResolveAccelerators: a request by model and a request by need both
// resolve against the vocabulary.
func TestResolveAccelerators(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  AcceleratorRequest
		want []string
	}{
		{"by model H100:8", AcceleratorRequest{Model: "H100", Count: 8}, []string{"H100"}},
		{"fp16 >= 600 and cuda >= 12.2", AcceleratorRequest{Count: 1, TFLOPS: TFLOPS{FP16: 600}, Frameworks: []FrameworkConstraint{{"cuda", MustVersionConstraint(">=12.2")}}}, []string{"H100", "H200"}},
		{"fp16 >= 600 any framework", AcceleratorRequest{Count: 1, TFLOPS: TFLOPS{FP16: 600}}, []string{"H100", "H200", "MI300X"}},
		{"npu", AcceleratorRequest{Count: 1, Kind: "npu"}, []string{"Ascend910B"}},
		{"cann", AcceleratorRequest{Count: 1, Frameworks: []FrameworkConstraint{{"cann", MustVersionConstraint(">=8.0")}}}, []string{"Ascend910B"}},
		{"memory >= 100Gi", AcceleratorRequest{Count: 1, Memory: 100 << 30}, []string{"H200", "MI300X"}},
		{"compute capability 8.x", AcceleratorRequest{Count: 1, ComputeCapability: MustVersionConstraint(">=8.0,<9")}, []string{"A10", "A100", "L4", "L40S"}},
		{"old cuda only", AcceleratorRequest{Count: 1, Frameworks: []FrameworkConstraint{{"cuda", MustVersionConstraint("<10")}}}, []string{"V100"}},
		{"amd cuda", AcceleratorRequest{Count: 1, Vendor: "amd", Frameworks: []FrameworkConstraint{{"cuda", MustVersionConstraint(">=12")}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(ResolveAccelerators(&tc.req)); !slices.Equal(got, tc.want) {
				t.Errorf("ResolveAccelerators = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFindAccelerator(t *testing.T) {
	for in, want := range map[string]string{"h100": "H100", "A100-80GB": "A100", "tesla-t4": "T4", "910b": "Ascend910B", "mi300x": "MI300X"} {
		m, ok := FindAccelerator(in)
		if !ok || m.Name != want {
			t.Errorf("FindAccelerator(%q) = %v, want %s", in, m, want)
		}
	}
	if _, ok := FindAccelerator("tpu-v5"); ok {
		t.Error("FindAccelerator found tpu-v5")
	}
}

func TestVocabularyConsistent(t *testing.T) {
	for _, m := range Accelerators() {
		if m.Memory <= 0 || m.TFLOPS.FP16 <= 0 || len(m.Frameworks) == 0 {
			t.Errorf("%s lacks memory, fp16 throughput or frameworks", m.Name)
		}
		if (m.Vendor == "nvidia") == m.ComputeCapability.IsZero() {
			t.Errorf("%s: compute capability must be set exactly for NVIDIA models", m.Name)
		}
		if _, ok := FindAccelerator(m.Name); !ok {
			t.Errorf("%s is not found by its own name", m.Name)
		}
	}
}
