package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/identity"
)

// placements carry the attempts on one kind of offer through their life.
// The job state machine (runner.go) drives every attempt through this one
// interface, and never asks where an attempt runs; which implementation
// serves an attempt is decided once, by the broker that owns its offer
// (Runner.placementsOf):
//
//   - local (local.go): this broker's own offers — its book holds the
//     instances, its providers' adapters run the placement, and it signs
//     and settles the usage record;
//   - remote (remote.go): another broker's offers — a lease at the owner,
//     the placement forwarded to it and followed there, and the usage
//     record it signs taken in.
type placements interface {
	// reserve holds the job's instances of the candidate's offer. Errors
	// wrap book.ErrInsufficient (busy now: it may free up), errUnreachable
	// (the owner is out of reach: ask again later), or anything else: the
	// offer is refused to this job.
	reserve(ctx context.Context, j *Job, c Candidate) (book.Reservation, error)
	// unreserve gives back what reserve held for an attempt that start
	// did not take, or that has ended.
	unreserve(a *Attempt)
	// resume takes up, after a restart, an attempt in progress.
	resume(ctx context.Context, j *Job, a *Attempt) error
	// start provisions the job's current attempt, a, and records in the
	// job that it started — or that it could not.
	start(ctx context.Context, j *Job, a *Attempt) error
	// executor reads the attempt's status, output and usage and stops it
	// (Runner.Executor).
	executor(a *Attempt) adapters.Adapter
	// status says how the attempt is doing. errWaiting: whoever runs it is
	// out of reach, within the grace; ask again.
	status(ctx context.Context, a *Attempt) (adapters.Status, error)
	// usage is what the ended attempt used, as measured where it ran;
	// adapters.ErrNotFound when nothing was.
	usage(ctx context.Context, a *Attempt) (adapters.Usage, error)
	// stop asks for the attempt to stop: it was cancelled, or spent its
	// budget or its longest run.
	stop(ctx context.Context, a *Attempt) error
	// settle bills the ended attempt j.Attempts[i] and records it in the
	// job. errPending: its record is not ready yet.
	settle(ctx context.Context, j *Job, i int) error
	// release frees what the ended attempt holds where it ran.
	release(ctx context.Context, a *Attempt) error
}

// errUnreachable wraps a reservation that could not be asked for: the
// offer's owner is out of reach.
var errUnreachable = errors.New("jobs: the offer's owner is out of reach")

// placementsOf returns what places attempts on an offer of broker's for
// provider's, or why nothing here can.
func (r *Runner) placementsOf(broker, provider string) (placements, string) {
	if broker != r.cfg.Key.ID().String() {
		exec, err := identity.ParsePrincipalID(broker)
		switch {
		case err != nil:
			return nil, fmt.Sprintf("the offer's broker %q: %v", broker, err)
		case r.cfg.Remote == nil:
			return nil, "offers owned by other brokers are placed through the federation, which this broker is not in"
		}
		return remotePlacements{r: r, exec: exec}, ""
	}
	id, err := identity.ParsePrincipalID(provider)
	if err != nil {
		return nil, fmt.Sprintf("the offer's provider %q: %v", provider, err)
	}
	ad := r.cfg.Adapters[id]
	if ad == nil {
		return nil, "no adapter runs this provider's placements here"
	}
	return localPlacements{r: r, ad: ad}, ""
}

// placementsFor returns what carries attempt a. An attempt on this
// broker's offer whose provider has no adapter here any more can still be
// settled; what needs the adapter says it is missing.
func (r *Runner) placementsFor(a *Attempt) (placements, error) {
	p, why := r.placementsOf(a.Broker, a.Provider)
	if p == nil {
		if a.Broker == r.cfg.Key.ID().String() {
			return localPlacements{r: r}, nil
		}
		return nil, fmt.Errorf("jobs: attempt %s: %s", a.ID, why)
	}
	return p, nil
}

// Executor returns what runs an attempt, for reading its status and
// output: the adapter of the attempt's provider, or, for an attempt on
// another broker's offer, that broker.
func (r *Runner) Executor(a *Attempt) (adapters.Adapter, error) {
	p, err := r.placementsFor(a)
	if err != nil {
		return nil, err
	}
	ad := p.executor(a)
	if ad == nil {
		return nil, fmt.Errorf("jobs: attempt %s: no adapter runs provider %s's placements here", a.ID, a.Provider)
	}
	return ad, nil
}
