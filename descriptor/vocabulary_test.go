package descriptor

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
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
		{"fp16 >= 600 any framework", AcceleratorRequest{Count: 1, TFLOPS: TFLOPS{FP16: 600}}, []string{"Gaudi3", "H100", "H200", "MI300X", "TPUv6e"}},
		{"huawei npu", AcceleratorRequest{Count: 1, Kind: "npu", Vendor: "huawei"}, []string{"Ascend910", "Ascend910B"}},
		{"google", AcceleratorRequest{Count: 1, Vendor: "google", TFLOPS: TFLOPS{INT8: 300}}, []string{"TPUv5e", "TPUv5p", "TPUv6e"}},
		{"cann", AcceleratorRequest{Count: 1, Frameworks: []FrameworkConstraint{{"cann", MustVersionConstraint(">=8.0")}}}, []string{"Ascend910", "Ascend910B"}},
		{"neuron", AcceleratorRequest{Count: 1, Frameworks: []FrameworkConstraint{{"neuron", MustVersionConstraint(">=2.20")}}}, []string{"Inferentia", "Inferentia2", "Trainium"}},
		{"memory >= 100Gi", AcceleratorRequest{Count: 1, Memory: 100 << 30}, []string{"Gaudi3", "H200", "MI250", "MI250X", "MI300X"}},
		{"compute capability 8.x", AcceleratorRequest{Count: 1, ComputeCapability: MustVersionConstraint(">=8.0,<9")}, []string{"A10", "A100", "L4", "L40", "L40S"}},
		{"old cuda only", AcceleratorRequest{Count: 1, Frameworks: []FrameworkConstraint{{"cuda", MustVersionConstraint("<10")}}}, []string{"P100", "V100"}},
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

func TestFindAcceleratorVariant(t *testing.T) {
	for _, tc := range []struct {
		in    string
		model string
		mem   Quantity
	}{
		{"A100", "A100", 0}, {"A100-40GB", "A100", 40 << 30}, {"a100-80gb", "A100", 80 << 30},
		{"V100-SXM2-16GB", "V100", 16 << 30}, {"v100-pcie-32gb", "V100", 32 << 30}, {"v100s", "V100", 0},
		{"MI300", "MI300X", 0}, {"L40", "L40", 0}, {"A10G", "A10", 0}, {"ascend910b4", "Ascend910B", 0},
		{"Inferentia2", "Inferentia2", 0}, {"trn1", "Trainium", 0}, {"hl-225", "Gaudi2", 0}, {"tpu-v5litepod", "TPUv5e", 0},
	} {
		m, mem, ok := FindAcceleratorVariant(tc.in)
		if !ok || m.Name != tc.model || mem != tc.mem {
			t.Errorf("FindAcceleratorVariant(%q) = %v, %v, %v; want %s, %v", tc.in, m, mem, ok, tc.model, tc.mem)
		}
	}
	for _, bad := range []string{"A100-40", "k80", "tpu-v7", "gb"} {
		if m, _, ok := FindAcceleratorVariant(bad); ok {
			t.Errorf("FindAcceleratorVariant(%q) = %s, want unknown", bad, m.Name)
		}
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

// vocabularyRow writes a model as spec/descriptor-v1.md §5 lists it.
func vocabularyRow(m *AcceleratorModel) string {
	cc := "—"
	if !m.ComputeCapability.IsZero() {
		cc = m.ComputeCapability.String()
	}
	var fw []string
	for _, f := range m.Frameworks {
		fw = append(fw, f.Name+" "+f.Min.String())
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", m.Name, m.Kind, m.Vendor, m.Memory, cc,
		strings.Join(fw, ", "), num(m.TFLOPS.FP64), num(m.TFLOPS.FP32), num(m.TFLOPS.FP16), num(m.TFLOPS.INT8))
}

// TestSpecVocabularyTable: the table in spec/descriptor-v1.md §5 is the
// vocabulary, row for row.
func TestSpecVocabularyTable(t *testing.T) {
	data, err := os.ReadFile("../spec/descriptor-v1.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "## 5. Compute-class vocabulary")
	if !ok {
		t.Fatal("spec/descriptor-v1.md has no §5")
	}
	var got []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| model ") {
			got = append(got, line)
		} else if len(got) > 0 {
			break
		}
	}
	var want []string
	for _, m := range Accelerators() {
		want = append(want, vocabularyRow(m))
	}
	if !slices.Equal(got, want) {
		t.Errorf("spec/descriptor-v1.md §5 differs from the vocabulary; it should read:\n%s", strings.Join(want, "\n"))
	}
}
