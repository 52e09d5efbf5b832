package match

import (
	"sync"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
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
	visited := each(bs, func(s *book.Slot) {
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
		case peakLo > p.maxHourly || o.lb > p.maxTotal:
			return // over budget from any start
		case peakHi > p.maxHourly || o.ub > p.maxTotal || o.ub == descriptor.MaxNanos:
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
	})
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
	for i := range offers {
		o := &offers[i]
		e := o.s.Entry
		lat := p.latency[o.s.Region]
		t := int64(o.queue + o.runtime)
		c := Candidate{Entry: e, tie: splitmix64(p.seed ^ o.s.NameHash)}
		c.Score, _ = r.balanced(p, measure{int64(o.lb), t, lat})
		if !top.wants(&c) {
			continue
		}
		o.price(p)
		c.Score, _ = r.balanced(p, measure{int64(o.pr.total), t, lat})
		if !top.wants(&c) {
			continue
		}
		if reason, _ := requirements(p, e); reason != "" {
			continue
		}
		c = p.candidate(e, o.pr, o.queue)
		c.Score, c.Parts.Normalized = r.balanced(p, measure{int64(o.pr.total), t, lat})
		top.push(c)
	}
	return visited
}
