package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/match"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// Config wires a Runner.
type Config struct {
	Store   Store
	Book    *book.Book
	Matcher *match.Matcher
	Settler *settlement.Settler
	// Key is this broker's: it signs the usage records of placements it
	// executes.
	Key    *identity.Key
	Region string
	// Fee is this broker's fee rate, a fraction of the provider's charge.
	Fee descriptor.Decimal
	// Adapters run the placements of each provider's offers, by the
	// provider's principal ID.
	Adapters map[identity.PrincipalID]adapters.Adapter
	// Offers returns a registered offer by digest, even one since
	// withdrawn or replaced: usage is rated on the offer placed on.
	Offers func(ctx context.Context, digest string) (*descriptor.Document, error)
	Now    func() time.Time
	Log    *slog.Logger
	// Poll is how often running placements are checked (default 250ms).
	Poll time.Duration
	// Observe, when set, is told how long each match took and how long
	// after an attempt ended its usage was settled.
	Observe Observer
	// Remote reaches the brokers that own other offers in the book; nil
	// when this broker is in no federation, and then only its own offers
	// are placed on.
	Remote Remote
	// Grace is how long an executing broker may be out of reach before
	// its placement is deemed lost (default DefaultGrace).
	Grace time.Duration
	// RequireSigned refuses placements other brokers forward without the
	// tenant's signed submission.
	RequireSigned bool
}

// An Observer is told of timings, for metrics.
type Observer interface {
	Matched(d time.Duration)
	Settled(lag time.Duration)
}

// A Runner moves jobs through their lifecycle.
type Runner struct {
	cfg  Config
	wake chan struct{}

	mu   sync.Mutex
	subs map[string][]chan Transition
	busy map[string]bool // jobs being stepped
	// waiting holds, for each job waiting for capacity, the book's
	// generation when it was last matched: it is matched again only when
	// the book has changed since in a way that can help it.
	waiting map[string]waitState
	// unreachable holds, for each forwarded placement whose executing
	// broker could not be reached, since when.
	unreachable map[string]time.Time
	bill        billing
}

// waitState is what the runner keeps of a job waiting for capacity.
type waitState struct {
	gen   uint64    // the book's generation when it was last matched
	until time.Time // when its queue timeout passes
}

// NewRunner returns a runner; Run drives it.
func NewRunner(cfg Config) *Runner {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll == 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	r := &Runner{cfg: cfg, wake: make(chan struct{}, 1), subs: map[string][]chan Transition{}, busy: map[string]bool{},
		waiting: map[string]waitState{}, unreachable: map[string]time.Time{}}
	r.bill = billing{cfg: &r.cfg}
	return r
}

// SetRemote joins the runner to a federation: other brokers' offers are
// placed on through remote. Call it before Run. (It is set after
// construction because the federation's node, which implements Remote,
// is itself made with the runner, which executes what peers forward.)
func (r *Runner) SetRemote(remote Remote) { r.cfg.Remote = remote }

func (r *Runner) now() time.Time { return r.cfg.Now().UTC() }

// ErrInvalid wraps a job document that cannot be accepted.
var ErrInvalid = errors.New("jobs: invalid job")

// Submit accepts a job for a tenant. doc must be a valid Job document.
func (r *Runner) Submit(ctx context.Context, tenant identity.PrincipalID, doc *descriptor.Document) (*Job, error) {
	return r.SubmitSigned(ctx, tenant, doc, nil)
}

// SubmitSigned accepts a job with the tenant's signed request, which
// travels with it to the broker that runs it.
func (r *Runner) SubmitSigned(ctx context.Context, tenant identity.PrincipalID, doc *descriptor.Document, sub *Submission) (*Job, error) {
	if doc.Job == nil {
		return nil, fmt.Errorf("%w: a %s is not a job", ErrInvalid, doc.Kind)
	}
	now := r.now()
	j := &Job{
		ID: NewID(), Tenant: tenant.String(), Name: doc.Job.Metadata.Name, Digest: doc.Digest,
		Document: doc.Canonical, HomeRegion: r.cfg.Region, CreatedAt: now, Submission: sub,
	}
	j.to(Submitted, now, "")
	if err := r.cfg.Store.Create(ctx, j); err != nil {
		return nil, err
	}
	r.notify(j)
	r.poke()
	return j, nil
}

// Cancel asks for a job to stop. A job that has ended is left as it is.
func (r *Runner) Cancel(ctx context.Context, id string) (*Job, error) {
	for {
		j, err := r.cfg.Store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.State.Ended() || j.CancelRequested {
			return j, nil
		}
		j.CancelRequested = true
		j.UpdatedAt = r.now()
		err = r.cfg.Store.Update(ctx, j)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.poke()
		return j, nil
	}
}

// Subscribe returns a channel of the job's transitions from now on, and a
// function that stops them. The channel is closed when the job settles.
func (r *Runner) Subscribe(id string) (<-chan Transition, func()) {
	ch := make(chan Transition, 16)
	r.mu.Lock()
	r.subs[id] = append(r.subs[id], ch)
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		subs := r.subs[id]
		if i := slices.Index(subs, ch); i >= 0 {
			r.subs[id] = slices.Delete(subs, i, i+1)
			close(ch)
		}
		if len(r.subs[id]) == 0 {
			delete(r.subs, id)
		}
	}
}

// notify passes a job's newest transition to its subscribers; a slow
// subscriber misses it rather than holding up the job (it can read the
// history).
func (r *Runner) notify(j *Job) {
	if len(j.History) == 0 {
		return
	}
	t := j.History[len(j.History)-1]
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range r.subs[j.ID] {
		select {
		case ch <- t:
		default:
		}
	}
	if j.State == Settled {
		for _, ch := range r.subs[j.ID] {
			close(ch)
		}
		delete(r.subs, j.ID)
	}
}

func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run drives every job not yet settled until ctx ends. It first takes the
// reservations back for the placements that were under way when the broker
// last stopped.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.recover(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	tick := time.NewTicker(r.cfg.Poll)
	defer tick.Stop()
	for {
		if err := r.pass(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Log.Error("stepping jobs", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-r.wake:
		}
	}
}

// recover re-reserves capacity for attempts in progress: reservations live
// in the book, in memory.
func (r *Runner) recover(ctx context.Context) error {
	active, err := r.cfg.Store.Active(ctx)
	if err != nil {
		return fmt.Errorf("jobs: reading active jobs: %w", err)
	}
	for _, j := range active {
		a := j.current()
		if a == nil {
			continue
		}
		p, err := r.placementsFor(a)
		if err != nil {
			r.cfg.Log.Warn("resuming after restart", "job", j.ID, "err", err)
			continue
		}
		if err := p.resume(ctx, j, a); err != nil {
			return err
		}
	}
	r.cfg.Log.Info("resumed jobs", "active", len(active))
	return nil
}

// pass steps every active job once, a few at a time.
func (r *Runner) pass(ctx context.Context) error {
	active, err := r.cfg.Store.Active(ctx)
	if err != nil {
		return err
	}
	var g errgroup.Group
	g.SetLimit(8)
	for _, j := range active {
		r.mu.Lock()
		if r.busy[j.ID] {
			r.mu.Unlock()
			continue
		}
		r.busy[j.ID] = true
		r.mu.Unlock()
		g.Go(func() error {
			defer func() { r.mu.Lock(); delete(r.busy, j.ID); r.mu.Unlock() }()
			if err := r.step(ctx, j); err != nil && ctx.Err() == nil {
				r.cfg.Log.Warn("job step failed; will retry", "job", j.ID, "state", j.State, "err", err)
			}
			return nil
		})
	}
	return g.Wait()
}

// step advances a job as far as it can go now.
func (r *Runner) step(ctx context.Context, j *Job) error {
	for range 16 {
		before := j.Version
		if err := r.advance(ctx, j); err != nil {
			return err
		}
		if j.Version == before || j.State == Settled {
			return nil
		}
	}
	return nil
}

// update applies change to j and stores it, reading the job again and
// reapplying the change if another writer (a cancel) got there first.
func (r *Runner) update(ctx context.Context, j *Job, change func(*Job)) error {
	for {
		next := j.Clone()
		change(next)
		next.UpdatedAt = r.now()
		err := r.cfg.Store.Update(ctx, next)
		if err == nil {
			*j = *next
			r.notify(j)
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
		fresh, err := r.cfg.Store.Get(ctx, j.ID)
		if err != nil {
			return err
		}
		*j = *fresh
	}
}

func (j *Job) doc() (*descriptor.Document, error) {
	return descriptor.Parse(j.ID+".json", j.Document)
}

// Instances is how many instances of an offer the job takes: its nodes,
// for each replica of a service (descriptor.Job.Instances).
func (j *Job) Instances() int {
	var doc struct {
		Nodes   int `json:"nodes"`
		Service *struct {
			Replicas int `json:"replicas"`
		} `json:"service"`
	}
	if err := jsonUnmarshal(j.Document, &doc); err != nil {
		return 1
	}
	n := max(doc.Nodes, 1)
	if doc.Service != nil {
		n *= max(doc.Service.Replicas, 1)
	}
	return n
}

// reservationTTL bounds how long a reservation outlives a broker that
// stopped without releasing it.
const reservationTTL = 30 * 24 * time.Hour

// advance makes one step of a job's lifecycle.
func (r *Runner) advance(ctx context.Context, j *Job) error {
	now := r.now()
	switch j.State {
	case Submitted:
		if j.CancelRequested {
			r.mu.Lock()
			delete(r.waiting, j.ID)
			r.mu.Unlock()
			return r.update(ctx, j, func(j *Job) { j.end(Cancelled, now, "cancelled before it was placed") })
		}
		return r.match(ctx, j)
	case Matched:
		if j.CancelRequested {
			return r.update(ctx, j, func(j *Job) { j.end(Cancelled, now, "cancelled before it was placed") })
		}
		return r.reserve(ctx, j)
	case Reserved:
		return r.provision(ctx, j)
	case Provisioning, Running:
		return r.watch(ctx, j)
	case Succeeded, Failed, Cancelled:
		return r.settle(ctx, j)
	}
	return nil
}

// match finds the job's candidates. A job waiting for capacity is matched
// again only when the book has changed in a way that can help it
// (book.Generation); until then only its queue timeout is checked.
func (r *Runner) match(ctx context.Context, j *Job) error {
	gen := r.cfg.Book.Generation()
	r.mu.Lock()
	seen, waiting := r.waiting[j.ID]
	r.mu.Unlock()
	if waiting && seen.gen == gen && r.now().Before(seen.until) {
		return nil // nothing that could help it has happened
	}
	r.mu.Lock()
	delete(r.waiting, j.ID)
	r.mu.Unlock()
	doc, err := j.doc()
	if err != nil {
		return r.update(ctx, j, func(j *Job) { j.end(Failed, r.now(), "the stored job no longer parses: "+err.Error()) })
	}
	if waiting && seen.gen == gen {
		return r.wait(ctx, j, doc, j.History[len(j.History)-1].Detail) // its queue timeout has passed
	}
	exclude := map[string]bool{}
	for _, o := range j.Excluded {
		exclude[o] = true
	}
	start := time.Now()
	res, err := r.cfg.Matcher.Match(doc, match.Options{Exclude: exclude})
	if r.cfg.Observe != nil {
		r.cfg.Observe.Matched(time.Since(start))
	}
	var nm *match.NoMatchError
	if errors.As(err, &nm) {
		// The explanation is computed now, not when the match ran: capacity
		// may have freed up in between (then match again at once).
		x := nm.Explanation()
		if x.Feasible > 0 {
			return nil
		}
		if busy := x.Summary[match.InsufficientQuantity]; busy > 0 {
			// Offers that fit are busy: wait for capacity.
			r.waitAt(j, doc, gen)
			return r.wait(ctx, j, doc, fmt.Sprintf("waiting for capacity: %d offer(s) that fit are busy", busy))
		}
	}
	if errors.As(err, &nm) {
		detail := "no offer can serve the job: " + strings.TrimPrefix(nm.Error(), "match: ")
		if len(j.Excluded) > 0 {
			detail = fmt.Sprintf("no offer left to try after %d refused or lost it: %s", len(j.Excluded), strings.TrimPrefix(nm.Error(), "match: "))
		}
		return r.update(ctx, j, func(j *Job) { j.end(Failed, r.now(), detail) })
	}
	if err != nil {
		return r.update(ctx, j, func(j *Job) { j.end(Failed, r.now(), err.Error()) })
	}
	var cands []Candidate
	for _, c := range res.Candidates {
		e := c.Entry
		cands = append(cands, Candidate{
			Offer: e.Name, Digest: e.Digest(), Broker: e.Owner.String(), Provider: e.Attrs.Provider,
			Region: e.Attrs.Region, Estimate: &Money{Amount: c.Parts.Cost, Currency: c.Parts.Currency},
		})
	}
	return r.update(ctx, j, func(j *Job) {
		j.Candidates = cands
		j.to(Matched, r.now(), fmt.Sprintf("%d candidates; best %s in %s", len(cands), cands[0].Offer, cands[0].Region))
	})
}

// waitAt notes that a job waits for capacity as of book generation gen.
func (r *Runner) waitAt(j *Job, doc *descriptor.Document, gen uint64) {
	r.mu.Lock()
	r.waiting[j.ID] = waitState{gen: gen, until: j.CreatedAt.Add(queueLimit(doc))}
	r.mu.Unlock()
}

// queueLimit is how long a job may wait for capacity.
func queueLimit(doc *descriptor.Document) time.Duration {
	if limit := doc.Job.Timeouts.Queue.Std(); limit > 0 {
		return limit
	}
	return DefaultQueueTimeout
}

// DefaultQueueTimeout is how long a job waits for busy capacity when its
// timeouts.queue does not say.
const DefaultQueueTimeout = time.Hour

// wait keeps a job waiting for capacity, noting it once, and fails it when
// it has waited past its queue timeout.
func (r *Runner) wait(ctx context.Context, j *Job, doc *descriptor.Document, note string) error {
	limit := queueLimit(doc)
	if r.now().Sub(j.CreatedAt) > limit {
		r.mu.Lock()
		delete(r.waiting, j.ID)
		r.mu.Unlock()
		return r.update(ctx, j, func(j *Job) {
			j.end(Failed, r.now(), fmt.Sprintf("no capacity freed up within the queue timeout of %s", limit))
		})
	}
	if last := j.History[len(j.History)-1]; last.Detail == note {
		return nil
	}
	return r.update(ctx, j, func(j *Job) {
		j.History = append(j.History, Transition{State: j.State, At: r.now(), Detail: note})
	})
}

// reserve asks each candidate's owner, in order, for capacity: this broker
// when it owns the offer. Refused candidates are excluded; when none is
// left, the job is matched again without them.
func (r *Runner) reserve(ctx context.Context, j *Job) error {
	busy := 0
	for _, c := range j.Candidates {
		if slices.Contains(j.Excluded, c.Offer) {
			continue
		}
		var res book.Reservation
		p, refusal := r.placementsOf(c.Broker, c.Provider)
		if p != nil {
			var err error
			res, err = p.reserve(ctx, j, c)
			switch {
			case errors.Is(err, book.ErrInsufficient):
				busy++ // not a refusal: it may free up
				continue
			case errors.Is(err, errUnreachable):
				// Try the next candidate now, and this one again when the
				// job is matched again.
				r.cfg.Log.Warn("reserving at another broker", "job", j.ID, "offer", c.Offer, "broker", c.Broker, "err", err)
				busy++
				continue
			case err != nil:
				refusal = err.Error()
			}
		}
		if refusal != "" {
			if err := r.update(ctx, j, func(j *Job) {
				j.Excluded = append(j.Excluded, c.Offer)
				j.History = append(j.History, Transition{State: Matched, At: r.now(), Detail: c.Offer + " refused: " + refusal})
			}); err != nil {
				return err
			}
			continue
		}
		err := r.update(ctx, j, func(j *Job) {
			n := len(j.Attempts) + 1
			j.Attempts = append(j.Attempts, Attempt{
				ID: fmt.Sprintf("%s-%d", j.ID, n), Offer: c.Offer, OfferDigest: c.Digest, Broker: c.Broker,
				Provider: c.Provider, Region: c.Region, Reservation: res.ID,
			})
			j.to(Reserved, r.now(), fmt.Sprintf("%d instance(s) of %s reserved", j.Instances(), c.Offer))
		})
		if err != nil {
			p.unreserve(&Attempt{Reservation: res.ID})
			return err
		}
		return r.hold(ctx, j, c)
	}
	if busy > 0 {
		doc, err := j.doc()
		if err != nil {
			return err
		}
		return r.wait(ctx, j, doc, fmt.Sprintf("waiting for capacity: %d candidate(s) busy", busy))
	}
	// Everyone asked refused: match again without them.
	return r.update(ctx, j, func(j *Job) {
		j.Candidates = nil
		j.to(Submitted, r.now(), "every candidate refused; matching again")
	})
}

// hold reserves the estimated cost of the job's budget, once.
func (r *Runner) hold(ctx context.Context, j *Job, c Candidate) error {
	if j.Hold != nil {
		return nil
	}
	h, err := r.bill.placeHold(ctx, j, c)
	if err != nil || h == nil {
		return err
	}
	return r.update(ctx, j, func(j *Job) { j.Hold = h })
}

// placement is what the adapter runs for an attempt.
func (j *Job) placement(a *Attempt) (adapters.Placement, error) {
	doc, err := j.doc()
	if err != nil {
		return adapters.Placement{}, err
	}
	job := doc.Job
	return adapters.Placement{
		ID: a.ID, Job: j.ID, Tasks: job.Tasks, Nodes: max(job.Nodes, 1), Service: job.Service, Resources: job.Resources,
		Timeout: job.Timeouts.Run.Std(),
	}, nil
}

// provision starts the current attempt.
func (r *Runner) provision(ctx context.Context, j *Job) error {
	a := j.current()
	if a == nil {
		return r.update(ctx, j, func(j *Job) { j.to(Matched, r.now(), "no attempt to provision; placing again") })
	}
	if j.Hold == nil {
		// The hold placed at reservation did not take: try again.
		for _, c := range j.Candidates {
			if c.Offer == a.Offer {
				if err := r.hold(ctx, j, c); err != nil {
					return err
				}
				a = j.current()
				break
			}
		}
	}
	p, err := r.placementsFor(a)
	if err != nil {
		return err
	}
	return p.start(ctx, j, a)
}

// watch follows the current attempt until it ends.
func (r *Runner) watch(ctx context.Context, j *Job) error {
	if n := len(j.Attempts); n > 0 && j.Attempts[n-1].Ended() {
		// Its end was recorded, but not what followed (the broker stopped
		// in between): carry on from the record.
		return r.conclude(ctx, j)
	}
	a := j.current()
	if a == nil {
		return r.update(ctx, j, func(j *Job) { j.to(Matched, r.now(), "no attempt running; placing again") })
	}
	p, err := r.placementsFor(a)
	if err != nil {
		return err
	}
	if j.CancelRequested {
		if err := p.stop(ctx, a); err != nil {
			return err
		}
	}
	st, err := p.status(ctx, a)
	if errors.Is(err, errWaiting) {
		return nil
	}
	if errors.Is(err, adapters.ErrNotFound) || errors.Is(err, ErrNotFound) {
		st = adapters.Status{State: adapters.Lost, Detail: "the backend does not know the placement"}
	} else if err != nil {
		return err
	}
	if !st.State.Ended() {
		if j.State == Provisioning && len(st.Tasks) > 0 {
			end, err := r.bill.budgetEnd(ctx, j, a, st.Tasks[0].Started)
			if err != nil {
				return err
			}
			return r.update(ctx, j, func(j *Job) {
				a := j.current()
				a.StartedAt, a.BudgetEnd = st.Tasks[0].Started, end
				j.to(Running, r.now(), "task "+st.Tasks[0].Name+" started")
			})
		}
		if !slices.Equal(a.Endpoints, st.Endpoints) {
			if err := r.update(ctx, j, func(j *Job) {
				a := j.current()
				for _, note := range readyNotes(a.Endpoints, st.Endpoints) {
					j.History = append(j.History, Transition{State: j.State, At: r.now(), Detail: note})
				}
				a.Endpoints = st.Endpoints
			}); err != nil {
				return err
			}
		}
		// Stop in time: the check comes every poll, and the stop takes a
		// moment; what runs past BudgetEnd is not billed anyway.
		if !a.BudgetEnd.IsZero() && !a.BudgetStopped && !r.now().Add(2*r.cfg.Poll).Before(a.BudgetEnd) {
			if err := r.update(ctx, j, func(j *Job) {
				j.current().BudgetStopped = true
				j.History = append(j.History, Transition{State: Running, At: r.now(),
					Detail: "stopping: the job's budget is spent at " + a.BudgetEnd.UTC().Format(time.RFC3339Nano)})
			}); err != nil {
				return err
			}
			if err := p.stop(ctx, a); err != nil {
				return err
			}
		}
		// An attempt is billed in one usage record, which covers at most
		// settlement.MaxRecordPeriod: it is stopped then (spec/jobs.md §2).
		if limit := a.StartedAt.Add(settlement.MaxRecordPeriod); !a.StartedAt.IsZero() && !a.LimitStopped && !a.BudgetStopped && !r.now().Add(2*r.cfg.Poll).Before(limit) {
			if err := r.update(ctx, j, func(j *Job) {
				j.current().LimitStopped = true
				j.History = append(j.History, Transition{State: Running, At: r.now(),
					Detail: fmt.Sprintf("stopping: an attempt runs at most %s, the longest usage record, which ends at %s", longestRecord, limit.UTC().Format(time.RFC3339Nano))})
			}); err != nil {
				return err
			}
			if err := p.stop(ctx, a); err != nil {
				return err
			}
		}
		return nil
	}
	return r.finish(ctx, j, a, p, st)
}

// longestRecord is settlement.MaxRecordPeriod in words.
const longestRecord = "31 days"

// errWaiting: an executing broker is out of reach, within its grace.
var errWaiting = errors.New("jobs: waiting for an executing broker")

// reachable passes on a forwarded placement's status, counting how long
// its executing broker has been out of reach: past the grace period the
// placement is deemed lost, and the job's recovery policy decides what
// follows. Its usage is still taken in when the broker is reached again.
func (r *Runner) reachable(a *Attempt, st adapters.Status, err error) (adapters.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil || errors.Is(err, ErrNotFound) {
		delete(r.unreachable, a.ID)
		return st, err
	}
	since, ok := r.unreachable[a.ID]
	if !ok {
		since = r.now()
		r.unreachable[a.ID] = since
		r.cfg.Log.Warn("executing broker out of reach", "attempt", a.ID, "broker", a.Broker, "grace", r.cfg.Grace, "err", err)
	}
	if r.now().Sub(since) < r.cfg.Grace {
		return st, errWaiting
	}
	delete(r.unreachable, a.ID)
	return adapters.Status{State: adapters.Lost, Detail: fmt.Sprintf("broker %s was out of reach for %s (%v)", a.Broker, r.cfg.Grace, err)}, nil
}

// readyNotes says which replicas of a service became ready between two
// readings of its endpoints, for the job's history.
func readyNotes(before, now []adapters.Endpoint) []string {
	was := map[int]bool{}
	for _, ep := range before {
		was[ep.Replica] = was[ep.Replica] || ep.Ready
	}
	var notes []string
	noted := map[int]bool{}
	for _, ep := range now {
		if ep.Ready && !was[ep.Replica] && !noted[ep.Replica] {
			noted[ep.Replica] = true
			var at []string
			for _, e := range now {
				if e.Replica == ep.Replica {
					at = append(at, cmp.Or(e.URL, e.Address))
				}
			}
			notes = append(notes, fmt.Sprintf("replica %d ready at %s", ep.Replica, strings.Join(at, ", ")))
		}
	}
	return notes
}

// finish records how an attempt ended and what it used, then concludes it.
func (r *Runner) finish(ctx context.Context, j *Job, a *Attempt, p placements, st adapters.Status) error {
	u, err := p.usage(ctx, a)
	if err != nil && !errors.Is(err, adapters.ErrNotFound) {
		return err
	}
	now := r.now()
	var usage *Usage
	if !u.Start.IsZero() {
		usage = &Usage{Start: u.Start.UTC(), End: u.End.UTC(), CPU: u.CPU, PeakMemory: u.PeakMemory}
	}
	// First persist how it ended: the usage record is built from this.
	if err := r.update(ctx, j, func(j *Job) {
		a := j.current()
		if j.State == Provisioning && len(st.Tasks) > 0 && !st.Tasks[0].Started.IsZero() {
			// The task started and ended between two polls: the history
			// still says it ran.
			j.to(Running, now, "task "+st.Tasks[0].Name+" started at "+st.Tasks[0].Started.UTC().Format(time.RFC3339Nano))
		}
		a.EndedAt, a.State, a.ExitCode, a.Detail, a.Usage = now, string(st.State), st.ExitCode(), st.Detail, usage
		a.Endpoints = nil
		if a.StartedAt.IsZero() && len(st.Tasks) > 0 {
			a.StartedAt = st.Tasks[0].Started
		}
	}); err != nil {
		return err
	}
	return r.conclude(ctx, j)
}

// conclude settles the last attempt's usage, frees what it held, and
// decides what comes next — the end, or a restart under the job's recovery
// policy — from what the job records of the attempt alone.
func (r *Runner) conclude(ctx context.Context, j *Job) error {
	i := len(j.Attempts) - 1
	a := &j.Attempts[i]
	p, err := r.placementsFor(a)
	if err != nil {
		return err
	}
	if err := r.settleAttempt(ctx, j, i); err != nil {
		if !errors.Is(err, errNotDelivered) {
			return err
		}
		// The executing broker delivers the record when it can; the job
		// does not wait for it to go on, only to settle.
		if !errors.Is(err, errPending) {
			r.cfg.Log.Info("usage of a forwarded placement not delivered yet", "job", j.ID, "attempt", a.ID, "err", err)
		}
	}
	a = &j.Attempts[i]
	if err := p.release(ctx, a); err != nil {
		return err
	}
	p.unreserve(a)
	doc, err := j.doc()
	if err != nil {
		return err
	}
	st := adapters.Status{State: adapters.State(a.State), Detail: a.Detail}
	exit := a.ExitCode
	rec := recoveryOf(j, doc)
	switch {
	case st.State == adapters.Succeeded:
		return r.update(ctx, j, func(j *Job) { j.end(Succeeded, r.now(), "") })
	case a.BudgetStopped:
		b := doc.Job.Budget
		return r.update(ctx, j, func(j *Job) {
			j.end(Failed, r.now(), fmt.Sprintf("stopped at its budget of %s %s", b.MaxTotal, b.Currency))
		})
	case a.LimitStopped:
		return r.update(ctx, j, func(j *Job) {
			j.end(Failed, r.now(), fmt.Sprintf("stopped after %s, the longest an attempt runs (one usage record)", longestRecord))
		})
	case st.State == adapters.Cancelled || j.CancelRequested:
		return r.update(ctx, j, func(j *Job) { j.end(Cancelled, r.now(), "cancelled while it ran") })
	case st.State == adapters.Failed && slices.Contains(rec.OnExitCodes, exit) && j.Restarts < rec.MaxRestarts:
		// Restart on the same offer.
		res, err := p.reserve(ctx, j, Candidate{Offer: a.Offer, Broker: a.Broker, Provider: a.Provider})
		if errors.Is(err, book.ErrInsufficient) {
			// Another job took the instances this attempt freed: the offer
			// is busy, not refused. Match again, waiting if need be.
			return r.update(ctx, j, func(j *Job) {
				j.Restarts++
				j.Candidates = nil
				j.to(Submitted, r.now(), fmt.Sprintf("exit code %d: restart %d of %d when capacity frees up (%v)", exit, j.Restarts, rec.MaxRestarts, err))
			})
		}
		if err != nil {
			return r.update(ctx, j, func(j *Job) {
				j.Restarts++
				j.Excluded = append(j.Excluded, a.Offer)
				j.Candidates = nil
				j.to(Submitted, r.now(), fmt.Sprintf("exit code %d: restart %d of %d elsewhere (%v)", exit, j.Restarts, rec.MaxRestarts, err))
			})
		}
		return r.update(ctx, j, func(j *Job) {
			j.Restarts++
			prev := j.Attempts[len(j.Attempts)-1]
			j.Attempts = append(j.Attempts, Attempt{
				ID: fmt.Sprintf("%s-%d", j.ID, len(j.Attempts)+1), Offer: prev.Offer, OfferDigest: prev.OfferDigest,
				Broker: prev.Broker, Provider: prev.Provider, Region: prev.Region, Reservation: res.ID,
			})
			j.to(Reserved, r.now(), fmt.Sprintf("exit code %d: restart %d of %d", exit, j.Restarts, rec.MaxRestarts))
		})
	case st.State == adapters.Lost && j.Restarts < rec.MaxRestarts:
		// Provider lost: the next candidate.
		return r.update(ctx, j, func(j *Job) {
			j.Restarts++
			j.Excluded = append(j.Excluded, a.Offer)
			j.to(Matched, r.now(), fmt.Sprintf("placement lost (%s): restart %d of %d on the next candidate", st.Detail, j.Restarts, rec.MaxRestarts))
		})
	default:
		detail := st.Detail
		if detail == "" {
			detail = fmt.Sprintf("exit code %d", exit)
		}
		return r.update(ctx, j, func(j *Job) { j.end(Failed, r.now(), string(st.State)+": "+detail) })
	}
}

// settle bills every attempt not yet billed, releases the hold and closes
// the job.
func (r *Runner) settle(ctx context.Context, j *Job) error {
	for i := range j.Attempts {
		if !j.Attempts[i].Settled {
			if err := r.settleAttempt(ctx, j, i); errors.Is(err, errPending) {
				return nil // delivered later
			} else if err != nil {
				return err
			}
		}
	}
	if heldForHome(j) {
		return nil
	}
	if j.Hold != nil && r.cfg.Settler != nil {
		if _, err := r.cfg.Settler.ReleaseHold(ctx, j.ID); err != nil && !errors.Is(err, settlement.ErrNotFound) {
			return err
		}
	}
	var cost *Money
	for _, a := range j.Attempts {
		if a.Charge == nil {
			continue
		}
		if cost == nil {
			cost = &Money{Currency: a.Charge.Currency}
		}
		if a.Charge.Currency == cost.Currency {
			cost.Amount += a.Charge.Amount
		}
	}
	return r.update(ctx, j, func(j *Job) {
		j.Cost = cost
		detail := "nothing to bill"
		if cost != nil {
			detail = fmt.Sprintf("charged %s %s", cost.Amount.Decimal(), cost.Currency)
		}
		j.to(Settled, r.now(), detail)
	})
}

// settleAttempt bills an ended attempt, once.
func (r *Runner) settleAttempt(ctx context.Context, j *Job, i int) error {
	a := &j.Attempts[i]
	if a.Settled {
		return nil
	}
	if !a.Ended() {
		return fmt.Errorf("jobs: attempt %s has not ended", a.ID)
	}
	p, err := r.placementsFor(a)
	if err != nil {
		return err
	}
	return p.settle(ctx, j, i)
}
