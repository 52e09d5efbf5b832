package match

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
)

// pricing is an offer's estimate for a job: the run's length on the
// offer's hardware, its total cost and its highest hourly price, for all
// nodes together.
type pricing struct {
	runtime    time.Duration
	total      descriptor.Nanos
	peakHourly descriptor.Nanos
}

// price estimates the job on an offer. The estimated runtime is scaled by
// the ratio of the reference throughput to the offer's device throughput,
// and the price timeline is walked from when the job would start.
func price(p *plan, e *book.Entry, group int, queue time.Duration) pricing {
	runtime := scaledRuntime(p, e, group)
	var total, peak descriptor.Nanos
	if queue == 0 {
		total, peak = e.Prices.CostFrom(p.startIn(&e.Prices), runtime)
	} else {
		total, peak = e.Prices.Cost(p.start.Add(queue), runtime)
	}
	return pricing{
		runtime:    runtime,
		total:      total.Mul(int64(p.nodes)),
		peakHourly: peak.Mul(int64(p.nodes)),
	}
}

// scaledRuntime is the job's estimated runtime on the offer's hardware,
// rounded up to the second.
func scaledRuntime(p *plan, e *book.Entry, group int) time.Duration {
	if group >= 0 && p.refTF > 0 {
		if tf := p.precise.of(e.Offer.Class.Accelerators[group].TFLOPS); tf > 0 {
			return time.Duration(math.Ceil(float64(p.runtime)*p.refTF/tf/float64(time.Second)) * float64(time.Second))
		}
	}
	return p.runtime
}

func (pr *pricing) overBudget(p *plan) bool {
	return pr.peakHourly > p.maxHourly || pr.total > p.maxTotal
}

// Parts are the measures an offer was scored on.
type Parts struct {
	Cost       descriptor.Nanos // estimated total, all nodes
	PeakHourly descriptor.Nanos // highest hourly price during the run, all nodes
	Currency   string           // of Cost and PeakHourly
	Runtime    time.Duration    // estimated run on this offer's hardware
	Time       time.Duration    // queue estimate plus runtime
	LatencyMs  float64          // from the broker's region to the offer's
	RankValue  float64          // the job's CEL rank, when it has one (higher is better)
	Normalized [3]float64       // cost, time, latency scaled to [0,1] for the balanced objective
}

// MarshalJSON writes the parts with money as decimal strings and times in
// seconds, the form spec/matching.md documents.
func (p Parts) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Cost           descriptor.Nanos `json:"cost"`
		PeakHourly     descriptor.Nanos `json:"peakHourly"`
		Currency       string           `json:"currency"`
		RuntimeSeconds float64          `json:"runtimeSeconds"`
		TimeSeconds    float64          `json:"timeSeconds"`
		LatencyMs      float64          `json:"latencyMs"`
		RankValue      float64          `json:"rankValue,omitempty"`
		Normalized     *[3]float64      `json:"normalized,omitempty"`
	}{p.Cost, p.PeakHourly, p.Currency, p.Runtime.Seconds(), p.Time.Seconds(), p.LatencyMs, p.RankValue, normalizedOrNil(p.Normalized)})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (p *Parts) UnmarshalJSON(b []byte) error {
	var w struct {
		Cost           descriptor.Nanos `json:"cost"`
		PeakHourly     descriptor.Nanos `json:"peakHourly"`
		Currency       string           `json:"currency"`
		RuntimeSeconds float64          `json:"runtimeSeconds"`
		TimeSeconds    float64          `json:"timeSeconds"`
		LatencyMs      float64          `json:"latencyMs"`
		RankValue      float64          `json:"rankValue"`
		Normalized     *[3]float64      `json:"normalized"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Parts{Cost: w.Cost, PeakHourly: w.PeakHourly, Currency: w.Currency,
		Runtime: time.Duration(w.RuntimeSeconds * float64(time.Second)), Time: time.Duration(w.TimeSeconds * float64(time.Second)),
		LatencyMs: w.LatencyMs, RankValue: w.RankValue}
	if w.Normalized != nil {
		p.Normalized = *w.Normalized
	}
	return nil
}

func normalizedOrNil(n [3]float64) *[3]float64 {
	if n == [3]float64{} {
		return nil
	}
	return &n
}

// score returns the candidate's score under the job's objective; lower is
// better. Balanced scores are set later, once the ranges are known.
func score(p *plan, parts *Parts) float64 {
	if p.job.Rank != nil {
		return -parts.RankValue
	}
	switch p.job.Objective.Type {
	case "time":
		return parts.Time.Seconds()
	case "latency":
		return parts.LatencyMs
	case "balanced":
		return 0
	}
	return float64(parts.Cost)
}

// ranges are the lowest and highest cost, time and latency among the
// feasible offers, which the balanced objective scales to [0,1].
type ranges struct{ lo, hi [3]float64 }

func newRanges() ranges {
	var r ranges
	for k := range r.lo {
		r.lo[k], r.hi[k] = math.Inf(1), math.Inf(-1)
	}
	return r
}

func measures(pr *pricing, queue time.Duration, latency float64) [3]float64 {
	return [3]float64{float64(pr.total), (queue + pr.runtime).Seconds(), latency}
}

func (r *ranges) add(m [3]float64) {
	for k := range m {
		r.lo[k], r.hi[k] = min(r.lo[k], m[k]), max(r.hi[k], m[k])
	}
}

// balanced returns the weighted sum of the scaled measures (0 the best),
// divided by the sum of the weights, and the scaled measures.
func (r *ranges) balanced(p *plan, m [3]float64) (float64, [3]float64) {
	w := [3]float64{p.weights.Cost, p.weights.Time, p.weights.Latency}
	var n [3]float64
	s := 0.0
	for k := range m {
		if r.hi[k] > r.lo[k] {
			n[k] = (m[k] - r.lo[k]) / (r.hi[k] - r.lo[k])
		}
		s += w[k] * n[k]
	}
	return s / (w[0] + w[1] + w[2]), n
}

// normalize sets the balanced score of every candidate, with the ranges
// taken over scaled: the offers that pass every check but requirements.
func normalize(p *plan, cands, scaled []Candidate) {
	r := newRanges()
	m := func(c *Candidate) [3]float64 {
		return [3]float64{float64(c.Parts.Cost), c.Parts.Time.Seconds(), c.Parts.LatencyMs}
	}
	for i := range scaled {
		r.add(m(&scaled[i]))
	}
	for i := range cands {
		cands[i].Score, cands[i].Parts.Normalized = r.balanced(p, m(&cands[i]))
	}
}

// A LatencyTable gives the network latency between regions in
// milliseconds. Pairs are symmetric; a region to itself costs SameRegion
// and an unknown pair Default.
type LatencyTable struct {
	Default    float64                       `yaml:"default"`
	SameRegion float64                       `yaml:"sameRegion"`
	Pairs      map[string]map[string]float64 `yaml:"pairs"`
}

// Latency defaults when a table does not say.
const (
	DefaultLatencyMs    = 150
	SameRegionLatencyMs = 1
)

// Between returns the latency from region a to region b.
func (t *LatencyTable) Between(a, b string) float64 {
	if t == nil {
		if a == b {
			return SameRegionLatencyMs
		}
		return DefaultLatencyMs
	}
	if a == b {
		if t.SameRegion > 0 {
			return t.SameRegion
		}
		return SameRegionLatencyMs
	}
	if v, ok := t.Pairs[a][b]; ok {
		return v
	}
	if v, ok := t.Pairs[b][a]; ok {
		return v
	}
	if t.Default > 0 {
		return t.Default
	}
	return DefaultLatencyMs
}

// LoadLatencyTable reads a latency table from YAML:
//
//	default: 150
//	sameRegion: 1
//	pairs:
//	  cn-east-1: {cn-north-1: 28, us-west-2: 170}
func LoadLatencyTable(path string) (*LatencyTable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("match: couldn't read latency table: %w", err)
	}
	return ParseLatencyTable(path, data)
}

// ParseLatencyTable reads a latency table (see LoadLatencyTable) from
// data; name is used in errors.
func ParseLatencyTable(path string, data []byte) (*LatencyTable, error) {
	var t LatencyTable
	if err := yaml.UnmarshalWithOptions(data, &t, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("match: latency table %s: %w", path, err)
	}
	bad := func(ms float64) bool { return ms < 0 || math.IsNaN(ms) || math.IsInf(ms, 0) }
	for what, ms := range map[string]float64{"default": t.Default, "sameRegion": t.SameRegion} {
		if bad(ms) {
			return nil, fmt.Errorf("match: latency table %s: %s: %v ms is not a latency", path, what, ms)
		}
	}
	for a, row := range t.Pairs {
		for b, ms := range row {
			if bad(ms) {
				return nil, fmt.Errorf("match: latency table %s: %s to %s: %v ms is not a latency", path, a, b, ms)
			}
		}
	}
	return &t, nil
}
