package descriptor

import (
	"sync"
	"time"

	"github.com/cinet/cinet/identity"
)

// Defaults applied to an Offer's price schedule when omitted.
const (
	DefaultMarket   = "on-demand"
	DefaultTimezone = "UTC"
)

// An Offer advertises Quantity free instances of one compute class in one
// pool. A job node takes one whole instance; per-resource rates are charged
// on the instance's class (spec/descriptor-v1.md).
type Offer struct {
	APIVersion   string               `json:"apiVersion"`
	Kind         string               `json:"kind"`
	Metadata     Metadata             `json:"metadata"`
	ComputeID    identity.ComputeID   `json:"computeId"`
	Provider     identity.PrincipalID `json:"provider"`
	Broker       identity.PrincipalID `json:"broker"`
	Region       string               `json:"region"`
	Zone         string               `json:"zone"`
	Jurisdiction string               `json:"jurisdiction"`
	Class        ComputeClass         `json:"class"`
	Quantity     int                  `json:"quantity"`
	Price        PriceSchedule        `json:"price"`
	ValidFrom    time.Time            `json:"validFrom,omitzero"`
	ValidUntil   time.Time            `json:"validUntil"`
	Sequence     uint64               `json:"sequence"`
}

// A ComputeClass is the normalized description of one instance.
type ComputeClass struct {
	CPU          CPU           `json:"cpu"`
	Memory       Quantity      `json:"memory"`
	Disk         Quantity      `json:"disk,omitempty"`
	Accelerators []Accelerator `json:"accelerators,omitempty"`
}

// CPU describes an instance's processors.
type CPU struct {
	Arch   string `json:"arch"`
	Vendor string `json:"vendor,omitempty"`
	Count  int    `json:"count"`
}

// An Accelerator is a group of identical devices in an instance. Parse
// fills Memory, ComputeCapability and TFLOPS from the vocabulary where the
// offer leaves them out.
type Accelerator struct {
	Model             string      `json:"model"`
	Count             int         `json:"count"`
	Memory            Quantity    `json:"memory,omitempty"`
	Frameworks        []Framework `json:"frameworks,omitempty"`
	ComputeCapability Version     `json:"computeCapability,omitzero"`
	TFLOPS            TFLOPS      `json:"tflops,omitzero"`

	info *AcceleratorModel
}

// Info returns the vocabulary entry of the accelerator's model.
func (a *Accelerator) Info() *AcceleratorModel {
	if a.info != nil {
		return a.info
	}
	m, _ := LookupAccelerator(a.Model)
	return m
}

// Framework is an installed framework version.
type Framework struct {
	Name    string  `json:"name"`
	Version Version `json:"version"`
}

// A PriceSchedule prices an offer's meters.
type PriceSchedule struct {
	Currency         string   `json:"currency"`
	Market           string   `json:"market,omitempty"`
	MinimumIncrement Duration `json:"minimumIncrement,omitempty"`
	Timezone         string   `json:"timezone,omitempty"`
	Rates            Rates    `json:"rates"`
	Tiers            []Tier   `json:"tiers,omitempty"`

	location *time.Location
}

// Location returns the time zone the tiers are written in.
func (p *PriceSchedule) Location() *time.Location {
	if p.location == nil {
		return time.UTC
	}
	return p.location
}

// Rates are unit prices per meter.
type Rates struct {
	InstanceHour           Decimal `json:"instanceHour,omitzero"`
	VCPUHour               Decimal `json:"vcpuHour,omitzero"`
	GiBHour                Decimal `json:"gibHour,omitzero"`
	AcceleratorHour        Decimal `json:"acceleratorHour,omitzero"`
	EgressGiB              Decimal `json:"egressGiB,omitzero"`
	TokensInPerMillion     Decimal `json:"tokensInPerMillion,omitzero"`
	TokensOutPerMillion    Decimal `json:"tokensOutPerMillion,omitzero"`
	TokensCachedPerMillion Decimal `json:"tokensCachedPerMillion,omitzero"`
}

// A Tier replaces the listed rates during a daily window, in the
// schedule's time zone. A window whose end is not after its start wraps
// past midnight; Days limits it to the days it starts on.
type Tier struct {
	Name  string   `json:"name"`
	Days  []string `json:"days,omitempty"`
	Start string   `json:"start"`
	End   string   `json:"end"`
	Rates Rates    `json:"rates"`
}

func (o *Offer) applyDefaults() {
	if o.Price.Market == "" {
		o.Price.Market = DefaultMarket
	}
	if o.Price.Timezone == "" {
		o.Price.Timezone = DefaultTimezone
	}
	for i := range o.Class.Accelerators {
		a := &o.Class.Accelerators[i]
		m := a.Info()
		if m == nil {
			continue
		}
		a.info = m
		if a.Memory == 0 {
			a.Memory = m.Memory
		}
		if a.ComputeCapability.IsZero() {
			a.ComputeCapability = m.ComputeCapability
		}
		// A precision the offer gives no figure for is the model's
		// published one (spec/matching.md §9).
		for _, f := range []struct {
			have  *float64
			model float64
		}{
			{&a.TFLOPS.FP64, m.TFLOPS.FP64}, {&a.TFLOPS.FP32, m.TFLOPS.FP32},
			{&a.TFLOPS.FP16, m.TFLOPS.FP16}, {&a.TFLOPS.INT8, m.TFLOPS.INT8},
		} {
			if *f.have == 0 {
				*f.have = f.model
			}
		}
	}
}

// locations caches loaded time zones; loading one parses zone data.
var locations sync.Map // string -> *time.Location

func loadLocation(name string) (*time.Location, error) {
	if loc, ok := locations.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, loc)
	return loc, nil
}
