package match

import (
	"slices"
	"sort"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
	pricerule "github.com/cinet/cinet/settlement/pricing"
)

// How Match finds the k best offers without looking at every one.
//
// The book keeps offers in buckets by currency, model (or CPU size class),
// region and jurisdiction, each in order of its offers' lowest hourly
// rates (book.Bucket). A decision takes the buckets of the job's currency
// and of the models that could serve its first accelerator request (or of
// the CPU size classes big enough), and drops those whose region or
// jurisdiction the job's placement rules refuse or whose largest offer is
// too small. Then, by objective:
//
//   - cost: the buckets are merged cheapest first and the scan stops once
//     even the lowest rate still to come cannot price an offer into the k
//     best (book.RemainingBound);
//   - time and latency: buckets are visited in order of a lower bound on
//     their offers' scores (the fastest device a bucket's model has; the
//     latency of its region), stopping once the next bound is worse than
//     the k-th best;
//   - rank: the pool, the RankPool cheapest offers, is found as for cost,
//     then ranked;
//   - balanced: see matchBalanced and matchBalancedByBucket.
//
// Every skip rests on a bound, so the answer is full evaluation's
// (MatchNaive); the property tests hold the two to each other.

// buckets returns the buckets that can hold an offer for the job.
func (p *plan) buckets(v book.View) []*book.Bucket {
	var all []*book.Bucket
	if len(p.accels) == 0 {
		all = v.CPUBuckets(p.currency, p.cpus)
	} else {
		models := make([]string, 0, len(p.accels[0].models))
		for m := range p.accels[0].models {
			models = append(models, m)
		}
		slices.Sort(models)
		for _, m := range models {
			all = append(all, v.Buckets(p.currency, m)...)
		}
	}
	kept := all[:0]
	for _, b := range all {
		if b.Len() > 0 && p.regionOK[b.Region] && p.jurisdictionOK[b.Jurisdiction] &&
			int(b.MaxFree) >= p.nodes && float64(b.MaxCPUs) >= p.cpus && b.MaxMemory >= p.memory && b.MaxDisk >= p.disk &&
			(len(p.accels) > 0) == (b.MaxGroups > 0) {
			kept = append(kept, b)
		}
	}
	return kept
}

// admits is feasible for an offer in one of the job's buckets, whose
// currency, region and jurisdiction the bucket answers for: whether it can
// serve the job and the group its first accelerator request gets (-1 for
// CPU jobs). An offer with one accelerator group is judged by that group's
// description, once per decision (the book shares descriptions alike).
func (p *plan) admits(s *book.Slot) (int, bool) {
	h := &s.Hot
	if p.nowNanos < h.ValidFrom || p.nowNanos >= h.ValidUntil || int(h.Free) < p.nodes ||
		float64(h.CPUs) < p.cpus || h.Memory < p.memory || h.Disk < p.disk ||
		(p.exclude != nil && p.exclude[s.Entry.Name]) || !p.providerOK(h.Provider) {
		return -1, false
	}
	if len(p.accels) == 0 {
		return -1, h.Groups == 0
	}
	if h.Groups == 1 && len(p.accels) == 1 && p.fit != nil {
		switch p.fit[h.Group] {
		case fitYes:
			return 0, true
		case fitNo:
			return -1, false
		}
		r, _ := groupReason(p.accels[0].req, p.view.Group(h.Group))
		if r != "" {
			p.fit[h.Group] = fitNo
			return -1, false
		}
		p.fit[h.Group] = fitYes
		return 0, true
	}
	if h.Groups == 0 {
		return -1, false
	}
	r, group := accelerators(p, s.Entry)
	return group, r == ""
}

const (
	fitUnknown uint8 = iota
	fitYes
	fitNo
)

// maxMemo bounds the per-decision tables indexed by group description.
const maxMemo = 1 << 16

// runtimeOn is scaledRuntime, worked out once per group description.
func (p *plan) runtimeOn(s *book.Slot, group int) time.Duration {
	if group < 0 || p.refTF <= 0 {
		return p.runtime
	}
	if s.Groups == 1 && p.runtimes != nil {
		if d := p.runtimes[s.Group]; d != 0 {
			return d
		}
		d := scaledRuntime(p, s.Entry, 0)
		p.runtimes[s.Group] = d
		return d
	}
	return scaledRuntime(p, s.Entry, group)
}

// visit calls fn for every slot of b not yet let through; it returns how
// many it let through.
func (o *onceEach) visit(b *book.Bucket, fn func(*book.Slot)) int {
	n := 0
	for _, ch := range b.Chunks() {
		c := ch.Slots
		for i := range c {
			if o.first(&c[i]) {
				n++
				fn(&c[i])
			}
		}
	}
	return n
}

// ordered visits whole buckets in order of bound, a lower bound on the
// score of every offer in a bucket, and stops once the next bucket's
// bound is worse than the k-th best candidate.
func ordered(bs []*book.Bucket, top *kHeap, bound func(*book.Bucket) Candidate, visit func(*book.Slot)) int {
	type keyed struct {
		b *book.Bucket
		c Candidate
	}
	ks := make([]keyed, len(bs))
	for i, b := range bs {
		ks[i] = keyed{b, bound(b)}
	}
	sort.SliceStable(ks, func(i, j int) bool {
		a, b := &ks[i].c, &ks[j].c
		return a.exact < b.exact || a.exact == b.exact && a.Score < b.Score
	})
	seen := onceEach{scans: len(bs)}
	n := 0
	for _, k := range ks {
		if top.full() {
			w := top.worst()
			if k.c.exact > w.exact || k.c.exact == w.exact && k.c.Score > w.Score {
				break // every offer still to come scores worse than the k-th
			}
		}
		n += seen.visit(k.b, visit)
	}
	return n
}

// fastest is the shortest run an offer of the model could give the job:
// its estimated runtime scaled to the vocabulary's figure for the model
// (offers state throughput at or below it; a model that publishes no
// figure leaves it unbounded).
func (p *plan) fastest(model string) time.Duration {
	if len(p.accels) == 0 || p.refTF <= 0 {
		return p.runtime
	}
	if d, ok := p.fastestOf[model]; ok {
		return d // worked out once per decision: buckets of a model are many
	}
	d := time.Duration(1)
	if m, ok := descriptor.LookupAccelerator(model); ok && p.precise.of(m.TFLOPS) > 0 {
		d = min(p.runtime, scaleRuntime(p.runtime, p.refTF, p.precise.of(m.TFLOPS)))
	}
	if p.fastestOf == nil {
		p.fastestOf = map[string]time.Duration{}
	}
	p.fastestOf[model] = d
	return d
}

// cheapestFirst visits the buckets' offers merged in order of a lower
// bound on their cost and stops once the k best are known: when even the
// least bound still to come exceeds the k-th best. An offer's bound
// (book.RemainingBound) is its lowest hourly rate over the shortest run
// any offer of its bucket's model could give the job, with the largest
// rounding allowance in the book; within a bucket it grows with the rate,
// so each bucket's next offer stands for all its others. It returns how
// many it visited.
func cheapestFirst(v book.View, p *plan, bs []*book.Bucket, top *kHeap, visit func(*book.Slot)) int {
	if top.k == 0 {
		return 0 // nothing can enter
	}
	perWeek, fixed := v.MaxLoss()
	nodes := int64(p.nodes)
	h := cursorHeap{cursors: make([]cursor, 0, len(bs)), order: make([]int32, 0, len(bs))}
	for _, b := range bs {
		c := cursor{chunks: b.Chunks(), shortest: int64(p.fastest(b.Model))}
		c.bound(nodes, perWeek, fixed)
		h.order = append(h.order, int32(len(h.cursors)))
		h.cursors = append(h.cursors, c)
	}
	h.init()
	seen := onceEach{scans: len(bs)}
	visited := 0
	for len(h.order) > 0 {
		cur := &h.cursors[h.order[0]]
		if top.full() && cur.key > descriptor.Nanos(top.worst().exact) {
			break // nothing still to come can enter the k best
		}
		s := cur.slot()
		if cur.next() {
			cur.bound(nodes, perWeek, fixed)
			h.down(0)
		} else {
			h.pop()
		}
		if !seen.first(s) {
			continue
		}
		visited++
		visit(s)
	}
	return visited
}

// A cursor walks one bucket's chunks in rate order.
type cursor struct {
	chunks   []book.Chunk
	ci, si   int
	shortest int64            // the shortest run an offer of the bucket could give the job
	key      descriptor.Nanos // a lower bound on the cost of the slot and every one after it
}

func (c *cursor) slot() *book.Slot { return &c.chunks[c.ci].Slots[c.si] }

// next moves on; false when the bucket is done.
func (c *cursor) next() bool {
	if c.si++; c.si == len(c.chunks[c.ci].Slots) {
		c.ci, c.si = c.ci+1, 0
	}
	return c.ci < len(c.chunks)
}

// bound sets the cursor's key from its slot's rate.
func (c *cursor) bound(nodes, perWeek, fixed int64) {
	c.key = 0
	if rb, ok := pricerule.RemainingBound(c.slot().MinRate, c.shortest, nodes, perWeek, fixed); ok {
		c.key = rb
	}
}

// cursorHeap orders cursors by key, least at the root; the heap holds
// indexes, so that sifting moves small integers.
type cursorHeap struct {
	cursors []cursor
	order   []int32
}

func (h *cursorHeap) less(i, j int) bool {
	return h.cursors[h.order[i]].key < h.cursors[h.order[j]].key
}

func (h *cursorHeap) init() {
	for i := len(h.order)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *cursorHeap) down(i int) {
	for {
		l, r, least := 2*i+1, 2*i+2, i
		if l < len(h.order) && h.less(l, least) {
			least = l
		}
		if r < len(h.order) && h.less(r, least) {
			least = r
		}
		if least == i {
			return
		}
		h.order[i], h.order[least] = h.order[least], h.order[i]
		i = least
	}
}

func (h *cursorHeap) pop() {
	n := len(h.order) - 1
	h.order[0] = h.order[n]
	h.order = h.order[:n]
	h.down(0)
}

// onceEach lets each offer through once across several buckets: an offer
// with groups of several models sits in several.
type onceEach struct {
	scans int
	seen  map[*book.Entry]bool
}

func (o *onceEach) first(s *book.Slot) bool {
	if o.scans < 2 || s.Groups < 2 {
		return true
	}
	if o.seen[s.Entry] {
		return false
	}
	if o.seen == nil {
		o.seen = map[*book.Entry]bool{}
	}
	o.seen[s.Entry] = true
	return true
}
