package descriptor

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// OfferAttributes is what a job's requirements and rank expressions see as
// the variable `offer`. The field names after `cel:` are the documented
// attribute names (spec/descriptor-v1.md, "Expressions"). Prices appear as
// numbers for comparison and ranking only; billing never reads them.
type OfferAttributes struct {
	ComputeID    string                `cel:"computeId"`
	Provider     string                `cel:"provider"`
	Broker       string                `cel:"broker"`
	Region       string                `cel:"region"`
	Zone         string                `cel:"zone"`
	Jurisdiction string                `cel:"jurisdiction"`
	Market       string                `cel:"market"`
	Quantity     int64                 `cel:"quantity"`
	CPU          CPUAttributes         `cel:"cpu"`
	MemoryGiB    float64               `cel:"memoryGiB"`
	DiskGiB      float64               `cel:"diskGiB"`
	Accelerator  AcceleratorAttributes `cel:"accelerator"`
	Frameworks   map[string]string     `cel:"frameworks"`
	Price        PriceAttributes       `cel:"price"`
	Labels       map[string]string     `cel:"labels"`

	// withinBounds: every string and map is within attrBounds, so that an
	// expression whose cost is bounded by them may run uncounted.
	withinBounds bool
}

// CPUAttributes describe an instance's processors.
type CPUAttributes struct {
	Arch   string `cel:"arch"`
	Vendor string `cel:"vendor"`
	Count  int64  `cel:"count"`
}

// AcceleratorAttributes describe an instance's first accelerator group;
// every field is empty or zero on a CPU-only offer.
type AcceleratorAttributes struct {
	Model             string           `cel:"model"`
	Kind              string           `cel:"kind"`
	Vendor            string           `cel:"vendor"`
	Count             int64            `cel:"count"`
	MemoryGiB         float64          `cel:"memoryGiB"`
	ComputeCapability float64          `cel:"computeCapability"`
	TFLOPS            TFLOPSAttributes `cel:"tflops"`
}

// TFLOPSAttributes are per-device throughput figures.
type TFLOPSAttributes struct {
	FP64 float64 `cel:"fp64"`
	FP32 float64 `cel:"fp32"`
	FP16 float64 `cel:"fp16"`
	INT8 float64 `cel:"int8"`
}

// PriceAttributes give an instance's base hourly price: instanceHour plus
// the per-resource rates times the class's vCPUs, GiB and accelerators.
type PriceAttributes struct {
	Currency string  `cel:"currency"`
	PerHour  float64 `cel:"perHour"`
}

// Attributes returns the offer as expressions see it.
func (o *Offer) Attributes() *OfferAttributes {
	a := &OfferAttributes{
		ComputeID:    o.ComputeID.String(),
		Provider:     o.Provider.String(),
		Broker:       o.Broker.String(),
		Region:       o.Region,
		Zone:         o.Zone,
		Jurisdiction: o.Jurisdiction,
		Market:       o.Price.Market,
		Quantity:     int64(o.Quantity),
		CPU:          CPUAttributes{Arch: o.Class.CPU.Arch, Vendor: o.Class.CPU.Vendor, Count: int64(o.Class.CPU.Count)},
		MemoryGiB:    o.Class.Memory.GiB(),
		DiskGiB:      o.Class.Disk.GiB(),
		Frameworks:   map[string]string{},
		Price:        PriceAttributes{Currency: o.Price.Currency},
		Labels:       o.Metadata.Labels,
	}
	if a.Labels == nil {
		a.Labels = noLabels
	}
	if len(o.Class.Accelerators) > 0 {
		acc := &o.Class.Accelerators[0]
		a.Accelerator = AcceleratorAttributes{
			Model:             acc.Model,
			Count:             int64(acc.Count),
			MemoryGiB:         acc.Memory.GiB(),
			ComputeCapability: acc.ComputeCapability.Float(),
			TFLOPS:            TFLOPSAttributes{acc.TFLOPS.FP64, acc.TFLOPS.FP32, acc.TFLOPS.FP16, acc.TFLOPS.INT8},
		}
		if m := acc.Info(); m != nil {
			a.Accelerator.Kind, a.Accelerator.Vendor = m.Kind, m.Vendor
		}
		for _, f := range acc.Frameworks {
			a.Frameworks[f.Name] = f.Version.String()
		}
	}
	perHour, _ := o.Price.Rates.InstanceRate(&o.Class).Float64()
	a.Price.PerHour = perHour
	a.withinBounds = a.checkBounds()
	return a
}

// attrBounds are the largest sizes (characters, or entries of a map) the
// offer schema lets each string and map attribute have, rounded up, by
// CEL field path. An expression whose estimated cost over attributes of
// these sizes (cel.Env.EstimateCost) is within the limit cannot exceed
// the limit on such attributes, so it runs without counting its cost,
// three to six times faster; on attributes beyond them (which a parsed
// offer never has) it is counted as always.
var attrBounds = map[string]uint64{
	"offer.computeId":          256,
	"offer.provider":           64,
	"offer.broker":             64,
	"offer.region":             32,
	"offer.zone":               32,
	"offer.jurisdiction":       8,
	"offer.market":             16,
	"offer.cpu.arch":           16,
	"offer.cpu.vendor":         16,
	"offer.accelerator.model":  32,
	"offer.accelerator.kind":   32,
	"offer.accelerator.vendor": 32,
	"offer.frameworks":         8,
	"offer.frameworks.@keys":   16,
	"offer.frameworks.@values": 64,
	"offer.price.currency":     8,
	"offer.labels":             64,
	"offer.labels.@keys":       63,
	"offer.labels.@values":     63,
}

// checkBounds reports whether a's strings and maps are within attrBounds.
// It counts bytes, never fewer than the characters CEL counts.
func (a *OfferAttributes) checkBounds() bool {
	for path, s := range map[string]string{
		"offer.computeId": a.ComputeID, "offer.provider": a.Provider, "offer.broker": a.Broker,
		"offer.region": a.Region, "offer.zone": a.Zone, "offer.jurisdiction": a.Jurisdiction, "offer.market": a.Market,
		"offer.cpu.arch": a.CPU.Arch, "offer.cpu.vendor": a.CPU.Vendor, "offer.accelerator.model": a.Accelerator.Model,
		"offer.accelerator.kind": a.Accelerator.Kind, "offer.accelerator.vendor": a.Accelerator.Vendor,
		"offer.price.currency": a.Price.Currency,
	} {
		if uint64(len(s)) > attrBounds[path] {
			return false
		}
	}
	for path, m := range map[string]map[string]string{"offer.frameworks": a.Frameworks, "offer.labels": a.Labels} {
		if uint64(len(m)) > attrBounds[path] {
			return false
		}
		for k, v := range m {
			if uint64(len(k)) > attrBounds[path+".@keys"] || uint64(len(v)) > attrBounds[path+".@values"] {
				return false
			}
		}
	}
	return true
}

// attrSizes gives CEL's cost estimator the sizes of attrBounds.
type attrSizes struct{}

func (attrSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if max, ok := attrBounds[strings.Join(n.Path(), ".")]; ok {
		return &cost.SizeEstimate{Min: 0, Max: max}
	}
	return nil
}

func (attrSizes) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil
}

// noLabels stands for an offer without labels; expressions only read it.
var noLabels = map[string]string{}

// celCostLimit bounds the work one evaluation may do, so that a tenant's
// expression cannot stall a broker's matching core.
const celCostLimit = 100_000

// An Expr is a compiled CEL expression from a job.
type Expr struct {
	Source string
	prog   programs
}

// programs are an expression's program that counts its cost against the
// limit, and, when the expression's cost over attributes within
// attrBounds cannot exceed the limit, one that does not count it.
type programs struct {
	tracked, fast cel.Program
}

// MarshalText implements encoding.TextMarshaler.
func (e *Expr) MarshalText() ([]byte, error) { return []byte(e.Source), nil }

// UnmarshalText implements encoding.TextUnmarshaler. The expression is
// compiled by Parse, not here.
func (e *Expr) UnmarshalText(b []byte) error {
	e.Source = string(b)
	return nil
}

// EvalBool evaluates a requirements expression against an offer.
func (e *Expr) EvalBool(a *OfferAttributes) (bool, error) {
	v, err := e.eval(a)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression returned %s, want bool", v.Type().TypeName())
	}
	return bool(b), nil
}

// EvalNumber evaluates a rank expression against an offer.
func (e *Expr) EvalNumber(a *OfferAttributes) (float64, error) {
	v, err := e.eval(a)
	if err != nil {
		return 0, err
	}
	switch n := v.(type) {
	case types.Double:
		return float64(n), nil
	case types.Int:
		return float64(n), nil
	case types.Uint:
		return float64(n), nil
	}
	return 0, fmt.Errorf("expression returned %s, want a number", v.Type().TypeName())
}

func (e *Expr) eval(a *OfferAttributes) (ref.Val, error) {
	prog := e.prog.tracked
	if prog == nil {
		panic("descriptor: evaluating an expression that Parse did not compile")
	}
	if e.prog.fast != nil && a.withinBounds {
		prog = e.prog.fast
	}
	v, _, err := prog.Eval(offerActivation{a})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// offerActivation binds the variable offer without allocating a map for
// each evaluation.
type offerActivation struct{ a *OfferAttributes }

func (o offerActivation) ResolveName(name string) (any, bool) {
	if name == "offer" {
		return o.a, true
	}
	return nil, false
}

func (o offerActivation) Parent() interpreter.Activation { return nil }

// exprCompiler compiles and caches expressions. Jobs made from templates
// repeat the same expressions, and building a CEL program costs far more
// than parsing the rest of a job.
type exprCompiler struct {
	env *cel.Env

	mu    sync.Mutex
	cache map[exprKey]programs
}

type exprKey struct {
	rank   bool
	source string
}

const exprCacheSize = 4096

func newExprCompiler() (*exprCompiler, error) {
	env, err := cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[OfferAttributes](), ext.ParseStructTags(true)),
		cel.Variable("offer", cel.ObjectType("descriptor.OfferAttributes")),
		ext.Strings(),
		cel.Function("versionAtLeast",
			cel.Overload("versionAtLeast_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(have, min ref.Val) ref.Val {
					h, err := ParseVersion(string(have.(types.String)))
					if err != nil {
						return types.NewErr("versionAtLeast: %v", err)
					}
					m, err := ParseVersion(string(min.(types.String)))
					if err != nil {
						return types.NewErr("versionAtLeast: %v", err)
					}
					return types.Bool(h.Compare(m) >= 0)
				}))),
	)
	if err != nil {
		return nil, fmt.Errorf("descriptor: couldn't build the CEL environment: %w", err)
	}
	return &exprCompiler{env: env, cache: map[exprKey]programs{}}, nil
}

// compile type-checks source as a requirements (bool) or rank (number)
// expression and returns its program.
func (c *exprCompiler) compile(source string, rank bool) (programs, error) {
	key := exprKey{rank, source}
	c.mu.Lock()
	prog, ok := c.cache[key]
	c.mu.Unlock()
	if ok {
		return prog, nil
	}
	ast, iss := c.env.Compile(source)
	if iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("column %d: %s", e.Location.Column()+1, e.Message))
		}
		return programs{}, fmt.Errorf("invalid CEL: %s", strings.Join(msgs, "; "))
	}
	out := ast.OutputType()
	switch {
	case !rank && !out.IsExactType(cel.BoolType) && !out.IsExactType(cel.DynType):
		return programs{}, fmt.Errorf("must be a bool expression, but its type is %s", out)
	case rank && !out.IsExactType(cel.DoubleType) && !out.IsExactType(cel.IntType) && !out.IsExactType(cel.UintType) && !out.IsExactType(cel.DynType):
		return programs{}, fmt.Errorf("must be a numeric expression, but its type is %s", out)
	}
	tracked, err := c.env.Program(ast, cel.CostLimit(celCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return programs{}, fmt.Errorf("invalid CEL: %v", err)
	}
	prog = programs{tracked: tracked}
	if est, err := c.env.EstimateCost(ast, attrSizes{}); err == nil && est.Max <= celCostLimit {
		if prog.fast, err = c.env.Program(ast, cel.EvalOptions(cel.OptOptimize)); err != nil {
			return programs{}, fmt.Errorf("invalid CEL: %v", err)
		}
	}
	c.mu.Lock()
	if len(c.cache) >= exprCacheSize {
		clear(c.cache)
	}
	c.cache[key] = prog
	c.mu.Unlock()
	return prog, nil
}
