package alibaba_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/adaptertest"
	"github.com/cinet/cinet/adapters/alibaba"
	"github.com/cinet/cinet/adapters/alibaba/alibabatest"
	"github.com/cinet/cinet/descriptor"
)

// TestModule: placements in, Terraform JSON for the alicloud provider out
// — CPU-only (x86 and ARM), one GPU, four, two nodes, spot — each the
// golden file's and read back by HCL's JSON parser.
func TestModule(t *testing.T) {
	d, err := discover(t, &alibabatest.Fake{T: t}, &alibaba.Config{CloudOffers: adapters.CloudOffers{InstanceTypes: []string{"ecs.g7.xlarge", "ecs.g8y.large", "ecs.gn7i-c8g1.2xlarge", "ecs.gn7-c13g1.13xlarge"}}})
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
	conf := alibaba.ModuleConfig{VSwitchID: "vsw-bp1nodes", SecurityGroupIDs: []string{"sg-bp1nodes"},
		AgentInstall: "curl -fsSL https://example.net/cinet -o /usr/local/bin/cinet && chmod +x /usr/local/bin/cinet"}
	task := []descriptor.Task{{Name: "main", Command: []string{"python3", "train.py"}}}
	for _, tc := range []struct {
		name, pool string
		nodes      int
		wants      []string
	}{
		{"cpu", "g7-xlarge", 1, []string{`"instance_type": "ecs.g7.xlarge"`, "aliyun_3_x64"}},
		{"arm", "g8y-large", 1, []string{"aliyun_3_arm64"}},
		{"one-gpu", "gn7i-c8g1-2xlarge", 1, []string{`"instance_type": "ecs.gn7i-c8g1.2xlarge"`, "ubuntu_22_04"}},
		{"four-gpus", "gn7-c13g1-13xlarge", 1, []string{`"availability_zone": "cn-hangzhou-i"`}},
		{"two-nodes", "gn7-c13g1-13xlarge", 2, []string{`"count": 2`, `"strategy": "LowLatency"`}},
		{"spot", "gn7i-c8g1-2xlarge-spot", 1, []string{`"spot_strategy": "SpotAsPriceGo"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := adapters.Placement{ID: "j-" + tc.name + "-1", Job: "j-" + tc.name, Nodes: tc.nodes, Tasks: task, Offer: offer(tc.pool)}
			got, err := alibaba.Module(p, conf)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range append(tc.wants, "${var.agent.run} ${count.index}") {
				if !strings.Contains(string(got), w) {
					t.Errorf("lacks %s", w)
				}
			}
			adaptertest.TerraformModule(t, filepath.Join("testdata", "module-"+tc.name+".tf.json"), got, *update,
				"resource.alicloud_instance.node", "data.alicloud_images.image", "provider.alicloud")
		})
	}
	if _, err := alibaba.Module(adapters.Placement{ID: "x", Tasks: task}, conf); err == nil || !strings.Contains(err.Error(), "names no instance type") {
		t.Errorf("a placement without an alibaba offer: %v", err)
	}
	if _, err := alibaba.Module(adapters.Placement{ID: "x", Tasks: task, Offer: offer("g7-xlarge")}, alibaba.ModuleConfig{}); err == nil || !strings.Contains(err.Error(), "vswitchId") {
		t.Errorf("no vSwitch: %v", err)
	}
}
