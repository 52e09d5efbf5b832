package match

import (
	"sort"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
)

// A Fate is what became of one offer in a decision.
type Fate struct {
	Offer    string   `json:"offer"` // the pool's name
	Provider string   `json:"provider"`
	Region   string   `json:"region"`
	Status   Status   `json:"status"`
	Rank     int      `json:"rank,omitempty"`   // ranked offers: 1 is the offer the broker places the job on
	Score    *float64 `json:"score,omitempty"`  // ranked offers
	Parts    *Parts   `json:"parts,omitempty"`  // ranked offers
	Reason   Reason   `json:"reason,omitempty"` // rejected offers
	Detail   string   `json:"detail,omitempty"` // rejected offers: the reason in words
}

// Status is an offer's fate in brief.
type Status string

// Statuses.
const (
	Placed   Status = "placed" // ranked first: the broker asks its owner first
	Ranked   Status = "ranked" // feasible, ranked below the first
	Rejected Status = "rejected"
)

// An Explanation is every offer's fate for one job.
type Explanation struct {
	Job      string         `json:"job"`
	Digest   string         `json:"digest"`
	Total    int            `json:"total"` // offers in the book
	Feasible int            `json:"feasible"`
	Fates    []Fate         `json:"fates"` // ranked offers by rank, then rejected ones by stage and name
	Summary  map[Reason]int `json:"summary"`
}

// Explain evaluates every offer in the book against the job and says what
// became of each: placed, ranked k-th with its score parts, or rejected
// with a reason.
func (m *Matcher) Explain(doc *descriptor.Document, opts Options) (*Explanation, error) {
	p, err := m.prepare(doc, &opts)
	if err != nil {
		return nil, err
	}
	return m.explain(p), nil
}

func (m *Matcher) explain(p *plan) *Explanation {
	x := &Explanation{Job: p.job.Metadata.Name, Digest: p.digest, Summary: map[Reason]int{}}
	var ranked, scaled []Candidate
	var rejected []Fate
	m.book.View(func(v book.View) {
		p.bind(v, &m.cfg)
		x.Total = v.Len()
		v.All(func(e *book.Entry) bool {
			c, r, pr, err := m.evaluate(p, e)
			if r == "" || r == RequirementsFalse || r == RequirementsError {
				scaled = append(scaled, c)
			}
			if r == "" {
				ranked = append(ranked, c)
				return true
			}
			x.Summary[r]++
			rejected = append(rejected, m.rejection(p, e, r, &pr, err))
			return true
		})
	})
	if p.balanced {
		normalize(p, ranked, scaled)
	}
	if p.job.Rank != nil {
		var outside []Candidate
		var failed []rankFailure
		ranked, outside, failed = m.rankPooled(p, ranked)
		for _, c := range outside {
			rejected = append(rejected, m.rejection(p, c.Entry, OutsideRankPool, nil, nil))
		}
		for _, f := range failed {
			rejected = append(rejected, m.rejection(p, f.c.Entry, RankError, nil, f.err))
		}
		for _, r := range rejected[len(rejected)-len(outside)-len(failed):] {
			x.Summary[r.Reason]++
		}
	}
	ranked = topK(ranked, len(ranked))
	x.Feasible = len(ranked)
	for i := range ranked {
		c := &ranked[i]
		status := Ranked
		if c.Rank == 1 {
			status = Placed
		}
		parts := c.Parts
		x.Fates = append(x.Fates, Fate{
			Offer: c.Entry.Name, Provider: c.Entry.Attrs.Provider, Region: c.Entry.Attrs.Region,
			Status: status, Rank: c.Rank, Score: &c.Score, Parts: &parts,
		})
	}
	order := map[Reason]int{}
	for i, r := range Reasons {
		order[r] = i
	}
	sort.Slice(rejected, func(i, j int) bool {
		a, b := rejected[i], rejected[j]
		if a.Reason != b.Reason {
			return order[a.Reason] < order[b.Reason]
		}
		return a.Offer < b.Offer
	})
	x.Fates = append(x.Fates, rejected...)
	return x
}

// rejection is an offer's fate when a check refuses it.
func (m *Matcher) rejection(p *plan, e *book.Entry, r Reason, pr *pricing, err error) Fate {
	return Fate{
		Offer: e.Name, Provider: e.Attrs.Provider, Region: e.Attrs.Region,
		Status: Rejected, Reason: r, Detail: describe(p, e, r, pr, err),
	}
}
