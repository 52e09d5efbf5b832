package alibaba

import (
	"errors"
	"fmt"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/terraform"
)

// ModuleConfig is where a provider's placements go in its account: the
// network the instances join, their images, and how they get the node
// agent.
type ModuleConfig struct {
	// VSwitchID is the vSwitch the instances join (in the offer's zone).
	// Required.
	VSwitchID string `json:"vswitchId"`
	// SecurityGroupIDs let the nodes reach each other. Required.
	SecurityGroupIDs []string `json:"securityGroupIds"`
	// ImageRegex and GPUImageRegex pick the newest system image whose
	// name matches, for CPU-only and GPU nodes (defaults: Alibaba Cloud
	// Linux 3, and Ubuntu 22.04 to which AgentInstall adds the driver).
	ImageRegex    string `json:"imageRegex,omitempty"`
	GPUImageRegex string `json:"gpuImageRegex,omitempty"`
	// AgentInstall is shell the instance runs first, to install cinet
	// (and, on GPU nodes, what the image lacks).
	AgentInstall string `json:"agentInstall,omitempty"`
	// DiskGiB is each instance's system disk (default 100).
	DiskGiB int `json:"diskGiB,omitempty"`
	// Endpoint and Scheme replace the ECS endpoint for the instances'
	// status (a VPC endpoint; a test's server).
	Endpoint string `json:"endpoint,omitempty"`
	Scheme   string `json:"scheme,omitempty"`
}

// Default images by name: x86 and ARM Alibaba Cloud Linux 3, Ubuntu 22.04.
const (
	imageX86 = "^aliyun_3_x64_20G_alibase_.*"
	imageARM = "^aliyun_3_arm64_20G_alibase_.*"
	imageGPU = "^ubuntu_22_04_x64_20G_alibase_.*"
)

// Validate checks what the module needs of the configuration.
func (c ModuleConfig) Validate() error {
	if c.VSwitchID == "" || len(c.SecurityGroupIDs) == 0 {
		return errors.New("alibaba: vswitchId and securityGroupIds are required: where the instances go")
	}
	return nil
}

// Module is the Terraform JSON of a placement's module for the terraform
// executor (spec/adapters.md §3.2, §5.3): its nodes are ECS instances of
// the offer's instance type, in its zone, pay-as-you-go or spot as the
// offer is, in a low-latency deployment set when there are several, each
// starting the node agent from its user data; their private addresses
// are the nodes' addresses.
func Module(p adapters.Placement, c ModuleConfig) ([]byte, error) {
	o := p.Offer
	if o == nil || o.Metadata.Labels["alibaba.instance-type"] == "" {
		return nil, errors.New("alibaba: the placement's offer names no instance type (label alibaba.instance-type): it is not an offer alibaba discovery made")
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	disk := c.DiskGiB
	if disk <= 0 {
		disk = 100
	}
	image := c.ImageRegex
	switch {
	case len(o.Class.Accelerators) > 0:
		image = c.GPUImageRegex
		if image == "" {
			image = imageGPU
		}
	case image == "" && o.Class.CPU.Arch == "arm64":
		image = imageARM
	case image == "":
		image = imageX86
	}
	n := p.Instances()
	instance := terraform.Block{
		"count":                      n,
		"instance_type":              o.Metadata.Labels["alibaba.instance-type"],
		"image_id":                   terraform.Expr("data.alicloud_images.image.images[0].id"),
		"vswitch_id":                 c.VSwitchID,
		"security_groups":            c.SecurityGroupIDs,
		"instance_charge_type":       "PostPaid",
		"internet_max_bandwidth_out": 0,
		"system_disk_category":       "cloud_essd",
		"system_disk_size":           disk,
		"instance_name":              terraform.Tmpl("cinet-", terraform.Expr("var.placement.id"), "-", terraform.Expr("count.index")),
		"user_data":                  terraform.AgentUserData(c.AgentInstall),
		"tags":                       terraform.Expr(`merge(var.tags, {"cinet-node" = tostring(count.index)})`),
	}
	if z := o.Metadata.Labels["alibaba.zone"]; z != "" {
		instance["availability_zone"] = z
	}
	if o.Price.Market == "spot" {
		instance["spot_strategy"] = "SpotAsPriceGo"
	}
	resources := terraform.Block{"alicloud_instance": terraform.Block{"node": instance}}
	if n > 1 {
		resources["alicloud_ecs_deployment_set"] = terraform.Block{"nodes": terraform.Block{
			"deployment_set_name": terraform.Tmpl("cinet-", terraform.Expr("var.placement.id")), "strategy": "LowLatency"}}
		instance["deployment_set_id"] = terraform.Expr("alicloud_ecs_deployment_set.nodes.id")
	}
	data := terraform.Block{"alicloud_images": terraform.Block{"image": terraform.Block{
		"name_regex": image, "owners": "system", "most_recent": true,
	}}}
	module := terraform.NodeModule("alicloud", "aliyun/alicloud", ">= 1.200.0", terraform.Block{"region": o.Region}, data, resources,
		terraform.Expr("alicloud_instance.node[*].private_ip"))
	out, err := module.Encode()
	if err != nil {
		return nil, fmt.Errorf("alibaba: %w", err)
	}
	return out, nil
}
