package jobs

import (
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// usageRecord builds the usage record of an ended attempt from what the
// job holds, so that building it again gives the same record. It meters
// what the offer has rates for:
//
//   - instance-seconds: the wall time from the first task's start to the
//     last one's end, times the nodes;
//   - vcpu-seconds: the CPU time the tasks used, as measured, at most the
//     class's vCPUs for the wall time on every node;
//   - gib-seconds: the peak resident memory, summed over the nodes, for the
//     wall time, at most the class's memory on every node.
//
// It returns false when there is nothing to bill: no task was seen to run.
func usageRecord(j *Job, a *Attempt, offer *descriptor.Document, self identity.PrincipalID, fee descriptor.Decimal) (*settlement.UsageRecord, bool, error) {
	u := a.Usage
	if u == nil || !u.End.After(u.Start) {
		return nil, false, nil
	}
	o := offer.Offer
	tenant, err := identity.ParsePrincipalID(j.Tenant)
	if err != nil {
		return nil, false, err
	}
	nodes := int64(j.Instances())
	end := u.End
	if !a.BudgetEnd.IsZero() && end.After(a.BudgetEnd) {
		end = a.BudgetEnd // never billed past the budget
	}
	if end.Sub(u.Start) > settlement.MaxRecordPeriod {
		// The attempt was stopped at the longest record: what ran while
		// it stopped is not billed, as past a budget end.
		end = u.Start.Add(settlement.MaxRecordPeriod)
	}
	if !end.After(u.Start) {
		return nil, false, nil
	}
	wall := end.Sub(u.Start)
	var meters []settlement.Meter
	rates := o.Price.Rates
	if rates.InstanceHour.IsSet() {
		meters = append(meters, settlement.Meter{Meter: settlement.InstanceSeconds, Quantity: seconds(wall * time.Duration(nodes))})
	}
	if rates.VCPUHour.IsSet() {
		bound := wall * time.Duration(int64(o.Class.CPU.Count)*nodes)
		meters = append(meters, settlement.Meter{Meter: settlement.VCPUSeconds, Quantity: seconds(min(u.CPU, bound))})
	}
	if rates.GiBHour.IsSet() {
		mem := min(u.PeakMemory, int64(o.Class.Memory)*nodes)
		meters = append(meters, settlement.Meter{Meter: settlement.GiBSeconds, Quantity: gibSeconds(mem, wall)})
	}
	if len(meters) == 0 {
		return nil, false, fmt.Errorf("jobs: offer %s prices none of instance, vCPU or memory time", o.ComputeID)
	}
	// One broker, one fee: a placement this broker both brokered and
	// executed pays its fee once.
	job, home, fees := j.ID, self, settlement.Fees{Home: fee, Executing: descriptor.MustDecimal("0")}
	if j.Home != "" {
		// Forwarded by its home broker: each broker takes its own fee.
		if home, err = identity.ParsePrincipalID(j.Home); err != nil {
			return nil, false, err
		}
		homeFee, err := descriptor.ParseDecimal(j.HomeFee)
		if err != nil {
			return nil, false, fmt.Errorf("jobs: the home broker's fee %q: %w", j.HomeFee, err)
		}
		job, fees = j.HomeJob, settlement.Fees{Home: homeFee, Executing: fee}
	}
	return &settlement.UsageRecord{
		Job: job, Placement: a.ID, Sequence: 1,
		ComputeID: o.ComputeID, Offer: offer.Digest, Instances: nodes,
		Tenant: tenant, Provider: o.Provider, HomeBroker: home, ExecutingBroker: self,
		PeriodStart: u.Start.UTC(), PeriodEnd: end.UTC(),
		Meters: meters,
		Fees:   fees,
	}, true, nil
}

// seconds writes a duration as decimal seconds, exactly.
func seconds(d time.Duration) string {
	return descriptor.Nanos(d).Decimal()
}

// gibSeconds writes bytes × duration in GiB-seconds, exactly to the
// nanosecond (rounded down).
func gibSeconds(bytes int64, d time.Duration) string {
	// In nano-units of a GiB-second: bytes × nanoseconds / 2^30.
	n := new(big.Int).Mul(big.NewInt(bytes), big.NewInt(int64(d)))
	n.Rsh(n, 30)
	if !n.IsInt64() {
		return descriptor.MaxNanos.Decimal()
	}
	return descriptor.Nanos(n.Int64()).Decimal()
}
