package alibaba

import "github.com/cinet/cinet/adapters/terraform"

// The alibaba adapter (spec/adapters.md §5): the terraform executor, each
// placement's module written by Module from its offer.
func init() { terraform.RegisterCloud("alibaba", Module, NodeWatch) }
