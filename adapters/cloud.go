package adapters

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cinet/cinet/descriptor"
)

// CloudOffers says which of a cloud account's capacity to offer: what the
// aws and alibaba discoveries share (spec/adapters.md §4.1, §5).
type CloudOffers struct {
	// Region is the cloud's region ("us-east-1", "cn-hangzhou"). Required.
	Region string `json:"region"`
	// InstanceTypes to offer ("p5.48xlarge"). Required.
	InstanceTypes []string `json:"instanceTypes"`
	// Markets: "on-demand", "spot" or both (the default).
	Markets []string `json:"markets,omitempty"`
	// Zones limits the offers to these zones ("us-east-1a"); default:
	// every zone that sells the type.
	Zones []string `json:"zones,omitempty"`
	// Quantity is how many instances each offer is for (default 1).
	Quantity int `json:"quantity,omitempty"`
	// Jurisdiction is the ISO 3166 country the region is in; default from
	// the region's name where it is plain.
	Jurisdiction string `json:"jurisdiction,omitempty"`
	// ValidFor is how long the offers hold (default 1h: spot prices move).
	ValidFor descriptor.Duration `json:"validFor,omitempty"`
	// Frameworks are what the images run, by accelerator vendor ("nvidia":
	// [{name: cuda, version: "12.4"}]), advertised on each accelerator.
	Frameworks map[string][]descriptor.Framework `json:"frameworks,omitempty"`
	// MaxAttempts bounds each call's tries when the cloud throttles or
	// fails (default 5, backing off exponentially up to MaxBackoff,
	// default 20s).
	MaxAttempts int                 `json:"maxAttempts,omitempty"`
	MaxBackoff  descriptor.Duration `json:"maxBackoff,omitempty"`
}

// Check checks the configuration of cloud, whose regions' countries
// countries gives by the region name's first part ("us" → "US").
func (c *CloudOffers) Check(cloud string, countries map[string]string) error {
	if c.Region == "" {
		return fmt.Errorf("%s: a region is required", cloud)
	}
	if len(c.InstanceTypes) == 0 {
		return fmt.Errorf("%s: instanceTypes is required: the instance types to offer", cloud)
	}
	for _, m := range c.Markets {
		if m != "on-demand" && m != "spot" {
			return fmt.Errorf("%s: market %q: want on-demand or spot", cloud, m)
		}
	}
	if c.Quantity < 0 {
		return fmt.Errorf("%s: quantity %d: want at least 1", cloud, c.Quantity)
	}
	if c.Country(countries) == "" {
		return errors.New(cloud + ": the jurisdiction of region " + c.Region + " is not plain from its name: give jurisdiction (an ISO 3166 country code)")
	}
	return nil
}

// Country is the jurisdiction: as given, else the region's by its name.
func (c *CloudOffers) Country(countries map[string]string) string {
	if c.Jurisdiction != "" {
		return c.Jurisdiction
	}
	prefix, _, _ := strings.Cut(c.Region, "-")
	return countries[prefix]
}

// MarketList is the markets to offer in.
func (c *CloudOffers) MarketList() []string {
	if len(c.Markets) == 0 {
		return []string{"on-demand", "spot"}
	}
	return c.Markets
}

// Validity is how long the offers hold.
func (c *CloudOffers) Validity() time.Duration {
	if d := c.ValidFor.Std(); d > 0 {
		return d
	}
	return time.Hour
}

// Retries is how many tries each call gets and the longest backoff
// between them.
func (c *CloudOffers) Retries() (attempts int, maxBackoff time.Duration) {
	attempts, maxBackoff = c.MaxAttempts, c.MaxBackoff.Std()
	if attempts <= 0 {
		attempts = 5
	}
	if maxBackoff <= 0 {
		maxBackoff = 20 * time.Second
	}
	return attempts, maxBackoff
}
