package match

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
)

// feasible runs the cheap checks in stage order and returns the first
// reason the offer cannot serve the job, or "" and the offer's accelerator
// group assigned to the job's first request (-1 for CPU jobs). It does not
// allocate; details are written only when explaining (describe).
//
// It reads the offer's hot data h (a copy side by side with its
// neighbours in a scan, or the entry's own) and touches the entry only for
// refusals and accelerators.
func feasible(p *plan, e *book.Entry, h *book.Hot) (Reason, int) {
	switch {
	case p.nowNanos < h.ValidFrom:
		return NotYetValid, -1
	case p.nowNanos >= h.ValidUntil:
		return Expired, -1
	case p.exclude != nil && p.exclude[e.Name]:
		return Refused, -1
	case int(h.Free) < p.nodes:
		return InsufficientQuantity, -1
	case !p.regionOK[h.Region]:
		return RegionDenied, -1
	case !p.jurisdictionOK[h.Jurisdiction]:
		return JurisdictionDenied, -1
	case !p.providerOK(h.Provider):
		return ProviderDenied, -1
	case h.Currency != p.currencyID:
		return CurrencyMismatch, -1
	case float64(h.CPUs) < p.cpus:
		return InsufficientCPU, -1
	case h.Memory < p.memory:
		return InsufficientMemory, -1
	case h.Disk < p.disk:
		return InsufficientDisk, -1
	}
	if len(p.accels) == 0 {
		if h.Groups > 0 {
			return AcceleratorsUnrequested, -1
		}
		return "", -1
	}
	if h.Groups == 0 {
		return AcceleratorMissing, -1
	}
	return accelerators(p, e)
}

// accelerators assigns each accelerator request a group of the offer of
// its own (spec/matching.md §2). It returns the group given to the first
// request: the first, in the offer's order, that the first request can
// have in some assignment that serves every request. When a request fits
// no group, the reason is that of the group that passed the most checks
// for the first such request; when every request fits some group but no
// assignment serves them all, it is AcceleratorGroups.
func accelerators(p *plan, e *book.Entry) (Reason, int) {
	groups := e.Accelerators
	if len(p.accels) > len(groups) || len(groups) > 64 {
		// More requests than groups: someone goes without.
		for ri := range p.accels {
			if r := bestReason(p.accels[ri].req, groups); r != "" {
				return r, -1
			}
		}
		return AcceleratorGroups, -1
	}
	var fits [8]uint64 // fits[ri] has bit gi when group gi satisfies request ri
	fit := fits[:0]
	if len(p.accels) > len(fits) {
		fit = make([]uint64, 0, len(p.accels))
	}
	for ri := range p.accels {
		var mask uint64
		for gi := range groups {
			if r, _ := groupReason(p.accels[ri].req, &groups[gi]); r == "" {
				mask |= 1 << gi
			}
		}
		if mask == 0 {
			return bestReason(p.accels[ri].req, groups), -1
		}
		fit = append(fit, mask)
	}
	if len(fit) == 1 {
		return "", bits.TrailingZeros64(fit[0])
	}
	for gi := range groups {
		if fit[0]&(1<<gi) != 0 && assignable(fit[1:], 1<<gi) {
			return "", gi
		}
	}
	return AcceleratorGroups, -1
}

// assignable reports whether requests with the given fits can each have a
// group of its own among those not in used. Offers have few groups and
// jobs few requests, so a depth-first search is quick.
func assignable(fit []uint64, used uint64) bool {
	if len(fit) == 0 {
		return true
	}
	for free := fit[0] &^ used; free != 0; free &= free - 1 {
		g := free & -free
		if assignable(fit[1:], used|g) {
			return true
		}
	}
	return false
}

// bestReason returns why r fits none of the groups: the reason of the
// group that passed the most checks (the first such group on a tie), or
// "" when some group fits.
func bestReason(r *descriptor.AcceleratorRequest, groups []descriptor.Accelerator) Reason {
	best, bestStage := Reason(AcceleratorMissing), -1
	for gi := range groups {
		reason, stage := groupReason(r, &groups[gi])
		if reason == "" {
			return ""
		}
		if stage > bestStage {
			best, bestStage = reason, stage
		}
	}
	return best
}

// groupReason checks one accelerator group against one request and returns
// the first failure with its stage number (higher is further along).
func groupReason(r *descriptor.AcceleratorRequest, g *descriptor.Accelerator) (Reason, int) {
	if len(r.AnyOf) > 0 {
		// One choice that fits is enough; otherwise the reason is that of
		// the choice that got furthest (the first such choice on a tie).
		best, bestStage := Reason(AcceleratorModel), -1
		for i := range r.AnyOf {
			reason, stage := groupReason(&r.AnyOf[i], g)
			if reason == "" {
				return "", stage
			}
			if stage > bestStage {
				best, bestStage = reason, stage
			}
		}
		return best, bestStage
	}
	info := g.Info()
	switch {
	case r.Model != "" && r.Model != g.Model:
		return AcceleratorModel, 0
	case r.Kind != "" && (info == nil || info.Kind != r.Kind):
		return AcceleratorKind, 1
	case r.Vendor != "" && (info == nil || info.Vendor != r.Vendor):
		return AcceleratorVendor, 2
	case g.Count < r.Count:
		return AcceleratorCount, 3
	case int64(g.Memory) < int64(r.Memory):
		return AcceleratorMemory, 4
	}
	// Every requested framework must be there before any version counts:
	// a missing framework is the reason even when another is too old.
	installed := func(name string) int {
		for i, f := range g.Frameworks {
			if f.Name == name {
				return i
			}
		}
		return -1
	}
	for _, want := range r.Frameworks {
		if installed(want.Name) < 0 {
			return FrameworkMissing, 5
		}
	}
	for _, want := range r.Frameworks {
		if !want.Version.Allows(g.Frameworks[installed(want.Name)].Version) {
			return FrameworkVersion, 6
		}
	}
	if !r.ComputeCapability.IsZero() && (g.ComputeCapability.IsZero() || !r.ComputeCapability.Allows(g.ComputeCapability)) {
		return ComputeCapability, 7
	}
	if !g.TFLOPS.AtLeast(r.TFLOPS) {
		return AcceleratorThroughput, 8
	}
	return "", 9
}

// describe explains a rejection in words, for Explain.
func describe(p *plan, e *book.Entry, r Reason, price *pricing, err error) string {
	a := e.Attrs
	switch r {
	case Expired:
		return "valid until " + time.Unix(0, e.ValidUntil).UTC().Format(time.RFC3339)
	case NotYetValid:
		return "valid from " + time.Unix(0, e.ValidFrom).UTC().Format(time.RFC3339)
	case Refused:
		return "the owning broker refused a reservation for this job"
	case InsufficientQuantity:
		return fmt.Sprintf("%d free, job needs %d", e.Free, p.nodes)
	case RegionDenied:
		return "region " + a.Region + " is not allowed"
	case JurisdictionDenied:
		return "jurisdiction " + a.Jurisdiction + " is not allowed"
	case ProviderDenied:
		return "provider " + a.Provider + " is not allowed"
	case CurrencyMismatch:
		return fmt.Sprintf("priced in %s, job pays in %s", a.Price.Currency, p.currency)
	case InsufficientCPU:
		return fmt.Sprintf("%d vCPUs, job needs %g", e.CPUs, p.cpus)
	case InsufficientMemory:
		return fmt.Sprintf("%s memory, job needs %s", descriptor.Quantity(e.Memory), descriptor.Quantity(p.memory))
	case InsufficientDisk:
		if e.Disk == 0 {
			return fmt.Sprintf("the offer states no disk, job needs %s", descriptor.Quantity(p.disk))
		}
		return fmt.Sprintf("%s disk, job needs %s", descriptor.Quantity(e.Disk), descriptor.Quantity(p.disk))
	case AcceleratorsUnrequested:
		return "accelerator instances are kept for jobs that ask for accelerators"
	case AcceleratorMissing:
		return "no accelerators"
	case AcceleratorGroups:
		return describeAccelerators(e.Accelerators) + "; every request fits some group, but no assignment gives each its own"
	case AcceleratorModel, AcceleratorKind, AcceleratorVendor, AcceleratorCount, AcceleratorMemory,
		FrameworkMissing, FrameworkVersion, ComputeCapability, AcceleratorThroughput:
		return describeAccelerators(e.Accelerators)
	case OverBudget:
		if price == nil {
			return "over budget"
		}
		switch {
		case price.peakHourly == descriptor.MaxNanos:
			return fmt.Sprintf("its price for %d instance(s) is beyond the largest amount, %s %s/hour", p.nodes, largestAmount, p.currency)
		case price.peakHourly > p.maxHourly:
			return fmt.Sprintf("up to %s %s/hour, budget %s", price.peakHourly.Decimal(), p.currency, p.maxHourly.Decimal())
		case price.total == descriptor.MaxNanos:
			return fmt.Sprintf("the run would cost more than the largest amount, %s %s", largestAmount, p.currency)
		}
		return fmt.Sprintf("about %s %s in all, budget %s", price.total.Decimal(), p.currency, p.maxTotal.Decimal())
	case OutsideRankPool:
		return fmt.Sprintf("the job's rank is evaluated on the %d cheapest offers that pass every other check; this one is not among them", p.rankPool)
	case RequirementsFalse:
		return "requirements: " + p.job.Requirements.Source + " is false"
	case RequirementsError, RankError:
		if err != nil {
			return err.Error()
		}
	}
	return ""
}

func describeAccelerators(groups []descriptor.Accelerator) string {
	s := ""
	for i, g := range groups {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d×%s %s", g.Count, g.Model, g.Memory)
		for _, f := range g.Frameworks {
			s += fmt.Sprintf(" %s %s", f.Name, f.Version)
		}
	}
	return "offer has " + s
}

// largestAmount is descriptor.MaxNanos in words (spec/rating.md §1).
const largestAmount = "9223372036.854775807"
