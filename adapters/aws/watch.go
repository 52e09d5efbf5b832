package aws

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/terraform"
)

// NodeWatch asks EC2 whether a placement's instances are still there
// (spec/adapters.md §4.4): DescribeInstances of those tagged with the
// placement, each node known by its cinet-node tag. An instance shutting
// down, terminated, stopping or stopped is a node gone, with EC2's reason
// (a Spot interruption, say).
func NodeWatch(c ModuleConfig) terraform.NodeWatch {
	return func(ctx context.Context, p adapters.Placement) (map[int]string, error) {
		if p.Offer == nil {
			return nil, nil
		}
		cl, err := NewClients(ctx, &Config{CloudOffers: adapters.CloudOffers{Region: p.Offer.Region, MaxAttempts: 3}, Endpoint: c.Endpoint})
		if err != nil {
			return nil, err
		}
		return instancesGone(ctx, cl.EC2, p.ID)
	}
}

func instancesGone(ctx context.Context, cl *ec2.Client, placement string) (map[int]string, error) {
	in := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:cinet-placement"), Values: []string{placement}}}}
	gone := map[int]string{}
	pages := ec2.NewDescribeInstancesPaginator(cl, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, apiError("DescribeInstances", err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				rank := -1
				for _, tag := range inst.Tags {
					if aws.ToString(tag.Key) == "cinet-node" {
						if n, err := strconv.Atoi(aws.ToString(tag.Value)); err == nil {
							rank = n
						}
					}
				}
				if rank < 0 || inst.State == nil {
					continue
				}
				switch st := inst.State.Name; st {
				case ec2types.InstanceStateNameShuttingDown, ec2types.InstanceStateNameTerminated,
					ec2types.InstanceStateNameStopping, ec2types.InstanceStateNameStopped:
					why := fmt.Sprintf("instance %s is %s", aws.ToString(inst.InstanceId), st)
					if inst.StateReason != nil && inst.StateReason.Message != nil {
						why += ": " + aws.ToString(inst.StateReason.Message)
					}
					gone[rank] = why
				}
			}
		}
	}
	return gone, nil
}
