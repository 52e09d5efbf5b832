package aws_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/adaptertest"
	"github.com/cinet/cinet/adapters/aws"
	"github.com/cinet/cinet/adapters/aws/awstest"
	"github.com/cinet/cinet/adapters/terraform"
	"github.com/cinet/cinet/descriptor"
)

// TestAdapter: the aws adapter applies each placement's own module with
// the real OpenTofu. Where the AWS provider cannot be installed (here:
// no registry is reachable, nor a plugin directory given), the placement
// fails with the tool's diagnostics naming the provider, and nothing is
// left: the state is destroyed.
func TestAdapter(t *testing.T) {
	bin := adaptertest.Tofu(t)
	d, err := discover(t, &awstest.Fake{T: t}, &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: []string{"g5.xlarge"}, Markets: []string{"on-demand"}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{
		"terraform": map[string]any{"binary": bin, "dataDir": t.TempDir(), "cpus": 64, "memory": "256Gi", "reportListen": "127.0.0.1:0"},
		"module":    map[string]any{"subnetId": "subnet-0abc", "securityGroupIds": []string{"sg-0nodes"}},
	})
	a, err := adapters.New("aws", raw)
	if err != nil {
		t.Fatal(err)
	}
	tf := a.(*terraform.Terraform)
	t.Cleanup(func() { tf.Close() })
	ctx := context.Background()
	p := adapters.Placement{ID: "aws-1", Job: "j", Nodes: 2, Tasks: []descriptor.Task{{Name: "main", Command: []string{"true"}}}, Offer: d.Offers[0].Offer}
	if err := a.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
	st := adaptertest.Wait(t, a, "aws-1", 50*time.Millisecond, 2*time.Minute)
	if st.State != adapters.Failed || !strings.Contains(st.Detail, "tofu init") || !strings.Contains(st.Detail, "hashicorp/aws") {
		t.Fatalf("status %+v: want failed at init, naming the provider", st)
	}
	if err := a.Release(ctx, "aws-1"); err != nil {
		t.Fatal(err)
	}
	dir := tf.PlacementDir("aws-1")
	module, err := os.ReadFile(filepath.Join(dir, "module", "main.tf.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := aws.Module(p, aws.ModuleConfig{SubnetID: "subnet-0abc", SecurityGroupIDs: []string{"sg-0nodes"}})
	if string(module) != string(want) {
		t.Errorf("the placement's module is not aws.Module's:\n%s", module)
	}
	root, _ := os.ReadFile(filepath.Join(dir, "main.tf.json"))
	if !strings.Contains(string(root), tf.ReportURL()+"/placements/aws-1/") {
		t.Errorf("the instances are not told to report to the agent server:\n%s", root)
	}
	for _, bad := range []struct{ config, want string }{
		{`{"terraform": {"binary": "` + bin + `", "dataDir": "` + t.TempDir() + `", "cpus": 1, "memory": "1Gi"}, "module": {"subnetId": "s", "securityGroupIds": ["g"]}}`, "reportListen is required"},
		{`{"terraform": {"binary": "` + bin + `", "dataDir": "` + t.TempDir() + `", "cpus": 1, "memory": "1Gi", "reportListen": "127.0.0.1:0"}, "module": {}}`, "subnetId"},
		{`{"terraform": {}, "module": {}, "region": "x"}`, "unknown field"},
	} {
		if _, err := adapters.New("aws", []byte(bad.config)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.config, err, bad.want)
		}
	}
}

// TestNodeWatch: EC2 says which of a placement's instances are gone, and
// why; instances of other placements and running ones are not.
func TestNodeWatch(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", awstest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := &awstest.Fake{T: t, Instances: []awstest.Instance{
		{ID: "i-0a", Placement: "p-1", Node: 0, State: "running"},
		{ID: "i-0b", Placement: "p-1", Node: 1, State: "terminated", Reason: "Server.SpotInstanceTermination: Spot instance termination"},
		{ID: "i-0c", Placement: "p-2", Node: 0, State: "terminated"},
	}}
	url := f.Serve()
	d, err := discover(t, f, &aws.Config{CloudOffers: adapters.CloudOffers{Region: "us-east-1", InstanceTypes: []string{"c7i.large"}, Markets: []string{"spot"}}})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := aws.NodeWatch(aws.ModuleConfig{Endpoint: url})(context.Background(), adapters.Placement{ID: "p-1", Nodes: 2, Offer: d.Offers[0].Offer})
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[1] != "instance i-0b is terminated: Server.SpotInstanceTermination: Spot instance termination" {
		t.Fatalf("gone %v", gone)
	}
}
