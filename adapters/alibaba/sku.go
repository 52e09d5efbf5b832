package alibaba

// A gpuFamily maps an ECS instance family with GPUs to the compute-class
// vocabulary (descriptor.Accelerators).
type gpuFamily struct {
	Family   string // InstanceTypeFamily, as DescribeInstanceTypes gives it
	SpecName string // what its GPUSpec names ("NVIDIA A10")
	Model    string // the vocabulary's name
	// MemoryGiB is each GPU's memory where it differs from the
	// vocabulary's form factor; 0 keeps the vocabulary's.
	MemoryGiB int
	Source    string
}

const srcGPUFamilies = "Alibaba Cloud ECS documentation, GPU-accelerated compute-optimized instance families (help.aliyun.com/zh/ecs/user-guide/gpu-accelerated-compute-optimized-and-vgpu-accelerated-instance-families-1)"

// gpuFamilies is the SKU table. A family not here, or whose GPUSpec names
// another GPU, is not offered: discovery says which and why.
var gpuFamilies = []gpuFamily{
	{"ecs.gn7i", "A10", "A10", 0, srcGPUFamilies},
	{"ecs.gn7e", "A100", "A100", 80, srcGPUFamilies},
	{"ecs.gn7", "A100", "A100", 40, srcGPUFamilies},
	{"ecs.gn6e", "V100", "V100", 32, srcGPUFamilies},
	{"ecs.gn6v", "V100", "V100", 16, srcGPUFamilies},
	{"ecs.gn6i", "T4", "T4", 0, srcGPUFamilies},
	{"ecs.gn5", "P100", "P100", 0, srcGPUFamilies},
}

func family(name string) (gpuFamily, bool) {
	for _, f := range gpuFamilies {
		if f.Family == name {
			return f, true
		}
	}
	return gpuFamily{}, false
}
