package match

import (
	"fmt"
	"math"
	"slices"

	"github.com/cinet/cinet/broker/book"
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
	c.Parts.RankValue = v
	c.exact, c.Score = 0, -v
	return nil
}
