package aws

import (
	"errors"
	"fmt"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/terraform"
)

// ModuleConfig is where a provider's placements go in its account: the
// network the instances join, and how they get the node agent.
type ModuleConfig struct {
	// SubnetID is the subnet the instances join (its zone must be the
	// offer's). Required.
	SubnetID string `json:"subnetId"`
	// SecurityGroupIDs let the nodes reach each other (and the agent the
	// broker). Required.
	SecurityGroupIDs []string `json:"securityGroupIds"`
	// InstanceProfile, KeyName: an IAM instance profile and an SSH key
	// pair for the instances, if any.
	InstanceProfile string `json:"instanceProfile,omitempty"`
	KeyName         string `json:"keyName,omitempty"`
	// AgentInstall is shell the instance runs first, to install cinet
	// where the agent command names it.
	AgentInstall string `json:"agentInstall,omitempty"`
	// DiskGiB is each instance's root volume (default 100).
	DiskGiB int `json:"diskGiB,omitempty"`
	// Endpoint replaces EC2's endpoint for the instances' status (a VPC
	// endpoint; a test's server).
	Endpoint string `json:"endpoint,omitempty"`
}

// Images, by what a node needs: the newest Amazon image whose name
// matches, from Amazon's own account.
const (
	imageCPUx86   = "al2023-ami-2023.*-x86_64"
	imageCPUarm   = "al2023-ami-2023.*-arm64"
	imageNVIDIA   = "Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023) *"
	imageNeuron   = "Deep Learning AMI Neuron (Amazon Linux 2023) *"
	imageNVIDIAar = "Deep Learning ARM64 Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023) *"
)

// Validate checks what the module needs of the configuration.
func (c ModuleConfig) Validate() error {
	if c.SubnetID == "" || len(c.SecurityGroupIDs) == 0 {
		return errors.New("aws: subnetId and securityGroupIds are required: where the instances go")
	}
	return nil
}

// Module is the Terraform JSON of a placement's module for the terraform
// executor (spec/adapters.md §3.2, §4.3): its nodes are EC2 instances of
// the offer's instance type, in its zone, on-demand or spot as the offer
// is, in a cluster placement group when there are several, each starting
// the node agent from its user data; their private addresses are the
// nodes' addresses.
func Module(p adapters.Placement, c ModuleConfig) ([]byte, error) {
	o := p.Offer
	if o == nil || o.Metadata.Labels["aws.instance-type"] == "" {
		return nil, errors.New("aws: the placement's offer names no instance type (label aws.instance-type): it is not an offer aws discovery made")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	disk := c.DiskGiB
	if disk <= 0 {
		disk = 100
	}
	image := imageCPUx86
	if o.Class.CPU.Arch == "arm64" {
		image = imageCPUarm
	}
	for _, a := range o.Class.Accelerators {
		switch a.Model {
		case "Inferentia", "Inferentia2", "Trainium":
			image = imageNeuron
		default:
			image = imageNVIDIA
			if o.Class.CPU.Arch == "arm64" {
				image = imageNVIDIAar
			}
		}
	}
	n := p.Instances()
	instance := terraform.Block{
		"count":                  n,
		"ami":                    terraform.Expr("data.aws_ami.image.id"),
		"instance_type":          o.Metadata.Labels["aws.instance-type"],
		"subnet_id":              c.SubnetID,
		"vpc_security_group_ids": c.SecurityGroupIDs,
		"user_data":              terraform.AgentUserData(c.AgentInstall),
		"tags":                   terraform.Expr(`merge(var.tags, {Name = "cinet-${var.placement.id}-${count.index}", "cinet-node" = count.index})`),
		"root_block_device":      terraform.Block{"volume_size": disk, "volume_type": "gp3", "delete_on_termination": true},
		"metadata_options":       terraform.Block{"http_tokens": "required"},
	}
	if az := o.Metadata.Labels["aws.availability-zone"]; az != "" {
		instance["availability_zone"] = az
	}
	if c.InstanceProfile != "" {
		instance["iam_instance_profile"] = c.InstanceProfile
	}
	if c.KeyName != "" {
		instance["key_name"] = c.KeyName
	}
	if o.Price.Market == "spot" {
		instance["instance_market_options"] = terraform.Block{
			"market_type":  "spot",
			"spot_options": terraform.Block{"spot_instance_type": "one-time", "instance_interruption_behavior": "terminate"},
		}
	}
	resources := terraform.Block{"aws_instance": terraform.Block{"node": instance}}
	if n > 1 {
		resources["aws_placement_group"] = terraform.Block{"nodes": terraform.Block{
			"name": terraform.Tmpl("cinet-", terraform.Expr("var.placement.id")), "strategy": "cluster", "tags": terraform.Expr("var.tags")}}
		instance["placement_group"] = terraform.Expr("aws_placement_group.nodes.id")
	}
	data := terraform.Block{"aws_ami": terraform.Block{"image": terraform.Block{
		"most_recent": true, "owners": []string{"amazon"},
		"filter": []any{
			terraform.Block{"name": "name", "values": []string{image}},
			terraform.Block{"name": "state", "values": []string{"available"}},
		},
	}}}
	module := terraform.NodeModule("aws", "hashicorp/aws", ">= 5.0", terraform.Block{"region": o.Region}, data, resources,
		terraform.Expr("aws_instance.node[*].private_ip"))
	out, err := module.Encode()
	if err != nil {
		return nil, fmt.Errorf("aws: %w", err)
	}
	return out, nil
}
