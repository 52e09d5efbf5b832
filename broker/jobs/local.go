package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/settlement"
)

// localPlacements places attempts on this broker's own offers: its book
// holds the instances, the provider's adapter runs the placement, and
// this broker signs and settles the usage record — as the home broker of
// its own tenants' jobs, or as the executing broker of a placement
// another broker forwarded (executing.go).
type localPlacements struct {
	r  *Runner
	ad adapters.Adapter
}

func (l localPlacements) reserve(_ context.Context, j *Job, c Candidate) (book.Reservation, error) {
	return l.r.cfg.Book.Reserve(c.Offer, j.Instances(), j.ID, reservationTTL)
}

func (l localPlacements) unreserve(a *Attempt) {
	if a.Reservation != "" {
		l.r.cfg.Book.Release(a.Reservation)
	}
}

// resume holds again, after a restart, the instances of an attempt in
// progress: reservations live in the book, in memory.
func (l localPlacements) resume(ctx context.Context, j *Job, a *Attempt) error {
	r := l.r
	if a.Reservation == "" {
		return nil
	}
	res, err := r.cfg.Book.Reserve(a.Offer, j.Instances(), j.ID, reservationTTL)
	if err != nil {
		r.cfg.Log.Warn("re-reserving after restart", "job", j.ID, "offer", a.Offer, "err", err)
		return nil
	}
	if err := r.update(ctx, j, func(j *Job) { j.current().Reservation = res.ID }); err != nil {
		r.cfg.Book.Release(res.ID)
		return err
	}
	return nil
}

// start provisions the attempt on the provider's adapter.
func (l localPlacements) start(ctx context.Context, j *Job, a *Attempt) error {
	r := l.r
	ad, err := l.adapter(a)
	if err != nil {
		return err
	}
	p, err := j.placement(a)
	if err != nil {
		return err
	}
	// Each node may use what one instance of the offer's class has: the
	// book's copy, which holds the reservation; else the offer placed on.
	var class *descriptor.ComputeClass
	if e, ok := r.cfg.Book.Get(a.Offer); ok {
		o, err := e.Offer()
		if err != nil {
			return fmt.Errorf("jobs: attempt %s: %w", a.ID, err)
		}
		class = &o.Class
		p.Offer = o
	} else {
		offer, err := r.cfg.Offers(ctx, a.OfferDigest)
		if err != nil {
			return fmt.Errorf("jobs: offer %s of attempt %s: %w", a.OfferDigest, a.ID, err)
		}
		if offer.Offer != nil {
			class = &offer.Offer.Class
			p.Offer = offer.Offer
		}
	}
	if class != nil {
		p.Limits = adapters.Limits{CPUs: float64(class.CPU.Count), Memory: int64(class.Memory), Disk: int64(class.Disk)}
		for _, acc := range class.Accelerators {
			p.Limits.Accelerators += acc.Count
		}
	}
	if err := ad.Provision(ctx, p); err != nil {
		// The backend cannot run this job: it fails, and frees what it held.
		detail := "provisioning failed: " + err.Error()
		l.unreserve(a)
		return r.update(ctx, j, func(j *Job) {
			a := j.current()
			a.EndedAt, a.State, a.Detail, a.Settled, a.Reservation = r.now(), string(adapters.Failed), detail, true, ""
			j.end(Failed, r.now(), detail)
		})
	}
	return r.update(ctx, j, func(j *Job) {
		j.current().ProvisionedAt = r.now()
		j.to(Provisioning, r.now(), "placement "+a.ID+" provisioned")
	})
}

// executor is the provider's adapter; nil when this broker has none for
// it any more.
func (l localPlacements) executor(*Attempt) adapters.Adapter { return l.ad }

// adapter is the provider's adapter, or why there is none.
func (l localPlacements) adapter(a *Attempt) (adapters.Adapter, error) {
	if l.ad == nil {
		return nil, fmt.Errorf("jobs: attempt %s: no adapter runs provider %s's placements here", a.ID, a.Provider)
	}
	return l.ad, nil
}

func (l localPlacements) status(ctx context.Context, a *Attempt) (adapters.Status, error) {
	ad, err := l.adapter(a)
	if err != nil {
		return adapters.Status{}, err
	}
	return ad.Status(ctx, a.ID)
}

func (l localPlacements) usage(ctx context.Context, a *Attempt) (adapters.Usage, error) {
	ad, err := l.adapter(a)
	if err != nil {
		return adapters.Usage{}, err
	}
	return ad.Usage(ctx, a.ID)
}

func (l localPlacements) stop(ctx context.Context, a *Attempt) error {
	ad, err := l.adapter(a)
	if err != nil {
		return err
	}
	if err := ad.Release(ctx, a.ID); err != nil && !errors.Is(err, adapters.ErrNotFound) {
		return err
	}
	return nil
}

func (l localPlacements) release(ctx context.Context, a *Attempt) error { return l.stop(ctx, a) }

// settle builds the attempt's usage record from what was persisted, signs
// it as the executing broker and settles it. Built again after a restart,
// the record is the same, and the settler knows it.
func (l localPlacements) settle(ctx context.Context, j *Job, i int) error {
	r := l.r
	a := &j.Attempts[i]
	offer, err := r.cfg.Offers(ctx, a.OfferDigest)
	if err != nil {
		return fmt.Errorf("jobs: offer %s of attempt %s: %w", a.OfferDigest, a.ID, err)
	}
	rec, ok, err := usageRecord(j, a, offer, r.cfg.Key.ID(), r.cfg.Fee)
	if err != nil {
		return err
	}
	var charge *Money
	var recordID, detail string
	var envelope []byte
	if ok && r.cfg.Settler != nil {
		env, err := settlement.SealRecord(r.cfg.Key, rec)
		if err != nil {
			return err
		}
		if j.Home != "" {
			envelope = env.Encode() // for delivery to the home broker
		}
		if recordID, charge, detail, err = r.bill.ingest(ctx, j, a, env.Encode(), rec.PeriodEnd); err != nil {
			return err
		}
	}
	return r.update(ctx, j, func(j *Job) {
		a := &j.Attempts[i]
		a.Record, a.Charge, a.Settled, a.Envelope = recordID, charge, true, envelope
		if detail != "" {
			a.Detail = joinDetail(a.Detail, detail)
		}
	})
}
