package aws

import "github.com/cinet/cinet/adapters/terraform"

// The aws adapter (spec/adapters.md §4.4): the terraform executor, each
// placement's module written by Module from its offer.
func init() { terraform.RegisterCloud("aws", Module, NodeWatch) }
