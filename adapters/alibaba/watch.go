package alibaba

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/terraform"
)

// NodeWatch asks ECS whether a placement's instances are still there
// (spec/adapters.md §5): DescribeInstances of those tagged with the
// placement, each node known by its cinet-node tag. An instance stopping
// or stopped, or one ECS no longer lists (a released spot instance), is a
// node gone. The AccessKey is ALIBABA_CLOUD_ACCESS_KEY_ID and
// ALIBABA_CLOUD_ACCESS_KEY_SECRET.
func NodeWatch(c ModuleConfig) terraform.NodeWatch {
	return func(ctx context.Context, p adapters.Placement) (map[int]string, error) {
		if p.Offer == nil {
			return nil, nil
		}
		cfg := &Config{CloudOffers: adapters.CloudOffers{Region: p.Offer.Region, MaxAttempts: 3}, Endpoint: c.Endpoint, Scheme: c.Scheme}
		cl, err := NewClient(cfg, os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
		if err != nil {
			return nil, err
		}
		return cl.instancesGone(p.ID, p.Instances())
	}
}

func (cl *Client) instancesGone(placement string, nodes int) (map[int]string, error) {
	seen := map[int]bool{}
	gone := map[int]string{}
	next := ""
	for {
		req := ecs.CreateDescribeInstancesRequest()
		req.Tag = &[]ecs.DescribeInstancesTag{{Key: "cinet-placement", Value: placement}}
		req.MaxResults = requests.NewInteger(100)
		req.NextToken = next
		body, err := cl.call("DescribeInstances", req, ecs.CreateDescribeInstancesResponse())
		if err != nil {
			return nil, err
		}
		var r struct {
			NextToken string
			Instances struct {
				Instance []struct {
					InstanceID string `json:"InstanceId"`
					Status     string
					Tags       struct {
						Tag []struct{ TagKey, TagValue string }
					}
				}
			}
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("alibaba: DescribeInstances: the response is not the documented JSON: %w", err)
		}
		for _, in := range r.Instances.Instance {
			rank := -1
			for _, tag := range in.Tags.Tag {
				if tag.TagKey == "cinet-node" {
					if n, err := strconv.Atoi(tag.TagValue); err == nil {
						rank = n
					}
				}
			}
			if rank < 0 {
				continue
			}
			seen[rank] = true
			if in.Status == "Stopping" || in.Status == "Stopped" {
				gone[rank] = fmt.Sprintf("instance %s is %s", in.InstanceID, in.Status)
			}
		}
		if next = r.NextToken; next == "" {
			break
		}
	}
	for k := range nodes {
		if !seen[k] {
			gone[k] = "ECS no longer lists its instance (released; a spot instance reclaimed?)"
		}
	}
	return gone, nil
}
