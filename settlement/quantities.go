package settlement

import (
	"fmt"

	"github.com/cockroachdb/apd/v3"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/settlement/pricing"
)

// checkQuantities refuses quantities no placement on the offer could have
// used: time-based meters are bounded by the instances × what one
// instance of the class has × the period; tokens and egress by fixed
// ceilings (spec/usage-record.md).
func checkQuantities(r *UsageRecord, o *descriptor.Offer) (Reason, string) {
	seconds := new(apd.Decimal)
	rateContext.Quo(seconds, apd.New(r.PeriodEnd.Sub(r.PeriodStart).Nanoseconds(), 0), apd.New(1_000_000_000, 0))
	instances := apd.New(r.Instances, 0)
	for i, m := range r.Meters {
		var per *apd.Decimal // what one instance can use per second
		switch m.Meter {
		case InstanceSeconds:
			per = apd.New(1, 0)
		case VCPUSeconds:
			per = apd.New(int64(o.Class.CPU.Count), 0)
		case GiBSeconds:
			per = new(apd.Decimal)
			rateContext.Quo(per, apd.New(int64(o.Class.Memory), 0), apd.New(1<<30, 0))
		case AcceleratorSeconds:
			devices := 0
			for _, a := range o.Class.Accelerators {
				if a.Model == m.Model {
					devices += a.Count
				}
			}
			if devices == 0 {
				return ReasonAbsurdQuantity, fmt.Sprintf("meters[%d]: the offer has no %s accelerators", i, m.Model)
			}
			per = apd.New(int64(devices), 0)
		}
		q := m.quantity().Apd()
		if per == nil {
			ceiling := maxTokens
			if m.Meter == EgressBytes {
				ceiling = maxEgress
			}
			if q.Cmp(ceiling.Apd()) > 0 {
				return ReasonAbsurdQuantity, fmt.Sprintf("meters[%d]: %s %s is more than %s in one record", i, m.Quantity, m.Meter, ceiling)
			}
			continue
		}
		bound := new(apd.Decimal)
		rateContext.Mul(bound, per, seconds)
		rateContext.Mul(bound, bound, instances)
		if q.Cmp(bound) > 0 {
			return ReasonAbsurdQuantity, fmt.Sprintf("meters[%d]: %s %s is more than %d instances could use in %s (at most %s)",
				i, m.Quantity, m.Meter, r.Instances, r.PeriodEnd.Sub(r.PeriodStart), pricing.DecimalText(bound))
		}
	}
	return "", ""
}
