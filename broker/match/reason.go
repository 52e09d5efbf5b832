package match

// A Reason says why an offer cannot serve a job. The list is fixed and
// documented in spec/matching.md, so every rejection can be explained and
// counted.
type Reason string

// Reasons, in the order the stages test them.
const (
	NotYetValid             Reason = "not_yet_valid"
	Expired                 Reason = "expired"
	Refused                 Reason = "refused"
	InsufficientQuantity    Reason = "insufficient_quantity"
	RegionDenied            Reason = "region_denied"
	JurisdictionDenied      Reason = "jurisdiction_denied"
	ProviderDenied          Reason = "provider_denied"
	CurrencyMismatch        Reason = "currency_mismatch"
	InsufficientCPU         Reason = "insufficient_cpu"
	InsufficientMemory      Reason = "insufficient_memory"
	InsufficientDisk        Reason = "insufficient_disk"
	AcceleratorsUnrequested Reason = "accelerators_unrequested"
	AcceleratorMissing      Reason = "accelerator_missing"
	AcceleratorModel        Reason = "accelerator_model"
	AcceleratorKind         Reason = "accelerator_kind"
	AcceleratorVendor       Reason = "accelerator_vendor"
	AcceleratorCount        Reason = "accelerator_count"
	AcceleratorMemory       Reason = "accelerator_memory"
	AcceleratorThroughput   Reason = "accelerator_throughput"
	ComputeCapability       Reason = "compute_capability"
	FrameworkMissing        Reason = "framework_missing"
	FrameworkVersion        Reason = "framework_version"
	AcceleratorGroups       Reason = "accelerator_groups"
	OverBudget              Reason = "over_budget"
	RequirementsFalse       Reason = "requirements_false"
	RequirementsError       Reason = "requirements_error"
	OutsideRankPool         Reason = "outside_rank_pool"
	RankError               Reason = "rank_error"
)

// Reasons lists every reason in stage order.
var Reasons = []Reason{
	NotYetValid, Expired, Refused, InsufficientQuantity, RegionDenied, JurisdictionDenied,
	ProviderDenied, CurrencyMismatch, InsufficientCPU, InsufficientMemory, InsufficientDisk,
	AcceleratorsUnrequested, AcceleratorMissing, AcceleratorModel, AcceleratorKind,
	AcceleratorVendor, AcceleratorCount, AcceleratorMemory, AcceleratorThroughput,
	ComputeCapability, FrameworkMissing, FrameworkVersion, AcceleratorGroups, OverBudget, RequirementsFalse,
	RequirementsError, OutsideRankPool, RankError,
}
