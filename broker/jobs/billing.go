package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// billing is how the runner meets settlement: the tenant's hold, the
// budget an attempt may spend, and the usage records taken in and what
// they charged. It reads the runner's configuration and never changes a
// job: the runner records what it returns.
type billing struct {
	cfg *Config
}

func (bl billing) now() time.Time { return bl.cfg.Now().UTC() }

// placeHold holds the estimated cost of a job on the candidate in the
// tenant's budget; a hold placed before a crash, before the job recorded
// it, is the one returned. Nil when nothing is to be held.
func (bl billing) placeHold(ctx context.Context, j *Job, c Candidate) (*Money, error) {
	if c.Estimate == nil || bl.cfg.Settler == nil {
		return nil, nil
	}
	tenant, err := identity.ParsePrincipalID(j.Tenant)
	if err != nil {
		return nil, err
	}
	h, err := bl.cfg.Settler.PlaceHold(ctx, j.ID, settlement.AccountOf(settlement.TenantAccounts, tenant), c.Estimate.Currency, c.Estimate.Amount)
	if err != nil && !errors.Is(err, settlement.ErrHoldExists) {
		return nil, err
	}
	return &Money{Amount: h.Amount, Currency: h.Currency}, nil
}

// ingest settles one signed usage record of an attempt: it returns the
// record's ID and what the tenant was charged, or why it was refused.
// end is the record's period end.
func (bl billing) ingest(ctx context.Context, j *Job, a *Attempt, envelope []byte, end time.Time) (string, *Money, string, error) {
	out, err := bl.cfg.Settler.Ingest(ctx, [][]byte{envelope})
	if err != nil {
		return "", nil, "", err
	}
	o := out[0]
	switch o.Status {
	case settlement.Accepted:
		if bl.cfg.Observe != nil {
			bl.cfg.Observe.Settled(bl.now().Sub(a.EndedAt))
		}
		return string(o.Record), &Money{Amount: o.Transaction.TenantCharge(), Currency: o.Transaction.Currency}, "", nil
	case settlement.Duplicate:
		charge, err := bl.chargeOf(ctx, j, o.Record, end)
		return string(o.Record), charge, "", err
	}
	bl.cfg.Log.Error("usage record refused", "job", j.ID, "attempt", a.ID, "reason", o.Reason, "detail", o.Detail)
	return string(o.Record), nil, fmt.Sprintf("usage record refused: %s: %s", o.Reason, o.Detail), nil
}

// chargeOf reads what a record already posted charged the tenant; end is
// the record's period end, by which statements select records.
func (bl billing) chargeOf(ctx context.Context, j *Job, id settlement.RecordID, end time.Time) (*Money, error) {
	tenant, err := identity.ParsePrincipalID(j.Tenant)
	if err != nil {
		return nil, err
	}
	st, err := bl.cfg.Settler.Statement(ctx, settlement.AccountOf(settlement.TenantAccounts, tenant), end, end.Add(time.Nanosecond))
	if err != nil {
		return nil, err
	}
	for _, t := range st.Transactions {
		if t.Transaction.Record == id {
			return &Money{Amount: t.TenantCharge(), Currency: t.Currency}, nil
		}
	}
	return nil, nil
}

// budgetEnd is when an attempt started at start would, at the most the
// offer's class lets it use, have spent what is left of the job's
// maxTotal — rated by settlement's own rating, so that the estimate and the
// bill are one rule. Zero when the job has no total budget in the offer's
// currency, or when the budget outlasts the longest record.
func (bl billing) budgetEnd(ctx context.Context, j *Job, a *Attempt, start time.Time) (time.Time, error) {
	doc, err := j.doc()
	if err != nil {
		return time.Time{}, err
	}
	b := budgetOf(j, doc)
	if b == nil || !b.MaxTotal.IsSet() {
		return time.Time{}, nil
	}
	offer, err := bl.cfg.Offers(ctx, a.OfferDigest)
	if err != nil {
		return time.Time{}, fmt.Errorf("jobs: offer %s of attempt %s: %w", a.OfferDigest, a.ID, err)
	}
	o := offer.Offer
	if o == nil || o.Price.Currency != b.Currency {
		bl.cfg.Log.Warn("a budget in another currency than the offer's is not enforced while the job runs", "job", j.ID, "budget", b.Currency)
		return time.Time{}, nil
	}
	left, err := descriptor.ParseNanos(b.MaxTotal.String())
	if err != nil {
		return time.Time{}, fmt.Errorf("jobs: budget %s: %w", b.MaxTotal, err)
	}
	for _, p := range j.Attempts {
		if p.ID != a.ID && p.Charge != nil && p.Charge.Currency == b.Currency {
			left -= p.Charge.Amount
		}
	}
	if left <= 0 {
		return start, nil
	}
	// The most an attempt can use for d: every vCPU of the class busy and
	// all its memory resident, on every node.
	cost := func(d time.Duration) (descriptor.Nanos, error) {
		trial := &Attempt{ID: a.ID, Usage: &Usage{Start: start, End: start.Add(d),
			CPU: d * time.Duration(int64(o.Class.CPU.Count)*int64(j.Instances())), PeakMemory: int64(o.Class.Memory) * int64(j.Instances())}}
		rec, ok, err := usageRecord(j, trial, offer, bl.cfg.Key.ID(), bl.cfg.Fee)
		if err != nil || !ok {
			return 0, err
		}
		rating, err := settlement.Rate(rec, o)
		if err != nil {
			return 0, err
		}
		return rating.Total(), nil
	}
	hi := settlement.MaxRecordPeriod
	if c, err := cost(hi); err != nil {
		return time.Time{}, err
	} else if c <= left {
		return time.Time{}, nil
	}
	// The cost never falls as d grows: the longest d within the budget,
	// to the millisecond.
	lo := time.Duration(0)
	for hi-lo > time.Millisecond {
		mid := lo + (hi-lo)/2
		c, err := cost(mid)
		if err != nil {
			return time.Time{}, err
		}
		if c <= left {
			lo = mid
		} else {
			hi = mid
		}
	}
	return start.Add(lo), nil
}

// budgetLeft is what remains of the job's maxTotal in the offer's
// currency after its earlier attempts; nil when it has none.
func (bl billing) budgetLeft(ctx context.Context, j *Job, a *Attempt) (*Money, error) {
	doc, err := j.doc()
	if err != nil {
		return nil, err
	}
	b := doc.Job.Budget
	if b == nil || !b.MaxTotal.IsSet() {
		return nil, nil
	}
	left, err := descriptor.ParseNanos(b.MaxTotal.String())
	if err != nil {
		return nil, fmt.Errorf("jobs: budget %s: %w", b.MaxTotal, err)
	}
	for _, p := range j.Attempts {
		if p.ID != a.ID && p.Charge != nil && p.Charge.Currency == b.Currency {
			left -= p.Charge.Amount
		}
	}
	return &Money{Amount: max(left, 0), Currency: b.Currency}, nil
}
