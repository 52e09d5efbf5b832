// Package aws turns an AWS account's EC2 capacity into cinet offers
// (spec/adapters.md §4): instance types with their vCPUs, memory and
// accelerators from DescribeInstanceTypes, mapped to the compute-class
// vocabulary by the SKU table; on-demand prices from the Pricing API;
// spot prices per zone from DescribeSpotPriceHistory; the zones each
// type is offered in from DescribeInstanceTypeOfferings.
package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	pricingtypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"
	"github.com/aws/smithy-go"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// Config says which of an account's capacity to offer. Credentials come
// from the SDK's usual chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
// AWS_PROFILE, an instance role).
type Config struct {
	adapters.CloudOffers
	// Endpoint and PricingEndpoint replace the services' endpoints (a VPC
	// endpoint; a test's server). PricingRegion is the Pricing API's
	// region (default us-east-1, where it is served).
	Endpoint        string `json:"endpoint,omitempty"`
	PricingEndpoint string `json:"pricingEndpoint,omitempty"`
	PricingRegion   string `json:"pricingRegion,omitempty"`
}

// ParseConfig decodes a configuration strictly and checks it.
func ParseConfig(raw json.RawMessage) (*Config, error) {
	var c Config
	if err := adapters.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	return &c, c.Validate()
}

// Validate checks the configuration without calling AWS.
func (c *Config) Validate() error { return c.Check("aws", regionCountries) }

// regionCountries are the regions whose country their name says.
var regionCountries = map[string]string{"us": "US", "cn": "CN", "ca": "CA", "il": "IL", "mx": "MX"}

func (c *Config) jurisdiction() string { return c.Country(regionCountries) }

// Clients are the two services discovery calls.
type Clients struct {
	EC2     *ec2.Client
	Pricing *pricing.Client
}

// NewClients makes the clients from the SDK's default configuration
// (credentials from the environment, the profile or the instance), with
// the configured endpoints, retries and backoff.
func NewClients(ctx context.Context, c *Config, opts ...func(*awsconfig.LoadOptions) error) (*Clients, error) {
	attempts, backoff := c.Retries()
	opts = append([]func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(c.Region),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = backoff
				o.Backoff = retry.NewExponentialJitterBackoff(backoff)
				o.RateLimiter = ratelimit.None // throttling is AWS's to say; each call backs off on its own
			})
		}),
	}, opts...)
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws: loading the SDK's configuration: %w", err)
	}
	cl := &Clients{
		EC2: ec2.NewFromConfig(cfg, func(o *ec2.Options) {
			if c.Endpoint != "" {
				o.BaseEndpoint = aws.String(c.Endpoint)
			}
		}),
		Pricing: pricing.NewFromConfig(cfg, func(o *pricing.Options) {
			o.Region = c.PricingRegion
			if o.Region == "" {
				o.Region = "us-east-1"
			}
			if c.PricingEndpoint != "" {
				o.BaseEndpoint = aws.String(c.PricingEndpoint)
			}
		}),
	}
	return cl, nil
}

// Discovered is what discovery found: the offers, and why some instance
// types or zones are not among them.
type Discovered struct {
	Offers  []*descriptor.Document
	Skipped []string
}

// Discover asks AWS for the configured instance types and their prices,
// and returns them as offers of provider's, owned by broker, valid from
// now.
func Discover(ctx context.Context, cl *Clients, c *Config, provider, broker identity.PrincipalID, now time.Time) (*Discovered, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	types, err := describeTypes(ctx, cl.EC2, c.InstanceTypes)
	if err != nil {
		return nil, err
	}
	zones, err := typeZones(ctx, cl.EC2, c.InstanceTypes)
	if err != nil {
		return nil, err
	}
	d := &Discovered{}
	var spot map[string]map[string]string
	if slices.Contains(c.MarketList(), "spot") {
		if spot, err = spotPrices(ctx, cl.EC2, c.InstanceTypes, now); err != nil {
			return nil, err
		}
	}
	for _, it := range c.InstanceTypes {
		info, ok := types[it]
		if !ok {
			d.Skipped = append(d.Skipped, fmt.Sprintf("%s: DescribeInstanceTypes did not return it", it))
			continue
		}
		class, why := classOf(info, c.Frameworks)
		if why != "" {
			d.Skipped = append(d.Skipped, it+": "+why)
			continue
		}
		var onDemand string
		if slices.Contains(c.MarketList(), "on-demand") {
			if onDemand, err = onDemandPrice(ctx, cl.Pricing, c.Region, it); err != nil {
				return nil, err
			}
			if onDemand == "" {
				d.Skipped = append(d.Skipped, fmt.Sprintf("%s: the Pricing API has no Linux on-demand price for it in %s", it, c.Region))
			}
		}
		for _, az := range zones[it] {
			if len(c.Zones) > 0 && !slices.Contains(c.Zones, az) {
				continue
			}
			for _, market := range c.MarketList() {
				price := onDemand
				if market == "spot" {
					if !slices.Contains(info.SupportedUsageClasses, ec2types.UsageClassTypeSpot) {
						d.Skipped = append(d.Skipped, fmt.Sprintf("%s: not sold as spot", it))
						break
					}
					if price = spot[it][az]; price == "" {
						d.Skipped = append(d.Skipped, fmt.Sprintf("%s in %s: no spot price in the last day", it, az))
						continue
					}
				}
				if price == "" {
					continue
				}
				doc, err := offer(c, provider, broker, it, az, market, price, class, now)
				if err != nil {
					return nil, fmt.Errorf("aws: the offer for %s in %s: %w", it, az, err)
				}
				d.Offers = append(d.Offers, doc)
			}
		}
	}
	return d, nil
}

// apiError makes an SDK error say what to fix.
func apiError(call string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); code {
		case "AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "SignatureDoesNotMatch",
			"UnrecognizedClientException", "AccessDeniedException", "ExpiredToken", "ExpiredTokenException":
			return fmt.Errorf("aws: %s: %s: %s; check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and that they may call ec2:%s and pricing:GetProducts", call, code, ae.ErrorMessage(), call)
		case "InvalidInstanceType":
			return fmt.Errorf("aws: %s: %s; check instanceTypes", call, ae.ErrorMessage())
		}
	}
	var re *retry.MaxAttemptsError
	if errors.As(err, &re) {
		return fmt.Errorf("aws: %s: AWS kept refusing (throttled or failing) through %d attempts with backoff: %w", call, re.Attempt, err)
	}
	if strings.Contains(err.Error(), "failed to retrieve credentials") || strings.Contains(err.Error(), "no EC2 IMDS role found") {
		return fmt.Errorf("aws: %s: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE: %w", call, err)
	}
	return fmt.Errorf("aws: %s: %w", call, err)
}

func describeTypes(ctx context.Context, cl *ec2.Client, names []string) (map[string]ec2types.InstanceTypeInfo, error) {
	in := &ec2.DescribeInstanceTypesInput{}
	for _, n := range names {
		in.InstanceTypes = append(in.InstanceTypes, ec2types.InstanceType(n))
	}
	out := map[string]ec2types.InstanceTypeInfo{}
	p := ec2.NewDescribeInstanceTypesPaginator(cl, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError("DescribeInstanceTypes", err)
		}
		for _, t := range page.InstanceTypes {
			out[string(t.InstanceType)] = t
		}
	}
	return out, nil
}

// typeZones lists, for each type, the zones that offer it, sorted.
func typeZones(ctx context.Context, cl *ec2.Client, names []string) (map[string][]string, error) {
	in := &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: names}},
	}
	out := map[string][]string{}
	p := ec2.NewDescribeInstanceTypeOfferingsPaginator(cl, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError("DescribeInstanceTypeOfferings", err)
		}
		for _, o := range page.InstanceTypeOfferings {
			out[string(o.InstanceType)] = append(out[string(o.InstanceType)], aws.ToString(o.Location))
		}
	}
	for _, zs := range out {
		sort.Strings(zs)
	}
	return out, nil
}

// spotPrices returns the latest Linux spot price of each type in each
// zone over the last day.
func spotPrices(ctx context.Context, cl *ec2.Client, names []string, now time.Time) (map[string]map[string]string, error) {
	in := &ec2.DescribeSpotPriceHistoryInput{
		StartTime:           aws.Time(now.Add(-24 * time.Hour)),
		EndTime:             aws.Time(now),
		ProductDescriptions: []string{"Linux/UNIX"},
	}
	for _, n := range names {
		in.InstanceTypes = append(in.InstanceTypes, ec2types.InstanceType(n))
	}
	latest := map[string]map[string]time.Time{}
	out := map[string]map[string]string{}
	p := ec2.NewDescribeSpotPriceHistoryPaginator(cl, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError("DescribeSpotPriceHistory", err)
		}
		for _, h := range page.SpotPriceHistory {
			it, az, at := string(h.InstanceType), aws.ToString(h.AvailabilityZone), aws.ToTime(h.Timestamp)
			if out[it] == nil {
				out[it], latest[it] = map[string]string{}, map[string]time.Time{}
			}
			if at.After(latest[it][az]) || out[it][az] == "" {
				out[it][az], latest[it][az] = aws.ToString(h.SpotPrice), at
			}
		}
	}
	return out, nil
}

// onDemandPrice returns the hourly USD price of a Linux, shared-tenancy
// instance of the type in the region, as the Pricing API writes it, or ""
// when it has none.
func onDemandPrice(ctx context.Context, cl *pricing.Client, region, instanceType string) (string, error) {
	filter := func(field, value string) pricingtypes.Filter {
		return pricingtypes.Filter{Type: pricingtypes.FilterTypeTermMatch, Field: aws.String(field), Value: aws.String(value)}
	}
	out, err := cl.GetProducts(ctx, &pricing.GetProductsInput{
		ServiceCode: aws.String("AmazonEC2"),
		Filters: []pricingtypes.Filter{
			filter("instanceType", instanceType), filter("regionCode", region), filter("operatingSystem", "Linux"),
			filter("tenancy", "Shared"), filter("preInstalledSw", "NA"), filter("capacitystatus", "Used"),
		},
		FormatVersion: aws.String("aws_v1"),
	})
	if err != nil {
		return "", apiError("GetProducts", err)
	}
	for _, doc := range out.PriceList {
		var p struct {
			Terms struct {
				OnDemand map[string]struct {
					PriceDimensions map[string]struct {
						Unit         string            `json:"unit"`
						PricePerUnit map[string]string `json:"pricePerUnit"`
					} `json:"priceDimensions"`
				} `json:"OnDemand"`
			} `json:"terms"`
		}
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			return "", fmt.Errorf("aws: GetProducts: a price list entry is not the documented JSON: %w", err)
		}
		for _, term := range p.Terms.OnDemand {
			for _, dim := range term.PriceDimensions {
				if usd := dim.PricePerUnit["USD"]; dim.Unit == "Hrs" && usd != "" {
					return usd, nil
				}
			}
		}
	}
	return "", nil
}

// classOf is the instance type's compute class, or why it has none.
func classOf(t ec2types.InstanceTypeInfo, frameworks map[string][]descriptor.Framework) (descriptor.ComputeClass, string) {
	var c descriptor.ComputeClass
	if t.VCpuInfo == nil || t.MemoryInfo == nil || t.ProcessorInfo == nil || len(t.ProcessorInfo.SupportedArchitectures) == 0 {
		return c, "DescribeInstanceTypes left out its vCPUs, memory or architecture"
	}
	c.CPU.Count = int(aws.ToInt32(t.VCpuInfo.DefaultVCpus))
	c.Memory = descriptor.Quantity(aws.ToInt64(t.MemoryInfo.SizeInMiB) << 20)
	switch a := t.ProcessorInfo.SupportedArchitectures[0]; a {
	case ec2types.ArchitectureTypeX8664:
		c.CPU.Arch = "x86_64"
	case ec2types.ArchitectureTypeArm64:
		c.CPU.Arch = "arm64"
	default:
		return c, fmt.Sprintf("architecture %s is not in the vocabulary", a)
	}
	switch m := strings.ToLower(aws.ToString(t.ProcessorInfo.Manufacturer)); m {
	case "intel", "amd", "aws":
		c.CPU.Vendor = m
	case "":
	default:
		c.CPU.Vendor = "other"
	}
	type device struct {
		name, maker string
		count       int
		memMiB      int64
	}
	var devs []device
	if t.GpuInfo != nil {
		for _, g := range t.GpuInfo.Gpus {
			d := device{name: aws.ToString(g.Name), maker: aws.ToString(g.Manufacturer), count: int(aws.ToInt32(g.Count))}
			if g.MemoryInfo != nil {
				d.memMiB = int64(aws.ToInt32(g.MemoryInfo.SizeInMiB))
			}
			devs = append(devs, d)
		}
	}
	if t.NeuronInfo != nil {
		for _, n := range t.NeuronInfo.NeuronDevices {
			d := device{name: aws.ToString(n.Name), maker: "AWS", count: int(aws.ToInt32(n.Count))}
			if n.MemoryInfo != nil {
				d.memMiB = int64(aws.ToInt32(n.MemoryInfo.SizeInMiB))
			}
			devs = append(devs, d)
		}
	}
	if len(devs) == 0 {
		return c, ""
	}
	row, ok := family(string(t.InstanceType))
	if !ok {
		return c, fmt.Sprintf("its accelerators (%s %s) are not in the SKU table", devs[0].maker, devs[0].name)
	}
	for _, d := range devs {
		if !strings.EqualFold(d.name, row.AWSName) {
			return c, fmt.Sprintf("AWS names its accelerator %q, but the SKU table says family %s has %s: the table needs updating", d.name, row.Family, row.AWSName)
		}
		m, ok := descriptor.LookupAccelerator(row.Model)
		if !ok {
			return c, fmt.Sprintf("the SKU table maps it to %s, which the vocabulary lacks", row.Model)
		}
		acc := descriptor.Accelerator{Model: m.Name, Count: d.count, Frameworks: frameworks[m.Vendor]}
		if row.MemoryGiB != 0 {
			acc.Memory = descriptor.Quantity(int64(row.MemoryGiB) << 30)
		}
		c.Accelerators = append(c.Accelerators, acc)
	}
	return c, ""
}

// offer builds and checks one offer document.
func offer(c *Config, provider, broker identity.PrincipalID, instanceType, az, market, price string, class descriptor.ComputeClass, now time.Time) (*descriptor.Document, error) {
	zone := strings.TrimPrefix(az, c.Region)
	if zone == "" || zone == az {
		zone = az
	}
	// AWS writes prices with ten places ("98.3200000000"); the offer
	// carries the same value in its shortest form.
	r, ok := new(big.Rat).SetString(price)
	if !ok || r.Sign() <= 0 || strings.ContainsAny(price, "eE") {
		return nil, fmt.Errorf("price %q is not a positive decimal", price)
	}
	if strings.Contains(price, ".") {
		price = strings.TrimRight(strings.TrimRight(price, "0"), ".")
	}
	validFor := c.Validity()
	pool := adapters.PoolName(instanceType, market)
	return adapters.OfferSpec{
		Name: "aws-" + c.Region + "-" + zone + "-" + pool, Labels: map[string]string{"aws.instance-type": instanceType, "aws.availability-zone": az},
		Provider: provider, Broker: broker, Region: c.Region, Zone: zone, Pool: pool, Jurisdiction: c.jurisdiction(),
		Class: class, Quantity: c.Quantity,
		Price:     map[string]any{"currency": "USD", "market": market, "minimumIncrement": "1s", "rates": map[string]string{"instanceHour": price}},
		ValidFrom: now, ValidFor: validFor,
	}.Document()
}
