package aws

import (
	"encoding/json"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/adapters/terraform"
)

// The aws adapter (spec/adapters.md §4.4): the terraform executor, each
// placement's module written by Module from its offer.
func init() {
	adapters.Register("aws", func(raw json.RawMessage) (adapters.Adapter, error) {
		var c struct {
			Terraform terraform.Config `json:"terraform"`
			Module    ModuleConfig     `json:"module"`
		}
		if err := adapters.DecodeConfig(raw, &c); err != nil {
			return nil, err
		}
		if err := c.Module.Validate(); err != nil {
			return nil, err
		}
		return terraform.NewCloud("aws", c.Terraform, func(p adapters.Placement) (map[string][]byte, error) {
			data, err := Module(p, c.Module)
			return map[string][]byte{"main.tf.json": data}, err
		})
	})
}
