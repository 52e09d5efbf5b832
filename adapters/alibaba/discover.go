// Package alibaba turns an Alibaba Cloud account's ECS capacity into
// cinet offers (spec/adapters.md §5): instance types with their vCPUs,
// memory and GPUs from DescribeInstanceTypes, mapped to the compute-class
// vocabulary by the SKU table; the zones selling each from
// DescribeAvailableResource; pay-as-you-go prices from DescribePrice;
// spot prices per zone from DescribeSpotPriceHistory.
package alibaba

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	aliyunerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/responses"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// Config says which of an account's capacity to offer.
type Config struct {
	adapters.CloudOffers
	// Endpoint replaces the ECS endpoint (host[:port]); Scheme is "https"
	// (the default) or "http" (a test's server).
	Endpoint string `json:"endpoint,omitempty"`
	Scheme   string `json:"scheme,omitempty"`
}

// ParseConfig decodes a configuration strictly and checks it.
func ParseConfig(raw json.RawMessage) (*Config, error) {
	var c Config
	if err := adapters.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	return &c, c.Validate()
}

// regionCountries: cn-… regions are in China; the others' country is
// given.
var regionCountries = map[string]string{"cn": "CN"}

// Validate checks the configuration without calling Alibaba Cloud.
func (c *Config) Validate() error {
	if c.Scheme != "" && c.Scheme != "http" && c.Scheme != "https" {
		return fmt.Errorf("alibaba: scheme %q: want https or http", c.Scheme)
	}
	return c.Check("alibaba", regionCountries)
}

func (c *Config) jurisdiction() string { return c.Country(regionCountries) }

// Client calls ECS with a configuration's endpoint, retries and backoff.
type Client struct {
	ecs *ecs.Client
	cfg *Config
}

// NewClient makes a client with an AccessKey pair (from
// ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, say).
func NewClient(c *Config, accessKeyID, accessKeySecret string) (*Client, error) {
	if accessKeyID == "" || accessKeySecret == "" {
		return nil, errors.New("alibaba: no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (a RAM user's AccessKey that may call ecs:DescribeInstanceTypes, DescribeAvailableResource, DescribePrice and DescribeSpotPriceHistory)")
	}
	cl, err := ecs.NewClientWithAccessKey(c.Region, accessKeyID, accessKeySecret)
	if err != nil {
		return nil, fmt.Errorf("alibaba: %w", err)
	}
	return &Client{ecs: cl, cfg: c}, nil
}

// call makes one request, retrying throttling and unavailability with
// exponential backoff, and returns the response's JSON.
func (cl *Client) call(action string, req requests.AcsRequest, resp responses.AcsResponse) ([]byte, error) {
	if cl.cfg.Endpoint != "" {
		req.SetDomain(cl.cfg.Endpoint)
	}
	if cl.cfg.Scheme != "" {
		req.SetScheme(strings.ToUpper(cl.cfg.Scheme))
	}
	attempts, maxBackoff := cl.cfg.Retries()
	backoff := min(200*time.Millisecond, maxBackoff)
	for attempt := 1; ; attempt++ {
		err := cl.ecs.DoAction(req, resp)
		if err == nil {
			return resp.GetHttpContentBytes(), nil
		}
		var se *aliyunerrors.ServerError
		if errors.As(err, &se) {
			code := se.ErrorCode()
			switch {
			case strings.HasPrefix(code, "Throttling") || code == "ServiceUnavailable" || se.HttpStatus() == 503:
				if attempt >= attempts {
					return nil, fmt.Errorf("alibaba: %s: Alibaba Cloud kept refusing (%s) through %d attempts with backoff", action, code, attempt)
				}
				time.Sleep(backoff/2 + rand.N(backoff/2+1))
				backoff = min(2*backoff, maxBackoff)
				continue
			case strings.HasPrefix(code, "InvalidAccessKeyId") || code == "SignatureDoesNotMatch" || strings.HasPrefix(code, "Forbidden") || code == "InvalidSecurityToken.Expired":
				return nil, fmt.Errorf("alibaba: %s: %s: %s; check the credentials (ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET) and that they may call ecs:%s", action, code, se.Message(), action)
			case strings.HasPrefix(code, "InvalidInstanceType"):
				return nil, fmt.Errorf("alibaba: %s: %s: %s; check instanceTypes", action, code, se.Message())
			}
			return nil, fmt.Errorf("alibaba: %s: %s: %s", action, code, se.Message())
		}
		return nil, fmt.Errorf("alibaba: %s: %w", action, err)
	}
}

// Discovered is what discovery found: the offers, and why some instance
// types or zones are not among them.
type Discovered struct {
	Offers  []*descriptor.Document
	Skipped []string
}

// instanceType is what DescribeInstanceTypes says of one type.
type instanceType struct {
	InstanceTypeID     string  `json:"InstanceTypeId"`
	InstanceTypeFamily string  `json:"InstanceTypeFamily"`
	CPUCoreCount       int     `json:"CpuCoreCount"`
	MemorySize         float64 `json:"MemorySize"` // GiB
	CPUArchitecture    string  `json:"CpuArchitecture"`
	GPUAmount          int     `json:"GPUAmount"`
	GPUSpec            string  `json:"GPUSpec"`
	GPUMemorySize      float64 `json:"GPUMemorySize"` // GiB
}

// Discover asks ECS for the configured instance types, where they are
// sold and at what prices, and returns them as offers of provider's,
// owned by broker, valid from now.
func Discover(cl *Client, c *Config, provider, broker identity.PrincipalID, now time.Time) (*Discovered, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	types, err := cl.describeTypes(c.InstanceTypes)
	if err != nil {
		return nil, err
	}
	d := &Discovered{}
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
		for _, market := range c.MarketList() {
			zones, err := cl.zones(it, market)
			if err != nil {
				return nil, err
			}
			if len(zones) == 0 {
				d.Skipped = append(d.Skipped, fmt.Sprintf("%s: no zone of %s sells it %s", it, c.Region, market))
			}
			var spot map[string]string
			var currency string
			if market == "spot" {
				if spot, currency, err = cl.spotPrices(it, zones, now); err != nil {
					return nil, err
				}
			}
			for _, zone := range zones {
				if len(c.Zones) > 0 && !slices.Contains(c.Zones, zone) {
					continue
				}
				price := spot[zone]
				if market == "on-demand" {
					if price, currency, err = cl.price(it, zone); err != nil {
						return nil, err
					}
				}
				if price == "" {
					d.Skipped = append(d.Skipped, fmt.Sprintf("%s in %s: no %s price", it, zone, market))
					continue
				}
				doc, err := offer(c, provider, broker, it, zone, market, price, currency, class, now)
				if err != nil {
					return nil, fmt.Errorf("alibaba: the offer for %s in %s: %w", it, zone, err)
				}
				d.Offers = append(d.Offers, doc)
			}
		}
	}
	return d, nil
}

// decode reads a response's JSON with numbers kept as written, so that
// prices stay exact decimals.
func decode(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	return dec.Decode(v)
}

func (cl *Client) describeTypes(names []string) (map[string]instanceType, error) {
	out := map[string]instanceType{}
	next := ""
	for {
		req := ecs.CreateDescribeInstanceTypesRequest()
		req.InstanceTypes = &names
		req.MaxResults = requests.NewInteger(100)
		req.NextToken = next
		body, err := cl.call("DescribeInstanceTypes", req, ecs.CreateDescribeInstanceTypesResponse())
		if err != nil {
			return nil, err
		}
		var r struct {
			NextToken     string
			InstanceTypes struct{ InstanceType []instanceType }
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("alibaba: DescribeInstanceTypes: the response is not the documented JSON: %w", err)
		}
		for _, t := range r.InstanceTypes.InstanceType {
			out[t.InstanceTypeID] = t
		}
		if next = r.NextToken; next == "" {
			return out, nil
		}
	}
}

// zones lists the zones that sell the type in the market, with stock.
func (cl *Client) zones(instanceType, market string) ([]string, error) {
	req := ecs.CreateDescribeAvailableResourceRequest()
	req.DestinationResource = "InstanceType"
	req.InstanceType = instanceType
	req.InstanceChargeType = "PostPaid"
	if market == "spot" {
		req.SpotStrategy = "SpotAsPriceGo"
	}
	body, err := cl.call("DescribeAvailableResource", req, ecs.CreateDescribeAvailableResourceResponse())
	if err != nil {
		return nil, err
	}
	var r struct {
		AvailableZones struct {
			AvailableZone []struct {
				ZoneID             string `json:"ZoneId"`
				Status             string
				AvailableResources struct {
					AvailableResource []struct {
						SupportedResources struct {
							SupportedResource []struct{ Value, Status string }
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("alibaba: DescribeAvailableResource: the response is not the documented JSON: %w", err)
	}
	var zones []string
	for _, z := range r.AvailableZones.AvailableZone {
		if z.Status != "Available" {
			continue
		}
	resources:
		for _, ar := range z.AvailableResources.AvailableResource {
			for _, sr := range ar.SupportedResources.SupportedResource {
				if sr.Value == instanceType && sr.Status == "Available" {
					zones = append(zones, z.ZoneID)
					break resources
				}
			}
		}
	}
	sort.Strings(zones)
	return zones, nil
}

// price is the pay-as-you-go hourly price in a zone, as written.
func (cl *Client) price(instanceType, zone string) (string, string, error) {
	req := ecs.CreateDescribePriceRequest()
	req.ResourceType = "instance"
	req.InstanceType = instanceType
	req.ZoneId = zone
	req.PriceUnit = "Hour"
	req.Period = requests.NewInteger(1)
	body, err := cl.call("DescribePrice", req, ecs.CreateDescribePriceResponse())
	if err != nil {
		return "", "", err
	}
	var r struct {
		PriceInfo struct {
			Price struct {
				TradePrice json.Number
				Currency   string
			}
		}
	}
	if err := decode(body, &r); err != nil {
		return "", "", fmt.Errorf("alibaba: DescribePrice: the response is not the documented JSON: %w", err)
	}
	return r.PriceInfo.Price.TradePrice.String(), r.PriceInfo.Price.Currency, nil
}

// spotPrices is the latest spot price in each zone over the last day.
func (cl *Client) spotPrices(instanceType string, zones []string, now time.Time) (map[string]string, string, error) {
	out := map[string]string{}
	currency := ""
	for _, zone := range zones {
		req := ecs.CreateDescribeSpotPriceHistoryRequest()
		req.InstanceType = instanceType
		req.ZoneId = zone
		req.NetworkType = "vpc"
		req.StartTime = now.Add(-24 * time.Hour).UTC().Format("2006-01-02T15:04:05Z")
		body, err := cl.call("DescribeSpotPriceHistory", req, ecs.CreateDescribeSpotPriceHistoryResponse())
		if err != nil {
			return nil, "", err
		}
		var r struct {
			Currency   string
			SpotPrices struct {
				SpotPriceType []struct {
					ZoneID    string `json:"ZoneId"`
					Timestamp string
					SpotPrice json.Number
				}
			}
		}
		if err := decode(body, &r); err != nil {
			return nil, "", fmt.Errorf("alibaba: DescribeSpotPriceHistory: the response is not the documented JSON: %w", err)
		}
		var latest time.Time
		for _, p := range r.SpotPrices.SpotPriceType {
			at, err := time.Parse(time.RFC3339, p.Timestamp)
			if err != nil || p.ZoneID != zone {
				continue
			}
			if out[zone] == "" || at.After(latest) {
				out[zone], latest = p.SpotPrice.String(), at
			}
		}
		currency = r.Currency
	}
	return out, currency, nil
}

// classOf is the instance type's compute class, or why it has none.
func classOf(t instanceType, frameworks map[string][]descriptor.Framework) (descriptor.ComputeClass, string) {
	var c descriptor.ComputeClass
	if t.CPUCoreCount <= 0 || t.MemorySize <= 0 {
		return c, "DescribeInstanceTypes left out its vCPUs or memory"
	}
	c.CPU.Count = t.CPUCoreCount
	c.Memory = descriptor.Quantity(int64(t.MemorySize * (1 << 30)))
	switch strings.ToUpper(t.CPUArchitecture) {
	case "X86", "":
		c.CPU.Arch = "x86_64"
	case "ARM":
		c.CPU.Arch = "arm64"
	default:
		return c, fmt.Sprintf("architecture %s is not in the vocabulary", t.CPUArchitecture)
	}
	if t.GPUAmount == 0 {
		return c, ""
	}
	row, ok := family(t.InstanceTypeFamily)
	if !ok {
		return c, fmt.Sprintf("its GPUs (%s) are not in the SKU table", t.GPUSpec)
	}
	if !strings.Contains(strings.ToUpper(t.GPUSpec), strings.ToUpper(row.SpecName)) {
		return c, fmt.Sprintf("ECS calls its GPU %q, but the SKU table says family %s has %s: the table needs updating", t.GPUSpec, row.Family, row.SpecName)
	}
	m, ok := descriptor.LookupAccelerator(row.Model)
	if !ok {
		return c, fmt.Sprintf("the SKU table maps it to %s, which the vocabulary lacks", row.Model)
	}
	acc := descriptor.Accelerator{Model: m.Name, Count: t.GPUAmount, Frameworks: frameworks[m.Vendor]}
	if row.MemoryGiB != 0 {
		acc.Memory = descriptor.Quantity(int64(row.MemoryGiB) << 30)
	}
	c.Accelerators = []descriptor.Accelerator{acc}
	return c, ""
}

// offer builds and checks one offer document.
func offer(c *Config, provider, broker identity.PrincipalID, instanceType, zoneID, market, price, currency string, class descriptor.ComputeClass, now time.Time) (*descriptor.Document, error) {
	if currency == "" {
		return nil, errors.New("the price has no currency")
	}
	zone := strings.TrimPrefix(zoneID, c.Region+"-")
	pool := adapters.PoolName(strings.TrimPrefix(instanceType, "ecs."), market)
	validFor := c.Validity()
	return adapters.OfferSpec{
		Name: "alibaba-" + c.Region + "-" + zone + "-" + pool, Labels: map[string]string{"alibaba.instance-type": instanceType, "alibaba.zone": zoneID},
		Provider: provider, Broker: broker, Region: c.Region, Zone: zone, Pool: pool, Jurisdiction: c.jurisdiction(),
		Class: class, Quantity: c.Quantity,
		Price:     map[string]any{"currency": currency, "market": market, "minimumIncrement": "1s", "rates": map[string]string{"instanceHour": price}},
		ValidFrom: now, ValidFor: validFor,
	}.Document()
}
