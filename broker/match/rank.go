package match

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
)

// RankPool is how many offers a job's CEL rank is evaluated on
// (spec/matching.md §5): the cheapest that pass every other check. An
// expression's value cannot be bounded in general, so without a pool a
// rank job would evaluate CEL on every feasible offer of a large book.
const RankPool = 250

// rankFailure is an offer the pool held whose rank could not be
// evaluated.
type rankFailure struct {
	c   Candidate
	err error
}

// rankPooled ranks a rank job's pool. cands are offers that pass every
// check but rank, scored by cost; the first m.rankPool of them in that
// order are the pool (outside holds the rest, cheapest first). Each
// pooled offer is scored by its rank; failed holds those whose rank could
// not be evaluated.
func (m *Matcher) rankPooled(p *plan, cands []Candidate) (ranked, outside []Candidate, failed []rankFailure) {
	slices.SortFunc(cands, func(a, b Candidate) int {
		if better(&a, &b) {
			return -1
		}
		return 1
	})
	pool := cands
	if len(pool) > m.rankPool {
		pool, outside = cands[:m.rankPool], cands[m.rankPool:]
	}
	for _, c := range pool {
		if err := p.rank(c.Entry, &c); err != nil {
			failed = append(failed, rankFailure{c, err})
			continue
		}
		ranked = append(ranked, c)
	}
	return ranked, outside, failed
}

// rank evaluates the job's CEL rank into c's score: minus its value, so
// that higher values rank first.
func (p *plan) rank(e *book.Entry, c *Candidate) error {
	v, err := p.job.Rank.EvalNumber(e.Attrs)
	if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		err = fmt.Errorf("rank is %v, not a finite number", v)
	}
	if err != nil {
		return err
	}
	c.Parts.RankValue, c.Parts.ranked = v, true
	c.exact, c.Score = 0, -v
	return nil
}

// rankScratch is matchRank's working memory, kept for the next decision:
// a rank decision gathers hundreds of offers, and allocating their room
// anew each time was most of what matching allocated.
type rankScratch struct {
	got, in, open []pooled
	lbs           []descriptor.Nanos
	bounds        kHeap
	byEntry       map[*book.Entry]int
}

var rankScratches = sync.Pool{New: func() any { return &rankScratch{byEntry: map[*book.Entry]int{}} }}

// release empties the scratch, keeping its room, and returns it to the
// pool; nothing it held may be used after.
func (sc *rankScratch) release() {
	clear(sc.got)
	clear(sc.in)
	clear(sc.open)
	clear(sc.bounds.items)
	clear(sc.byEntry)
	sc.got, sc.in, sc.open, sc.lbs = sc.got[:0], sc.in[:0], sc.open[:0], sc.lbs[:0]
	sc.bounds.items, sc.bounds.order = sc.bounds.items[:0], sc.bounds.order[:0]
	rankScratches.Put(sc)
}

// A pooled is an offer that may be in a rank job's pool: it passes every
// check, and its cost is known by bounds until it is priced.
type pooled struct {
	s       *book.Slot
	lb, ub  descriptor.Nanos
	pr      pricing
	priced  bool
	runtime time.Duration
	queue   time.Duration
}

func (o *pooled) price(p *plan) {
	if !o.priced {
		o.pr = priceRun(p, o.s.Entry, o.runtime, o.queue)
		o.lb, o.ub, o.priced = o.pr.total, o.pr.total, true
	}
}

// matchRank finds a rank job's pool (the m.rankPool cheapest offers that
// pass every check) and its k best by rank, pricing only the offers whose
// place in the pool their cost bounds leave open, and the k best:
//
//  1. Offers are collected cheapest first (cheapestFirst) with bounds on
//     their cost, checked against the budget by the bounds where they
//     decide it and against the requirements. U, the pool-th least upper
//     bound, bounds the pool-th least cost T from above, so the merge
//     stops once every offer still to come costs more than U.
//  2. L, the pool-th least lower bound, bounds T from below: an offer
//     whose upper bound is below L is in the pool, one whose lower bound
//     is above U is not, and the rest are priced and take the places left
//     in cost order.
//  3. The pool is ranked; the k best are priced for their parts.
func (m *Matcher) matchRank(v book.View, p *plan, bs []*book.Bucket, top *kHeap) int {
	nodes := int64(p.nodes)
	sc := rankScratches.Get().(*rankScratch)
	defer sc.release()
	got := sc.got
	bounds := &sc.bounds // the pool-th least upper bounds, as exact scores
	bounds.k = m.rankPool
	visited := cheapestFirst(v, p, bs, bounds, func(s *book.Slot) {
		group, ok := p.admits(s)
		if !ok {
			return
		}
		o := pooled{s: s, runtime: p.runtimeOn(s, group), queue: m.queue(s.Entry)}
		o.lb = s.Lower(o.runtime, nodes)
		if bounds.full() && int64(o.lb) > bounds.worst().exact {
			return // it costs more than the pool-th least upper bound
		}
		if p.surelyOver(s, o.runtime) {
			return
		}
		o.ub = s.Upper(o.runtime, nodes)
		if _, peakHi := s.Peak(nodes); p.overHourly(peakHi) || o.ub > p.maxTotal || o.ub == descriptor.MaxNanos || o.runtime <= 0 {
			o.price(p) // the bounds do not decide the budget: the estimate does
			if o.pr.overBudget(p) {
				return
			}
		}
		if r, _ := requirements(p, s.Entry); r != "" {
			return
		}
		got = append(got, o)
		c := Candidate{Entry: s.Entry, exact: int64(o.ub), Score: float64(o.ub), tie: splitmix64(p.seed ^ s.NameHash)}
		if bounds.wants(&c) {
			bounds.push(c)
		}
	})
	sc.got = got
	pool := got
	if len(got) > m.rankPool {
		upper := bounds.worst().exact
		lbs := sc.lbs[:0]
		for i := range got {
			lbs = append(lbs, got[i].lb)
		}
		sc.lbs = lbs
		slices.Sort(lbs)
		lower := lbs[m.rankPool-1]
		in, open := sc.in[:0], sc.open[:0]
		for _, o := range got {
			switch {
			case o.ub < lower:
				in = append(in, o)
			case int64(o.lb) > upper:
			default:
				o.price(p)
				open = append(open, o)
			}
		}
		slices.SortFunc(open, func(a, b pooled) int {
			x := Candidate{Entry: a.s.Entry, exact: int64(a.pr.total), Score: float64(a.pr.total), tie: splitmix64(p.seed ^ a.s.NameHash)}
			y := Candidate{Entry: b.s.Entry, exact: int64(b.pr.total), Score: float64(b.pr.total), tie: splitmix64(p.seed ^ b.s.NameHash)}
			if better(&x, &y) {
				return -1
			}
			return 1
		})
		pool = append(in, open[:min(len(open), m.rankPool-len(in))]...)
		sc.in, sc.open = pool, open
	}
	byEntry := sc.byEntry
	for i := range pool {
		o := &pool[i]
		c := Candidate{Entry: o.s.Entry, tie: splitmix64(p.seed ^ o.s.NameHash)}
		if p.rank(o.s.Entry, &c) != nil || !top.wants(&c) {
			continue
		}
		byEntry[o.s.Entry] = i
		top.push(c)
	}
	for i := range top.items {
		c := &top.items[i]
		o := &pool[byEntry[c.Entry]]
		o.price(p)
		score, value := c.Score, c.Parts.RankValue
		*c = p.candidate(c.Entry, o.pr, o.queue)
		c.Score, c.Parts.RankValue, c.Parts.ranked = score, value, true
	}
	return visited
}
