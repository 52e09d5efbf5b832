package alibaba_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/adaptertest"
	"github.com/cinet/cinet/adapters/alibaba"
	"github.com/cinet/cinet/adapters/alibaba/alibabatest"
	"github.com/cinet/cinet/adapters/terraform"
	"github.com/cinet/cinet/descriptor"
)

// TestAdapter: the alibaba adapter applies each placement's own module
// with the real OpenTofu; without the alicloud provider (no registry is
// reachable here) the placement fails at init, saying so, and releasing
// it leaves nothing.
func TestAdapter(t *testing.T) {
	bin := adaptertest.Tofu(t)
	d, err := discover(t, &alibabatest.Fake{T: t}, &alibaba.Config{CloudOffers: adapters.CloudOffers{InstanceTypes: []string{"ecs.g7.xlarge"}, Markets: []string{"on-demand"}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{
		"terraform": map[string]any{"binary": bin, "dataDir": t.TempDir(), "cpus": 64, "memory": "256Gi", "reportListen": "127.0.0.1:0"},
		"module":    map[string]any{"vswitchId": "vsw-1", "securityGroupIds": []string{"sg-1"}},
	})
	a, err := adapters.New("alibaba", raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.(*terraform.Terraform).Close() })
	ctx := context.Background()
	p := adapters.Placement{ID: "ali-1", Job: "j", Tasks: []descriptor.Task{{Name: "main", Command: []string{"true"}}}, Offer: d.Offers[0].Offer}
	if err := a.Provision(ctx, p); err != nil {
		t.Fatal(err)
	}
	st := adaptertest.Wait(t, a, "ali-1", 50*time.Millisecond, 2*time.Minute)
	if st.State != adapters.Failed || !strings.Contains(st.Detail, "tofu init") || !strings.Contains(st.Detail, "aliyun/alicloud") {
		t.Fatalf("status %+v: want failed at init, naming the provider", st)
	}
	if err := a.Release(ctx, "ali-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := adapters.New("alibaba", []byte(`{"terraform": {"binary": "`+bin+`", "dataDir": "`+t.TempDir()+`", "cpus": 1, "memory": "1Gi"}, "module": {"vswitchId": "v", "securityGroupIds": ["g"]}}`)); err == nil || !strings.Contains(err.Error(), "reportListen is required") {
		t.Errorf("no agent server: %v", err)
	}
}

// TestNodeWatch: ECS says which of a placement's instances are gone: a
// stopped one, and one it no longer lists (a reclaimed spot instance).
func TestNodeWatch(t *testing.T) {
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", alibabatest.AccessKeyID)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", alibabatest.AccessKeySecret)
	f := &alibabatest.Fake{T: t, Instances: []alibabatest.Instance{
		{ID: "i-bp1a", Placement: "p-1", Node: 0, Status: "Running"},
		{ID: "i-bp1b", Placement: "p-1", Node: 1, Status: "Stopped"},
		{ID: "i-bp1c", Placement: "p-2", Node: 2, Status: "Running"},
	}}
	d, err := discover(t, f, &alibaba.Config{CloudOffers: adapters.CloudOffers{InstanceTypes: []string{"ecs.g7.xlarge"}, Markets: []string{"spot"}}})
	if err != nil {
		t.Fatal(err)
	}
	watch := alibaba.NodeWatch(alibaba.ModuleConfig{Endpoint: f.Serve(), Scheme: "http"})
	gone, err := watch(context.Background(), adapters.Placement{ID: "p-1", Nodes: 3, Offer: d.Offers[0].Offer})
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 2 || gone[1] != "instance i-bp1b is Stopped" || !strings.Contains(gone[2], "no longer lists") {
		t.Fatalf("gone %v", gone)
	}
}
