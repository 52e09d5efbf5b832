package match

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
)

// A plan is a job prepared for one decision: limits converted to the
// units offers carry, accelerator requests resolved against the
// vocabulary, and the seed of its tie-breaks.
type plan struct {
	job      *descriptor.Job
	digest   string
	nodes    int
	cpus     float64
	memory   int64
	disk     int64
	accels   []accelPlan
	currency string

	maxHourly, maxTotal descriptor.Nanos // NoLimit when the budget does not set them

	start     time.Time
	nowNanos  int64
	runtime   time.Duration
	seed      uint64
	exclude   map[string]bool
	precise   precision                 // throughput precision for runtime scaling
	refTF     float64                   // reference device throughput the estimated runtime is for
	scaled    map[float64]time.Duration // runtimes on devices of a throughput, worked out once
	fastestOf map[string]time.Duration  // by model: the shortest run an offer of it could give (fastest)
	balanced  bool
	weights   descriptor.Weights
	rankPool  int // how many offers a rank is evaluated on

	// Bound to the book's interned IDs for one decision (bind).
	view                     book.View
	fit                      []uint8         // by group description: whether it serves the first request (fitYes, fitNo)
	runtimes                 []time.Duration // by group description: the runtime on it, 0 until worked out
	currencyID               int32
	regionOK, jurisdictionOK []bool
	providerAllow            []int32 // nil: every provider
	providerDeny             []int32
	latency                  []float64 // by region ID
}

// bind translates the job's placement rules and the latency table into
// tables indexed by the book's IDs, so that feasibility compares integers.
func (p *plan) bind(v book.View, cfg *Config) {
	p.view = v
	p.fit, p.runtimes = nil, nil
	if n := v.Groups(); len(p.accels) == 1 && n <= maxMemo {
		p.fit = make([]uint8, n)
		p.runtimes = make([]time.Duration, n)
	}
	p.currencyID = v.CurrencyID(p.currency)
	regions := v.Regions()
	p.regionOK = make([]bool, len(regions))
	p.latency = make([]float64, len(regions))
	for id, r := range regions {
		p.regionOK[id] = p.job.Placement.Regions.Permits(r)
		p.latency[id] = cfg.Latency.Between(cfg.HomeRegion, r)
	}
	js := v.Jurisdictions()
	p.jurisdictionOK = make([]bool, len(js))
	for id, j := range js {
		p.jurisdictionOK[id] = p.job.Placement.Jurisdictions.PermitsJurisdiction(j)
	}
	p.providerAllow, p.providerDeny = nil, nil
	if pr := p.job.Placement.Providers; len(pr.Allow) > 0 {
		p.providerAllow = make([]int32, 0, len(pr.Allow))
		for _, did := range pr.Allow {
			p.providerAllow = append(p.providerAllow, v.ProviderID(did))
		}
	}
	for _, did := range p.job.Placement.Providers.Deny {
		p.providerDeny = append(p.providerDeny, v.ProviderID(did))
	}
}

func (p *plan) providerOK(id int32) bool {
	if slices.Contains(p.providerDeny, id) {
		return false
	}
	return p.providerAllow == nil || slices.Contains(p.providerAllow, id)
}

// NoLimit marks a budget field the job leaves unset.
const NoLimit = descriptor.MaxNanos

// overHourly reports whether a peak hourly price is over the job's budget.
// A price beyond the largest amount always is, whatever the budget
// (spec/matching.md §4): it saturates, so it cannot be compared.
func (p *plan) overHourly(peak descriptor.Nanos) bool {
	return peak > p.maxHourly || peak == descriptor.MaxNanos
}

type accelPlan struct {
	req    *descriptor.AcceleratorRequest
	models map[string]bool // vocabulary models that may satisfy the request
}

type precision int

const (
	fp16 precision = iota
	fp32
	fp64
	int8
)

func (p precision) of(t descriptor.TFLOPS) float64 {
	return [...]float64{t.FP16, t.FP32, t.FP64, t.INT8}[p]
}

func (p precision) String() string { return [...]string{"fp16", "fp32", "fp64", "int8"}[p] }

func newPlan(doc *descriptor.Document, opts *Options, cfg *Config, now time.Time) *plan {
	j := doc.Job
	p := &plan{
		job:      j,
		digest:   doc.Digest,
		nodes:    j.Instances(),
		cpus:     j.Resources.CPUs,
		memory:   int64(j.Resources.Memory),
		disk:     int64(j.Resources.Disk),
		currency: cfg.Currency,
		maxTotal: NoLimit, maxHourly: NoLimit,
		start:    now,
		nowNanos: now.UnixNano(),
		runtime:  j.EstimatedRuntime.Std(),
		exclude:  opts.Exclude,
		balanced: j.Objective.Type == "balanced" && j.Rank == nil,
	}
	sum := sha256.Sum256([]byte(doc.Digest))
	p.seed = binary.BigEndian.Uint64(sum[:8])
	if b := j.Budget; b != nil {
		p.currency = b.Currency
		if b.MaxPricePerHour.IsSet() {
			p.maxHourly = descriptor.NanosFromDecimal(b.MaxPricePerHour.Apd())
		}
		if b.MaxTotal.IsSet() {
			p.maxTotal = descriptor.NanosFromDecimal(b.MaxTotal.Apd())
		}
	}
	if p.balanced {
		p.weights = descriptor.Weights{Cost: 1, Time: 1, Latency: 1}
		if w := j.Objective.Weights; w != nil {
			p.weights = *w
		}
	}
	for i := range j.Resources.Accelerators {
		r := &j.Resources.Accelerators[i]
		ap := accelPlan{req: r, models: map[string]bool{}}
		for _, m := range staticModels(r) {
			ap.models[m.Name] = true
		}
		p.accels = append(p.accels, ap)
	}
	if len(p.accels) > 0 {
		p.precise, p.refTF = reference(p.accels[0].req)
	}
	return p
}

// staticModels returns the vocabulary models an offer group could be to
// satisfy r, judged on what an offer cannot exceed: name, kind, vendor,
// framework support, compute capability and published peak throughput.
// Memory, which an offer may state above the vocabulary's figure (a larger
// variant of a model), is checked per offer.
func staticModels(r *descriptor.AcceleratorRequest) []*descriptor.AcceleratorModel {
	loose := *r
	loose.Memory = 0
	if len(r.AnyOf) > 0 {
		loose.AnyOf = make([]descriptor.AcceleratorRequest, len(r.AnyOf))
		for i, c := range r.AnyOf {
			c.Memory = 0
			loose.AnyOf[i] = c
		}
	}
	return descriptor.ResolveAccelerators(&loose)
}

// reference picks the precision a request cares about and the device
// throughput its estimated runtime is taken to be measured on: the
// request's own minimum, else the named model's figure, else the slowest
// vocabulary model that meets the request.
func reference(r *descriptor.AcceleratorRequest) (precision, float64) {
	if len(r.AnyOf) > 0 {
		// The precision of the first choice that names a throughput; the
		// slowest reference device among the choices.
		p := fp16
		for i := range r.AnyOf {
			if !r.AnyOf[i].TFLOPS.IsZero() {
				p, _ = reference(&r.AnyOf[i])
				break
			}
		}
		ref := 0.0
		for i := range r.AnyOf {
			if v := referenceIn(&r.AnyOf[i], p); v > 0 && (ref == 0 || v < ref) {
				ref = v
			}
		}
		return p, ref
	}
	p := fp16
	switch {
	case r.TFLOPS.FP16 > 0:
	case r.TFLOPS.FP32 > 0:
		p = fp32
	case r.TFLOPS.FP64 > 0:
		p = fp64
	case r.TFLOPS.INT8 > 0:
		p = int8
	}
	return p, referenceIn(r, p)
}

// referenceIn is a request's reference throughput in precision p: its own
// minimum, else the slowest vocabulary model that meets it.
func referenceIn(r *descriptor.AcceleratorRequest, p precision) float64 {
	if v := p.of(r.TFLOPS); v > 0 {
		return v
	}
	ref := 0.0
	for _, m := range descriptor.ResolveAccelerators(r) {
		if v := p.of(m.TFLOPS); v > 0 && (ref == 0 || v < ref) {
			ref = v
		}
	}
	return ref
}
