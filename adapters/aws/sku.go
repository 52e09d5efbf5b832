package aws

import "strings"

// An acceleratedFamily maps an EC2 instance family with GPUs or Neuron
// devices to the compute-class vocabulary (descriptor.Accelerators).
type acceleratedFamily struct {
	Family  string // the instance type's prefix before the dot
	AWSName string // the device's name as DescribeInstanceTypes gives it
	Model   string // the vocabulary's name
	// MemoryGiB is each device's memory where it differs from the
	// vocabulary's form factor; 0 keeps the vocabulary's.
	MemoryGiB int
	Source    string
}

// Sources of the rows below.
const (
	srcAccelerated = "Amazon EC2 instance types, accelerated computing (docs.aws.amazon.com/ec2/latest/instancetypes/ac.html)"
	srcP5          = "Amazon EC2 P5 instances (aws.amazon.com/ec2/instance-types/p5/)"
	srcP4          = "Amazon EC2 P4 instances (aws.amazon.com/ec2/instance-types/p4/)"
	srcG5          = "Amazon EC2 G5 instances: NVIDIA A10G Tensor Core GPUs, 24 GB each (aws.amazon.com/ec2/instance-types/g5/)"
	srcNeuron      = "AWS Neuron documentation, Inf1/Inf2/Trn1 architecture (awsdocs-neuron.readthedocs-hosted.com)"
)

// accelerated is the SKU table: each accelerated family cinet offers, with
// its source. A family not here, or whose device DescribeInstanceTypes
// names otherwise, is not offered: discovery says which and why.
var accelerated = []acceleratedFamily{
	{"p5", "H100", "H100", 0, srcP5},
	{"p5e", "H200", "H200", 0, srcP5},
	{"p5en", "H200", "H200", 0, srcP5},
	{"p4d", "A100", "A100", 40, srcP4},
	{"p4de", "A100", "A100", 80, srcP4},
	{"p3", "V100", "V100", 16, srcAccelerated},
	{"p3dn", "V100", "V100", 32, srcAccelerated},
	{"g6", "L4", "L4", 0, srcAccelerated},
	{"g6e", "L40S", "L40S", 0, srcAccelerated},
	{"gr6", "L4", "L4", 0, srcAccelerated},
	{"g5", "A10G", "A10", 0, srcG5},
	{"g4dn", "T4", "T4", 0, srcAccelerated},
	{"inf1", "Inferentia", "Inferentia", 0, srcNeuron},
	{"inf2", "Inferentia2", "Inferentia2", 0, srcNeuron},
	{"trn1", "Trainium", "Trainium", 0, srcNeuron},
	{"trn1n", "Trainium", "Trainium", 0, srcNeuron},
}

// family returns the SKU table's row for an instance type, if any.
func family(instanceType string) (acceleratedFamily, bool) {
	fam, _, _ := strings.Cut(instanceType, ".")
	for _, f := range accelerated {
		if f.Family == fam {
			return f, true
		}
	}
	return acceleratedFamily{}, false
}
