package match

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
	pricerule "github.com/cinet/cinet/settlement/pricing"
)

// A balancedOffer is an offer that passes every check but requirements,
// in a balanced decision: its cost is known by bounds until it is priced.
type balancedOffer struct {
	s       *book.Slot
	lb, ub  descriptor.Nanos // bounds on the cost; both the cost once priced
	pr      pricing          // the estimate, once priced
	queue   time.Duration
	runtime time.Duration
	priced  bool
}

func (o *balancedOffer) price(p *plan) {
	if !o.priced {
		o.pr = priceRun(p, o.s.Entry, o.runtime, o.queue)
		o.lb, o.ub, o.priced = o.pr.total, o.pr.total, true
	}
}

var balancedScratch = sync.Pool{New: func() any { return new([]balancedOffer) }}

// matchBalanced finds the k best balanced scores (spec/matching.md §5)
// without pricing every offer. The scores scale each measure by its range
// over every offer that passes all checks but requirements, so it works in
// three passes:
//
//  1. Every such offer, with its time and latency (exact) and bounds on its
//     cost (book.Prices.LowerBound, UpperBound). The budget is judged by
//     the bounds where they decide it (PeakBounds for the hourly limit),
//     and by the exact estimate where they do not.
//  2. The cost range: the lowest cost is that of an offer whose lower bound
//     is at most the least upper bound, the highest that of one whose upper
//     bound is at least the greatest lower bound; only those are priced.
//  3. The k best: an offer's score from its lower bound is at most its
//     score (each step of the score's arithmetic is monotone, weights are
//     not negative), so only offers whose bound would enter the k best are
//     priced, and only those whose score would are tested for
//     requirements.
//
// It returns how many offers it visited.
func (m *Matcher) matchBalanced(p *plan, bs []*book.Bucket, top *kHeap) int {
	scratch := balancedScratch.Get().(*[]balancedOffer)
	offers := (*scratch)[:0]
	defer func() {
		clear(offers)
		*scratch = offers[:0]
		balancedScratch.Put(scratch)
	}()
	nodes := int64(p.nodes)
	minUB, maxLB := descriptor.MaxNanos, descriptor.Nanos(0)
	var lo, hi measure
	pass1 := func(s *book.Slot) {
		group, ok := p.admits(s)
		if !ok {
			return
		}
		e := s.Entry
		o := balancedOffer{s: s, queue: m.queue(e), runtime: p.runtimeOn(s, group)}
		if o.runtime <= 0 {
			o.price(p)
		} else {
			o.lb, o.ub = s.Lower(o.runtime, nodes), s.Upper(o.runtime, nodes)
		}
		peakLo, peakHi := s.Peak(nodes)
		switch {
		case o.priced:
			if o.pr.overBudget(p) {
				return
			}
		case p.overHourly(peakLo) || o.lb > p.maxTotal:
			return // over budget from any start
		case p.overHourly(peakHi) || o.ub > p.maxTotal || o.ub == descriptor.MaxNanos:
			o.price(p) // the bounds do not decide: the estimate does
			if o.pr.overBudget(p) {
				return
			}
		}
		ms := measure{time: int64(o.queue + o.runtime), latency: p.latency[s.Region]}
		if len(offers) == 0 {
			lo, hi = ms, ms
		}
		lo.time, hi.time = min(lo.time, ms.time), max(hi.time, ms.time)
		lo.latency, hi.latency = min(lo.latency, ms.latency), max(hi.latency, ms.latency)
		minUB, maxLB = min(minUB, o.ub), max(maxLB, o.lb)
		offers = append(offers, o)
	}
	// Each bucket's offers are a run of offers, in rate order: a segment.
	type segment struct {
		from, to   int
		minRuntime time.Duration
		minTime    int64
		latency    float64
		first      float64 // bound's score for the first offer
	}
	var segs []segment
	seen := onceEach{scans: len(bs)}
	visited := 0
	for _, b := range bs {
		sg := segment{from: len(offers), minRuntime: time.Duration(math.MaxInt64), minTime: math.MaxInt64, latency: p.latency[b.Region]}
		visited += seen.visit(b, pass1)
		if sg.to = len(offers); sg.to == sg.from {
			continue
		}
		for i := sg.from; i < sg.to; i++ {
			sg.minRuntime = min(sg.minRuntime, offers[i].runtime)
			sg.minTime = min(sg.minTime, int64(offers[i].queue+offers[i].runtime))
		}
		segs = append(segs, sg)
	}
	if len(offers) == 0 {
		return visited
	}
	lo.cost, hi.cost = int64(descriptor.MaxNanos), 0
	for i := range offers {
		o := &offers[i]
		if o.lb <= minUB {
			o.price(p)
			lo.cost = min(lo.cost, int64(o.pr.total))
		}
		if o.ub >= maxLB {
			o.price(p)
			hi.cost = max(hi.cost, int64(o.pr.total))
		}
	}
	r := ranges{lo: lo, hi: hi}
	// A lower bound on the score of an offer of a segment and of every
	// later one: the cost bound of its rate over the segment's shortest
	// run (book.RemainingBound), with the segment's shortest time.
	perWeek, fixed := p.view.MaxLoss()
	bound := func(sg *segment, s *book.Slot) float64 {
		cost := descriptor.Nanos(0)
		if rb, ok := pricerule.RemainingBound(s.MinRate, int64(sg.minRuntime), nodes, perWeek, fixed); ok {
			cost = rb
		}
		sc, _ := r.balanced(p, measure{int64(cost), sg.minTime, sg.latency})
		return sc
	}
	for i := range segs {
		segs[i].first = bound(&segs[i], offers[segs[i].from].s)
	}
	slices.SortStableFunc(segs, func(a, b segment) int { return cmp.Compare(a.first, b.first) })
	for si := range segs {
		sg := &segs[si]
		if top.full() && sg.first > top.worst().Score {
			break // every offer still to come scores worse than the k-th
		}
		for i := sg.from; i < sg.to; i++ {
			o := &offers[i]
			if top.full() && bound(sg, o.s) > top.worst().Score {
				break // this offer and the rest of its bucket score worse
			}
			m.balancedVisit(p, &r, o, top)
		}
	}
	return visited
}

// balancedVisit scores one offer of a balanced decision whose ranges are
// known, and keeps it if it enters the k best.
func (m *Matcher) balancedVisit(p *plan, r *ranges, o *balancedOffer, top *kHeap) {
	e := o.s.Entry
	lat := p.latency[o.s.Region]
	t := int64(o.queue + o.runtime)
	c := Candidate{Entry: e, tie: splitmix64(p.seed ^ o.s.NameHash)}
	c.Score, _ = r.balanced(p, measure{int64(o.lb), t, lat})
	if !top.wants(&c) {
		return
	}
	o.price(p)
	c.Score, _ = r.balanced(p, measure{int64(o.pr.total), t, lat})
	if !top.wants(&c) {
		return
	}
	if reason, _ := requirements(p, e); reason != "" {
		return
	}
	c = p.candidate(e, o.pr, o.queue)
	c.Score, c.Parts.Normalized = r.balanced(p, measure{int64(o.pr.total), t, lat})
	c.Parts.balanced = true
	top.push(c)
}

// matchBalancedByBucket is matchBalanced for jobs whose offers all give
// the same time: CPU jobs, when the broker estimates no queues. Their
// scores then vary only with cost and with the latency of a bucket's
// region, so it never visits every feasible offer. Within a bucket, offers
// lie in order of lowest rate, so a bound on the cost of one
// (book.RemainingBound over the job's runtime, key below) bounds every
// later one:
//
//  1. In each bucket, the first offer that passes every check but
//     requirements, if any: whether the bucket's latency counts for the
//     range, and a first cost.
//  2. The lowest cost: each bucket on from there while its key could be
//     below the lowest cost found.
//  3. The highest cost: each bucket from its dearest chunk down, skipping a
//     chunk whose offers' upper bounds (from the chunk's highest rate and
//     increment, Bucket.Chunks) cannot exceed the highest found.
//  4. The k best: buckets in order of the score their first key gives,
//     each while its key's score could enter the k best.
//
// It returns how many offers it looked at.
func (m *Matcher) matchBalancedByBucket(v book.View, p *plan, bs []*book.Bucket, top *kHeap) int {
	perWeek, fixed := v.MaxLoss()
	bw := &bucketWalk{p: p, nodes: int64(p.nodes), perWeek: perWeek, fixed: fixed, runtime: p.runtime,
		priced: map[*book.Slot]pricing{}, lo: descriptor.MaxNanos, hi: -1}
	if !bw.first(bs) { // 1
		return bw.looked
	}
	bw.lowest()  // 2
	bw.highest() // 3
	bw.best(top) // 4
	return bw.looked
}

// A bucketWalk is a balanced decision over buckets (matchBalancedByBucket).
type bucketWalk struct {
	p              *plan
	nodes          int64
	perWeek, fixed int64
	runtime        time.Duration
	priced         map[*book.Slot]pricing
	looked         int
	walks          []bucketStart
	lo, hi         descriptor.Nanos // the costs' range so far
	latLo, latHi   float64
}

// A bucketStart is a bucket's first offer that passes (step 1).
type bucketStart struct {
	b      *book.Bucket
	ci, si int // chunk and slot
	lat    float64
}

// key bounds from below the cost of an offer and of every later one of
// its bucket.
func (bw *bucketWalk) key(s *book.Slot) descriptor.Nanos {
	if rb, ok := pricerule.RemainingBound(s.MinRate, int64(bw.runtime), bw.nodes, bw.perWeek, bw.fixed); ok {
		return rb
	}
	return 0
}

// judge says whether an offer passes every check but requirements, and
// its estimate.
func (bw *bucketWalk) judge(s *book.Slot) (pricing, bool) {
	p := bw.p
	bw.looked++
	if pr, ok := bw.priced[s]; ok {
		return pr, !pr.overBudget(p)
	}
	if _, ok := p.admits(s); !ok {
		return pricing{}, false
	}
	lb := s.Lower(bw.runtime, bw.nodes)
	peakLo, _ := s.Peak(bw.nodes)
	if p.overHourly(peakLo) || lb > p.maxTotal {
		return pricing{}, false
	}
	pr := priceRun(p, s.Entry, bw.runtime, 0)
	bw.priced[s] = pr
	return pr, !pr.overBudget(p)
}

// first finds each bucket's first offer that passes, the latency range,
// and a first cost range; false when no offer passes.
func (bw *bucketWalk) first(bs []*book.Bucket) bool {
	for _, b := range bs {
		w, ok := bw.firstOf(b)
		if !ok {
			continue
		}
		if len(bw.walks) == 0 {
			bw.latLo, bw.latHi = w.lat, w.lat
		}
		bw.latLo, bw.latHi = min(bw.latLo, w.lat), max(bw.latHi, w.lat)
		bw.walks = append(bw.walks, w)
	}
	return len(bw.walks) > 0
}

func (bw *bucketWalk) firstOf(b *book.Bucket) (bucketStart, bool) {
	for ci, ch := range b.Chunks() {
		for si := range ch.Slots {
			if pr, ok := bw.judge(&ch.Slots[si]); ok {
				bw.lo, bw.hi = min(bw.lo, pr.total), max(bw.hi, pr.total)
				return bucketStart{b: b, ci: ci, si: si, lat: bw.p.latency[b.Region]}, true
			}
		}
	}
	return bucketStart{}, false
}

// lowest finds the lowest cost: each bucket on from its start while its
// key could be below the lowest found.
func (bw *bucketWalk) lowest() {
	for _, w := range bw.walks {
		chunks := w.b.Chunks()
	lower:
		for ci := w.ci; ci < len(chunks); ci++ {
			for si := range chunks[ci].Slots {
				if ci == w.ci && si <= w.si {
					continue
				}
				s := &chunks[ci].Slots[si]
				if bw.key(s) >= bw.lo {
					break lower // this offer and every later one cost at least lo
				}
				if pr, ok := bw.judge(s); ok {
					bw.lo = min(bw.lo, pr.total)
				}
			}
		}
	}
}

// highest finds the highest cost: each bucket from its dearest chunk
// down, skipping a chunk whose offers cannot exceed the highest found.
func (bw *bucketWalk) highest() {
	for _, w := range bw.walks {
		chunks := w.b.Chunks()
		for ci := len(chunks) - 1; ci >= 0; ci-- {
			ch := &chunks[ci]
			bound := pricerule.CostBounds{MaxRate: ch.MaxRate, LossPerWeek: int32(bw.perWeek), LossFixed: int32(bw.fixed)}
			if bound.Upper(bw.runtime+time.Duration(ch.MaxIncrement), bw.nodes) <= bw.hi {
				continue // no offer of the chunk costs more than hi
			}
			for si := len(ch.Slots) - 1; si >= 0; si-- {
				s := &ch.Slots[si]
				if s.Upper(bw.runtime, bw.nodes) <= bw.hi {
					continue
				}
				if pr, ok := bw.judge(s); ok {
					bw.hi = max(bw.hi, pr.total)
				}
			}
		}
	}
}

// best finds the k best: buckets in order of the score their first key
// gives, each while its key's score could enter the k best.
func (bw *bucketWalk) best(top *kHeap) {
	p, t := bw.p, int64(bw.runtime)
	r := ranges{lo: measure{int64(bw.lo), t, bw.latLo}, hi: measure{int64(bw.hi), t, bw.latHi}}
	score := func(cost descriptor.Nanos, lat float64) float64 {
		sc, _ := r.balanced(p, measure{int64(cost), t, lat})
		return sc
	}
	type start struct {
		w     bucketStart
		score float64
	}
	starts := make([]start, len(bw.walks))
	for i, w := range bw.walks {
		starts[i] = start{w, score(bw.key(&w.b.Chunks()[w.ci].Slots[w.si]), w.lat)}
	}
	slices.SortStableFunc(starts, func(a, b start) int { return cmp.Compare(a.score, b.score) })
	for _, st := range starts {
		if top.full() && st.score > top.worst().Score {
			break // every offer of this bucket and the later ones scores worse
		}
		chunks := st.w.b.Chunks()
	best:
		for ci := st.w.ci; ci < len(chunks); ci++ {
			for si := range chunks[ci].Slots {
				if ci == st.w.ci && si < st.w.si {
					continue
				}
				s := &chunks[ci].Slots[si]
				c := Candidate{Entry: s.Entry, tie: splitmix64(p.seed ^ s.NameHash), Score: score(bw.key(s), st.w.lat)}
				if top.full() && c.Score > top.worst().Score {
					break best
				}
				bw.offer(top, &r, s, c, st.w.lat)
			}
		}
	}
}

// offer prices an offer that might enter the k best, and pushes it if it
// does and meets the job's requirements.
func (bw *bucketWalk) offer(top *kHeap, r *ranges, s *book.Slot, c Candidate, lat float64) {
	p, t := bw.p, int64(bw.runtime)
	if !top.wants(&c) {
		return
	}
	pr, ok := bw.judge(s)
	if !ok {
		return
	}
	c.Score, _ = r.balanced(p, measure{int64(pr.total), t, lat})
	if !top.wants(&c) {
		return
	}
	if reason, _ := requirements(p, s.Entry); reason != "" {
		return
	}
	c = p.candidate(s.Entry, pr, 0)
	c.Score, c.Parts.Normalized = r.balanced(p, measure{int64(pr.total), t, lat})
	c.Parts.balanced = true
	top.push(c)
}
