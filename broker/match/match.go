package match

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
)

// DefaultK is how many candidates a decision returns unless asked.
const DefaultK = 5

// Config is what a broker tells its matcher about where it stands.
type Config struct {
	// HomeRegion is the broker's region, where latency is measured from.
	HomeRegion string
	// Latency is the region-to-region latency table; nil uses defaults.
	Latency *LatencyTable
	// Currency ranks jobs without a budget; offers in other currencies are
	// not considered (v1 converts no currencies). Default USD.
	Currency string
	// Queue estimates how long a job waits before it starts on an offer;
	// nil means it starts at once when capacity is free.
	Queue func(*book.Entry) time.Duration
}

// Options vary one decision.
type Options struct {
	K       int             // candidates to return; DefaultK when 0
	Exclude map[string]bool // offers whose owners refused this job
}

// A Candidate is an offer that can serve the job, with its score.
type Candidate struct {
	Entry *book.Entry
	Rank  int     // 1 is the best
	Score float64 // lower is better; for cost and time, exact says
	Parts Parts

	exact int64 // the cost (nano-units) or time (ns) objective's score, compared first
	tie   uint64
}

// Result is the outcome of a decision.
type Result struct {
	// Candidates are the best offers, best first: the order in which the
	// broker asks their owners for a reservation.
	Candidates []Candidate
	// Visited counts the offers the indexes led the decision to.
	Visited int
}

// A NoMatchError says no offer can serve a job, and why, offer by offer.
// The explanation is computed when first asked for — by Explanation or
// Error — since a decision that finds nothing need not pay for it.
type NoMatchError struct {
	Job string

	once    sync.Once
	explain func() *Explanation
	x       *Explanation
}

// Explanation returns every offer's fate for the job.
func (e *NoMatchError) Explanation() *Explanation {
	e.once.Do(func() { e.x = e.explain() })
	return e.x
}

func (e *NoMatchError) Error() string {
	x := e.Explanation()
	if x.Feasible > 0 {
		// The book changed between the decision and this explanation.
		return fmt.Sprintf("match: no offer could serve job %q when it was matched; %d can now", e.Job, x.Feasible)
	}
	var parts []string
	for _, r := range Reasons {
		if n := x.Summary[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("match: no offer can serve job %q: the book holds no offers", e.Job)
	}
	return fmt.Sprintf("match: no offer can serve job %q: of %d offers, %s", e.Job, x.Total, strings.Join(parts, ", "))
}

func (m *Matcher) noMatch(p *plan) *NoMatchError {
	return &NoMatchError{Job: p.job.Metadata.Name, explain: func() *Explanation { return m.explain(p) }}
}

// A Matcher decides where jobs run, against one offer book.
type Matcher struct {
	cfg      Config
	book     *book.Book
	rankPool int // RankPool; tests make it small
}

// New returns a matcher over b.
func New(b *book.Book, cfg Config) *Matcher {
	if cfg.Currency == "" {
		cfg.Currency = "USD"
	}
	return &Matcher{cfg: cfg, book: b, rankPool: RankPool}
}

func (m *Matcher) prepare(doc *descriptor.Document, opts *Options) (*plan, error) {
	if doc == nil || doc.Job == nil {
		return nil, errors.New("match: the document is not a job")
	}
	if opts.K <= 0 {
		opts.K = DefaultK
	}
	p := newPlan(doc, opts, &m.cfg, m.book.Now())
	p.rankPool = m.rankPool
	return p, nil
}

func (m *Matcher) queue(e *book.Entry) time.Duration {
	if m.cfg.Queue == nil {
		return 0
	}
	return m.cfg.Queue(e)
}

// evaluate runs every stage for one offer, in order: feasibility, price
// and budget, requirements, score. Explain and MatchNaive use it; Match
// runs the same stages in an order that skips work (visit).
func (m *Matcher) evaluate(p *plan, e *book.Entry) (c Candidate, r Reason, pr pricing, err error) {
	r, group := feasible(p, e, &e.Hot)
	if r != "" {
		return c, r, pr, nil
	}
	queue := m.queue(e)
	pr = price(p, e, group, queue)
	if pr.overBudget(p) {
		return c, OverBudget, pr, nil
	}
	c = p.candidate(e, pr, queue)
	if r, err = requirements(p, e); r != "" {
		return c, r, pr, err
	}
	setScore(p, &c) // a rank job's is its cost, until the pool is ranked (rankPool)
	return c, "", pr, nil
}

// visit is evaluate for Match, ordered to skip work: it scores an offer
// first (for the cost objective, by a lower bound from the week's lowest
// rate) and prices it, checks the budget and tests requirements only if
// it would enter the k best. The outcome is the same as evaluate's.
func (m *Matcher) visit(p *plan, s *book.Slot, top *kHeap) {
	group, ok := p.admits(s)
	if !ok {
		return
	}
	e := s.Entry
	queue := m.queue(e)
	runtime := p.runtimeOn(s, group)
	// The score in locals first: most offers go no further than wants.
	tie := splitmix64(p.seed ^ s.NameHash)
	var exact int64
	var score float64
	var pr pricing
	priced := false
	switch {
	case p.job.Objective.Type == "time" && p.job.Rank == nil:
		t := queue + runtime
		exact, score = int64(t), t.Seconds()
	case p.job.Objective.Type == "latency" && p.job.Rank == nil:
		score = p.latency[s.Region]
	default: // cost, and the rank pool's order
		// A lower bound first (book.Prices.LowerBound): at most the
		// exact cost, so an offer it keeps out could not have entered.
		exact = int64(s.Lower(runtime, int64(p.nodes)))
		if !top.wantsKey(exact, score, tie, e) || p.surelyOver(s, runtime) {
			return
		}
		pr, priced = priceRun(p, e, runtime, queue), true
		exact, score = int64(pr.total), float64(pr.total)
	}
	if !top.wantsKey(exact, score, tie, e) || (!priced && p.surelyOver(s, runtime)) {
		return
	}
	if !priced {
		pr = priceRun(p, e, runtime, queue)
	}
	if pr.overBudget(p) {
		return
	}
	if r, _ := requirements(p, e); r != "" {
		return
	}
	c := p.candidate(e, pr, queue)
	c.Score, c.exact = score, exact
	top.push(c)
}

// surelyOver reports whether an offer's cost bounds put it over the job's
// budget from any start (book.CostBounds), so that it need not be priced.
func (p *plan) surelyOver(s *book.Slot, runtime time.Duration) bool {
	nodes := int64(p.nodes)
	if peakLo, _ := s.Peak(nodes); p.overHourly(peakLo) {
		return true
	}
	return p.maxTotal != NoLimit && s.Lower(runtime, nodes) > p.maxTotal
}

// candidate builds a candidate's score parts from its price.
func (p *plan) candidate(e *book.Entry, pr pricing, queue time.Duration) Candidate {
	return Candidate{Entry: e, tie: splitmix64(p.seed ^ e.NameHash), Parts: Parts{
		Cost: pr.total, PeakHourly: pr.peakHourly, Currency: e.Attrs.Price.Currency,
		Runtime: pr.runtime, Time: queue + pr.runtime, LatencyMs: p.latency[e.Region],
	}}
}

func requirements(p *plan, e *book.Entry) (Reason, error) {
	if p.job.Requirements == nil {
		return "", nil
	}
	ok, err := p.job.Requirements.EvalBool(e.Attrs)
	switch {
	case err != nil:
		return RequirementsError, err
	case !ok:
		return RequirementsFalse, nil
	}
	return "", nil
}

// better orders candidates: lower score, then the seeded tie-break, then
// the pool's name, so every decision is a total order.
func better(a, b *Candidate) bool { return beats(a.exact, a.Score, a.tie, a.Entry, b) }

// beats is better for a candidate given by its order keys.
func beats(exact int64, score float64, tie uint64, e *book.Entry, b *Candidate) bool {
	if exact != b.exact {
		return exact < b.exact
	}
	if score != b.Score {
		return score < b.Score
	}
	if tie != b.tie {
		return tie < b.tie
	}
	return e.Name < b.Entry.Name
}

// splitmix64 scrambles the seed and a pool's name hash into the tie-break.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Match finds the best offers for a job, using the indexes. When no offer
// can serve the job it returns a *NoMatchError carrying the explanation.
func (m *Matcher) Match(doc *descriptor.Document, opts Options) (*Result, error) {
	p, err := m.prepare(doc, &opts)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	top := &kHeap{k: opts.K}
	if opts.K <= 64 {
		top.items, top.order = make([]Candidate, 0, opts.K), make([]int32, 0, opts.K)
	}
	m.book.View(func(v book.View) {
		p.bind(v, &m.cfg)
		bs := p.buckets(v)
		visit := func(s *book.Slot) { m.visit(p, s, top) }
		switch {
		case p.balanced && len(p.accels) == 0 && m.cfg.Queue == nil:
			// Every offer gives the job the same time.
			res.Visited = m.matchBalancedByBucket(v, p, bs, top)
		case p.balanced:
			// Balanced scores depend on the range of every feasible offer.
			res.Visited = m.matchBalanced(p, bs, top)
		case p.job.Rank != nil:
			res.Visited = m.matchRank(v, p, bs, top)
		case p.job.Objective.Type == "time":
			res.Visited = ordered(bs, top, func(b *book.Bucket) Candidate {
				t := p.fastest(b.Model) // queues are never negative
				return Candidate{exact: int64(t), Score: t.Seconds()}
			}, visit)
		case p.job.Objective.Type == "latency":
			res.Visited = ordered(bs, top, func(b *book.Bucket) Candidate {
				return Candidate{Score: p.latency[b.Region]}
			}, visit)
		default:
			res.Visited = cheapestFirst(v, p, bs, top, visit)
		}
	})
	res.Candidates = top.sorted()
	if len(res.Candidates) == 0 {
		return nil, m.noMatch(p)
	}
	return res, nil
}

// MatchNaive is Match without indexes or lazy evaluation: it evaluates
// every offer in the book fully and sorts them all. It gives the same
// answer as Match and is the baseline Match's speed is measured against.
func (m *Matcher) MatchNaive(doc *descriptor.Document, opts Options) (*Result, error) {
	p, err := m.prepare(doc, &opts)
	if err != nil {
		return nil, err
	}
	var all, scaled []Candidate
	var visited int
	m.book.View(func(v book.View) {
		p.bind(v, &m.cfg)
		visited = v.Len()
		v.All(func(e *book.Entry) bool {
			c, r, _, _ := m.evaluate(p, e)
			if r == "" {
				all = append(all, c)
			}
			if r == "" || r == RequirementsFalse || r == RequirementsError {
				scaled = append(scaled, c)
			}
			return true
		})
	})
	if p.balanced {
		normalize(p, all, scaled)
	}
	if p.job.Rank != nil {
		all, _, _ = m.rankPooled(p, all)
	}
	res := &Result{Candidates: topK(all, opts.K), Visited: visited}
	if len(res.Candidates) == 0 {
		return nil, m.noMatch(p)
	}
	return res, nil
}

// topK sorts candidates best first and keeps k, ranked from 1.
func topK(all []Candidate, k int) []Candidate {
	sort.Slice(all, func(i, j int) bool { return better(&all[i], &all[j]) })
	if len(all) > k {
		all = all[:k]
	}
	for i := range all {
		all[i].Rank = i + 1
	}
	return all
}

// kHeap keeps the k best candidates seen, the worst at the root. The
// heap orders indexes into the candidates, so that a large k (the rank
// pool) moves small integers, not candidates.
type kHeap struct {
	k     int
	items []Candidate
	order []int32 // a heap of indexes into items
}

// full reports whether the heap holds k candidates.
func (h *kHeap) full() bool { return len(h.items) == h.k }

// worst returns the worst candidate kept; the heap must not be empty.
func (h *kHeap) worst() *Candidate { return &h.items[h.order[0]] }

// wants reports whether c would enter the k best.
func (h *kHeap) wants(c *Candidate) bool { return h.wantsKey(c.exact, c.Score, c.tie, c.Entry) }

// wantsKey is wants for a candidate given by its order keys.
func (h *kHeap) wantsKey(exact int64, score float64, tie uint64, e *book.Entry) bool {
	return len(h.items) < h.k || (h.k > 0 && beats(exact, score, tie, e, h.worst()))
}

func (h *kHeap) push(c Candidate) {
	if len(h.items) < h.k {
		h.items = append(h.items, c)
		h.order = append(h.order, int32(len(h.items)-1))
		h.up(len(h.order) - 1)
		return
	}
	h.items[h.order[0]] = c
	h.down(0)
}

// worse is the heap order: the root is the worst kept candidate.
func (h *kHeap) worse(i, j int) bool { return better(&h.items[h.order[j]], &h.items[h.order[i]]) }

func (h *kHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.worse(i, parent) {
			return
		}
		h.order[i], h.order[parent] = h.order[parent], h.order[i]
		i = parent
	}
}

func (h *kHeap) down(i int) {
	for {
		l, r, worst := 2*i+1, 2*i+2, i
		if l < len(h.order) && h.worse(l, worst) {
			worst = l
		}
		if r < len(h.order) && h.worse(r, worst) {
			worst = r
		}
		if worst == i {
			return
		}
		h.order[i], h.order[worst] = h.order[worst], h.order[i]
		i = worst
	}
}

func (h *kHeap) sorted() []Candidate {
	out := slices.Clone(h.items)
	return topK(out, h.k)
}
