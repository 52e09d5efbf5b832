package jobs

import (
	v1 "github.com/cinet/cinet/broker/api/v1"
)

// Wire returns the job as the API shows it (v1.Job). The row and the wire
// form are two types, so that what the broker keeps can change without
// changing the API; today every field is shown.
func (j *Job) Wire() *v1.Job {
	w := &v1.Job{
		ID: j.ID, Tenant: j.Tenant, Name: j.Name, Digest: j.Digest, Document: j.Document,
		HomeRegion: j.HomeRegion, State: j.State, Outcome: j.Outcome, Detail: j.Detail,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, History: j.History,
		Excluded: j.Excluded, Restarts: j.Restarts, Hold: j.Hold, Cost: j.Cost,
		CancelRequested: j.CancelRequested,
		Home:            j.Home, HomeJob: j.HomeJob, HomeFee: j.HomeFee, BudgetLeft: j.BudgetLeft,
		Submission: j.Submission, Version: j.Version,
	}
	if j.Candidates != nil {
		w.Candidates = make([]v1.Candidate, len(j.Candidates))
		for i, c := range j.Candidates {
			w.Candidates[i] = v1.Candidate{Offer: c.Offer, Digest: c.Digest, Broker: c.Broker, Provider: c.Provider, Region: c.Region, Estimate: c.Estimate}
		}
	}
	if j.Attempts != nil {
		w.Attempts = make([]v1.Attempt, len(j.Attempts))
		for i := range j.Attempts {
			w.Attempts[i] = j.Attempts[i].wire()
		}
	}
	return w
}

func (a *Attempt) wire() v1.Attempt {
	w := v1.Attempt{
		ID: a.ID, Offer: a.Offer, OfferDigest: a.OfferDigest, Broker: a.Broker, Provider: a.Provider,
		Region: a.Region, Reservation: a.Reservation,
		ProvisionedAt: a.ProvisionedAt, StartedAt: a.StartedAt, EndedAt: a.EndedAt,
		State: a.State, ExitCode: a.ExitCode, Detail: a.Detail,
		BudgetEnd: a.BudgetEnd, BudgetStopped: a.BudgetStopped, LimitStopped: a.LimitStopped,
		Usage: a.Usage, Record: a.Record, Settled: a.Settled, Charge: a.Charge,
		Envelope: a.Envelope, Delivered: a.Delivered,
	}
	if a.Endpoints != nil {
		w.Endpoints = make([]v1.Endpoint, len(a.Endpoints))
		for i, e := range a.Endpoints {
			w.Endpoints[i] = v1.Endpoint{Name: e.Name, Replica: e.Replica, Protocol: e.Protocol, Address: e.Address, URL: e.URL, Ready: e.Ready}
		}
	}
	return w
}
