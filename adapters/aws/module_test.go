package aws_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/adaptertest"
	"github.com/cinet/cinet/adapters/aws"
	"github.com/cinet/cinet/adapters/aws/awstest"
	"github.com/cinet/cinet/descriptor"
)

// TestModule: placements in, Terraform JSON out — CPU-only, one GPU,
// eight, two nodes, spot — each the golden file's, and each read back by
// HCL's JSON parser as a configuration with the instances, their image,
// and the outputs the executor reads.
func TestModule(t *testing.T) {
	f := &awstest.Fake{T: t}
	d, err := discover(t, f, &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: []string{"c7i.large", "g5.xlarge", "p5.48xlarge", "p4d.24xlarge", "inf2.xlarge"}}})
	if err != nil {
		t.Fatal(err)
	}
	offer := func(pool string) *descriptor.Offer {
		for _, o := range d.Offers {
			if o.Offer.ComputeID.Pool == pool {
				return o.Offer
			}
		}
		t.Fatalf("no offer %s", pool)
		return nil
	}
	conf := aws.ModuleConfig{SubnetID: "subnet-0abc", SecurityGroupIDs: []string{"sg-0nodes"}, InstanceProfile: "cinet-node",
		AgentInstall: "curl -fsSL https://example.net/cinet -o /usr/local/bin/cinet && chmod +x /usr/local/bin/cinet"}
	task := []descriptor.Task{{Name: "main", Command: []string{"python3", "train.py"}}}
	for _, tc := range []struct {
		name, pool string
		nodes      int
		wants      []string
	}{
		{"cpu", "c7i-large", 1, []string{`"instance_type": "c7i.large"`, "al2023-ami-2023.*-x86_64"}},
		{"one-gpu", "g5-xlarge", 1, []string{`"instance_type": "g5.xlarge"`, "Nvidia Driver GPU AMI"}},
		{"eight-gpus", "p5-48xlarge", 1, []string{`"instance_type": "p5.48xlarge"`, `"availability_zone": "us-east-1b"`}},
		{"two-nodes", "p4d-24xlarge", 2, []string{`"count": 2`, `"strategy": "cluster"`, "aws_placement_group.nodes.id"}},
		{"spot", "g5-xlarge-spot", 1, []string{`"market_type": "spot"`, `"instance_interruption_behavior": "terminate"`}},
		{"neuron", "inf2-xlarge", 1, []string{"Deep Learning AMI Neuron"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := adapters.Placement{ID: "j-" + tc.name + "-1", Job: "j-" + tc.name, Nodes: tc.nodes, Tasks: task, Offer: offer(tc.pool)}
			got, err := aws.Module(p, conf)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(string(got), w) {
					t.Errorf("lacks %s", w)
				}
			}
			if !strings.Contains(string(got), "${var.agent.run} ${count.index}") {
				t.Error("the user data does not start the node agent")
			}
			adaptertest.TerraformModule(t, filepath.Join("testdata", "module-"+tc.name+".tf.json"), got, *update,
				"resource.aws_instance.node", "data.aws_ami.image", "provider.aws")
		})
	}
	// What the configuration says is data: a template in it is escaped.
	hostile := conf
	hostile.AgentInstall, hostile.SubnetID = `echo ${file("/etc/shadow")}`, "subnet-${path.cwd}"
	got, err := aws.Module(adapters.Placement{ID: "x", Tasks: task, Offer: offer("c7i-large")}, hostile)
	if err != nil || !strings.Contains(string(got), `echo $${file(\"/etc/shadow\")}`) || !strings.Contains(string(got), `"subnet-$${path.cwd}"`) {
		t.Errorf("templates in the configuration were not escaped: %v\n%s", err, got)
	}
	if _, err := aws.Module(adapters.Placement{ID: "x", Tasks: task}, conf); err == nil || !strings.Contains(err.Error(), "names no instance type") {
		t.Errorf("a placement without an aws offer: %v", err)
	}
	if _, err := aws.Module(adapters.Placement{ID: "x", Tasks: task, Offer: offer("c7i-large")}, aws.ModuleConfig{}); err == nil || !strings.Contains(err.Error(), "subnetId") {
		t.Errorf("no subnet: %v", err)
	}
}
