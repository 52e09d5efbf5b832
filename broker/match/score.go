package match

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"os"
	"strconv"
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

// price estimates the job on an offer: the estimated runtime scaled to the
// offer's hardware, priced from when the job would start exactly as
// settlement would rate the run (book.Prices).
func price(p *plan, e *book.Entry, group int, queue time.Duration) pricing {
	return priceRun(p, e, scaledRuntime(p, e, group), queue)
}

// priceRun is price for a runtime already scaled.
func priceRun(p *plan, e *book.Entry, runtime, queue time.Duration) pricing {
	total, peak := e.Prices.Estimate(p.start.Add(queue), runtime, int64(p.nodes))
	return pricing{runtime: runtime, total: total, peakHourly: peak}
}

// scaledRuntime is the job's estimated runtime on the offer's hardware:
// estimatedRuntime × T_ref / T, rounded up to the nanosecond, computed
// exactly with the throughput figures read as the decimals they are
// written as (spec/matching.md §3).
func scaledRuntime(p *plan, e *book.Entry, group int) time.Duration {
	if group < 0 || p.refTF <= 0 {
		return p.runtime
	}
	tf := p.precise.of(e.Accelerators[group].TFLOPS)
	if tf <= 0 {
		return p.runtime
	}
	if d, ok := p.scaled[tf]; ok {
		return d
	}
	d := scaleRuntime(p.runtime, p.refTF, tf)
	if p.scaled == nil {
		p.scaled = map[float64]time.Duration{}
	}
	p.scaled[tf] = d
	return d
}

// scaleRuntime returns ceil(runtime × ref / tf) in nanoseconds, with ref
// and tf taken as the shortest decimals that read back as the same
// float64 ("133.2", not 133.19999999999998863131622783839702606201171875).
// A runtime too long for a Duration is the longest Duration.
func scaleRuntime(runtime time.Duration, ref, tf float64) time.Duration {
	if d, ok := scaleRuntime64(runtime, ref, tf); ok {
		return d
	}
	r, t := decimalRat(ref), decimalRat(tf)
	q := new(big.Rat).Mul(new(big.Rat).SetInt64(int64(runtime)), r)
	q.Quo(q, t)
	n, rem := new(big.Int).QuoRem(q.Num(), q.Denom(), new(big.Int))
	if rem.Sign() != 0 {
		n.Add(n, big.NewInt(1))
	}
	if !n.IsInt64() {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(n.Int64())
}

// scaleRuntime64 is scaleRuntime in 64- and 128-bit integers, for the
// usual figures (a few significant digits); ok is false when they do not
// fit, and scaleRuntime works in big.Rat.
func scaleRuntime64(runtime time.Duration, ref, tf float64) (time.Duration, bool) {
	mr, er, ok1 := decimalParts(ref)
	mt, et, ok2 := decimalParts(tf)
	if !ok1 || !ok2 || runtime < 0 || mt == 0 {
		return 0, false
	}
	// runtime × mr × 10^er / (mt × 10^et)
	hi, lo := bits.Mul64(uint64(runtime), mr)
	den := mt
	for k := er - et; k != 0; {
		switch {
		case k > 0:
			h1, l1 := bits.Mul64(lo, 10)
			h2, l2 := bits.Mul64(hi, 10)
			var carry uint64
			if hi, carry = bits.Add64(h1, l2, 0); h2 != 0 || carry != 0 {
				return 0, false
			}
			lo = l1
			k--
		default:
			h, l := bits.Mul64(den, 10)
			if h != 0 {
				return 0, false
			}
			den = l
			k++
		}
	}
	if hi >= den {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, den)
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	return time.Duration(q), true
}

// decimalParts returns the shortest decimal that reads back as v as
// m × 10^e; ok is false for values that are not finite and positive.
func decimalParts(v float64) (m uint64, e int, ok bool) {
	if !(v > 0) || math.IsInf(v, 0) {
		return 0, 0, false
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], v, 'e', -1, 64) // d.ddde±xx
	i := 0
	digits := 0
	for ; i < len(b) && b[i] != 'e'; i++ {
		if b[i] == '.' {
			continue
		}
		m = m*10 + uint64(b[i]-'0') // at most 17 digits: fits
		digits++
	}
	exp, err := strconv.Atoi(string(b[i+1:]))
	if err != nil {
		return 0, 0, false
	}
	return m, exp - (digits - 1), true
}

// decimalRat returns the shortest decimal that reads back as v, exactly.
func decimalRat(v float64) *big.Rat {
	r, _ := new(big.Rat).SetString(strconv.FormatFloat(v, 'g', -1, 64))
	return r
}

func (pr *pricing) overBudget(p *plan) bool {
	return p.overHourly(pr.peakHourly) || pr.total > p.maxTotal || pr.total == descriptor.MaxNanos
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

	balanced, ranked bool // Normalized, RankValue are set: they are written even when 0
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
		RankValue      *float64         `json:"rankValue,omitempty"`
		Normalized     *[3]float64      `json:"normalized,omitempty"`
	}{p.Cost, p.PeakHourly, p.Currency, p.Runtime.Seconds(), p.Time.Seconds(), p.LatencyMs, p.rankValue(), p.normalized()})
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
		RankValue      *float64         `json:"rankValue"`
		Normalized     *[3]float64      `json:"normalized"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Parts{Cost: w.Cost, PeakHourly: w.PeakHourly, Currency: w.Currency,
		Runtime: time.Duration(w.RuntimeSeconds * float64(time.Second)), Time: time.Duration(w.TimeSeconds * float64(time.Second)),
		LatencyMs: w.LatencyMs}
	if w.RankValue != nil {
		p.RankValue, p.ranked = *w.RankValue, true
	}
	if w.Normalized != nil {
		p.Normalized, p.balanced = *w.Normalized, true
	}
	return nil
}

// rankValue is RankValue for jobs with a CEL rank, else nil.
func (p *Parts) rankValue() *float64 {
	if !p.ranked {
		return nil
	}
	return &p.RankValue
}

// normalized is Normalized for balanced jobs, else nil.
func (p *Parts) normalized() *[3]float64 {
	if !p.balanced {
		return nil
	}
	return &p.Normalized
}

// setScore sets the candidate's score under the job's objective from its
// parts; lower is better. Costs and times are compared exactly, as
// integers (nano-units, nanoseconds); Score shows them. Balanced scores
// are set later, once the ranges are known.
func setScore(p *plan, c *Candidate) {
	objective := p.job.Objective.Type
	if p.job.Rank != nil {
		objective = "cost" // the rank pool's order (rankPooled scores by rank)
	}
	switch objective {
	case "time":
		c.exact, c.Score = int64(c.Parts.Time), c.Parts.Time.Seconds()
	case "latency":
		c.Score = c.Parts.LatencyMs
	case "balanced":
	default:
		c.exact, c.Score = int64(c.Parts.Cost), float64(c.Parts.Cost)
	}
}

// A measure is an offer's cost (nano-units), time (nanoseconds) and
// latency (ms), the balanced objective's inputs.
type measure struct {
	cost, time int64
	latency    float64
}

// ranges are the lowest and highest cost, time and latency among the
// offers that pass every check but requirements, which the balanced
// objective scales to [0,1].
type ranges struct {
	lo, hi measure
	empty  bool
}

func newRanges() ranges { return ranges{empty: true} }

func (r *ranges) add(m measure) {
	if r.empty {
		r.lo, r.hi, r.empty = m, m, false
		return
	}
	r.lo = measure{min(r.lo.cost, m.cost), min(r.lo.time, m.time), min(r.lo.latency, m.latency)}
	r.hi = measure{max(r.hi.cost, m.cost), max(r.hi.time, m.time), max(r.hi.latency, m.latency)}
}

// balanced returns the balanced score (0 the best) and the scaled
// measures, in IEEE 754 binary64 arithmetic in the order spec/matching.md
// §5 fixes: each nᵢ is one division of exact differences (costs and
// times as integers), and the score is (w₁n₁ + w₂n₂ + w₃n₃) / (w₁+w₂+w₃)
// summed left to right.
func (r *ranges) balanced(p *plan, m measure) (float64, [3]float64) {
	var n [3]float64
	if r.hi.cost > r.lo.cost {
		n[0] = float64(m.cost-r.lo.cost) / float64(r.hi.cost-r.lo.cost)
	}
	if r.hi.time > r.lo.time {
		n[1] = float64(m.time-r.lo.time) / float64(r.hi.time-r.lo.time)
	}
	if r.hi.latency > r.lo.latency {
		n[2] = (m.latency - r.lo.latency) / (r.hi.latency - r.lo.latency)
	}
	w := p.weights
	// The conversions keep each product rounded on its own: no fused
	// multiply-add, so every broker computes the same score.
	return (float64(w.Cost*n[0]) + float64(w.Time*n[1]) + float64(w.Latency*n[2])) / (w.Cost + w.Time + w.Latency), n
}

// normalize sets the balanced score of every candidate, with the ranges
// taken over scaled: the offers that pass every check but requirements.
func normalize(p *plan, cands, scaled []Candidate) {
	r := newRanges()
	m := func(c *Candidate) measure {
		return measure{int64(c.Parts.Cost), int64(c.Parts.Time), c.Parts.LatencyMs}
	}
	for i := range scaled {
		r.add(m(&scaled[i]))
	}
	for i := range cands {
		cands[i].Score, cands[i].Parts.Normalized = r.balanced(p, m(&cands[i]))
		cands[i].Parts.balanced = true
	}
}

// A LatencyTable gives the network latency between regions in
// milliseconds. Pairs are symmetric; a region to itself costs SameRegion
// and an unknown pair Default. A field left out takes the default
// (SameRegionLatencyMs, DefaultLatencyMs); a field given as 0 is 0.
type LatencyTable struct {
	Default    *float64                      `yaml:"default"`
	SameRegion *float64                      `yaml:"sameRegion"`
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
		t = &LatencyTable{}
	}
	if a == b {
		if t.SameRegion != nil {
			return *t.SameRegion
		}
		return SameRegionLatencyMs
	}
	if v, ok := t.Pairs[a][b]; ok {
		return v
	}
	if v, ok := t.Pairs[b][a]; ok {
		return v
	}
	if t.Default != nil {
		return *t.Default
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
	for what, ms := range map[string]*float64{"default": t.Default, "sameRegion": t.SameRegion} {
		if ms != nil && bad(*ms) {
			return nil, fmt.Errorf("match: latency table %s: %s: %v ms is not a latency", path, what, *ms)
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
