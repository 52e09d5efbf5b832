package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/identity"
)

// The two roles of a broker in a placement (spec/protocol.md §5):
//
//   - the home broker took the tenant's job: it matches it, holds the
//     tenant's budget, follows the placement, takes in the usage record
//     and charges the tenant;
//   - the executing broker owns the offer placed on: it grants the lease,
//     provisions the placement on its provider's adapter, watches and
//     meters it, and signs its usage record.
//
// When one broker is both, the runner does everything itself. When the
// offer is another broker's, the home side reaches it through a Remote,
// and the executing side keeps the forwarded placement as a job of its own
// (Job.Home names the home broker), so that it is persisted, resumed after
// a restart and settled like any other.

// A Remote reaches the brokers that own the offers this broker places
// jobs on: the federation implements it.
type Remote interface {
	// Reserve asks the offer's owner for a lease of count instances for
	// ttl. Errors wrap book.ErrInsufficient, book.ErrUnknownOffer or
	// ErrRefused when the owner says so.
	Reserve(ctx context.Context, owner identity.PrincipalID, offer string, count int, holder string, ttl time.Duration) (book.Reservation, error)
	// Release gives a lease back before it was confirmed.
	Release(ctx context.Context, owner identity.PrincipalID, id string) error
	// Forward hands a placement to the broker holding its lease, which
	// confirms the lease and runs it. A second call for the same placement
	// does nothing.
	Forward(ctx context.Context, exec identity.PrincipalID, f Forward) error
	// Status says how a forwarded placement is doing.
	Status(ctx context.Context, exec identity.PrincipalID, placement string) (RemoteStatus, error)
	// Logs reads up to limit bytes of a task's stream from offset.
	Logs(ctx context.Context, exec identity.PrincipalID, q LogRequest) ([]byte, error)
	// Cancel asks for the placement to stop.
	Cancel(ctx context.Context, exec identity.PrincipalID, placement string) error
	// Usage asks for the placement's signed usage record.
	Usage(ctx context.Context, exec identity.PrincipalID, placement string) (Delivery, error)
	// Ack tells the executing broker that the record was taken in, so
	// that it stops keeping it for delivery.
	Ack(ctx context.Context, exec identity.PrincipalID, placement, record string) error
}

// ErrRefused is a forwarded placement the executing broker will not run,
// or a request it will not answer, for a reason it gives.
var ErrRefused = errors.New("jobs: refused")

// errPending: the executing broker has not yet signed the usage record.
var errPending = errors.New("jobs: the usage record is not ready")

// A Forward is what the home broker sends the executing broker of a
// placement.
type Forward struct {
	Placement   string          `json:"placement"` // the attempt's ID
	Job         string          `json:"job"`       // the home broker's job ID
	Tenant      string          `json:"tenant"`
	Document    json.RawMessage `json:"document"` // the job document, canonical JSON
	Offer       string          `json:"offer"`
	OfferDigest string          `json:"offerDigest"`
	Reservation string          `json:"reservation"` // the lease the owner granted
	HomeRegion  string          `json:"homeRegion"`
	HomeFee     string          `json:"homeFee"` // the home broker's fee rate
	// BudgetLeft is what remains of the job's maxTotal after its earlier
	// attempts; the executing broker stops the placement before it spends
	// more. Nil: no total budget in the offer's currency.
	BudgetLeft *Money `json:"budgetLeft,omitempty"`
	// Submission is the tenant's signed request, when the job came by
	// one: the executing broker checks it.
	Submission *Submission `json:"submission,omitempty"`
}

// A RemoteStatus is how a forwarded placement is doing.
type RemoteStatus struct {
	State     adapters.State        `json:"state"`
	Tasks     []adapters.TaskStatus `json:"tasks,omitempty"`
	Detail    string                `json:"detail,omitempty"`
	Endpoints []adapters.Endpoint   `json:"endpoints,omitempty"`
	// Usage is what it used, once it has ended.
	Usage *Usage `json:"usage,omitempty"`
}

// A LogRequest names a slice of a forwarded placement's output.
type LogRequest struct {
	Placement string `json:"placement"`
	Task      string `json:"task"`
	Node      int    `json:"node"`
	Stream    string `json:"stream"`
	Offset    int64  `json:"offset"`
	Limit     int    `json:"limit"`
}

// A Delivery is a forwarded placement's usage record, as the executing
// broker signed it.
type Delivery struct {
	// Pending: the placement has not ended, or its record is not signed
	// yet. Ask again.
	Pending bool `json:"pending,omitempty"`
	// Record is the record's ID, and Envelope the signed record; both
	// empty when nothing ran, so there is nothing to bill.
	Record   string `json:"record,omitempty"`
	Envelope []byte `json:"envelope,omitempty"`
}

// LeaseHolder is how an owner names the holder of a lease it granted a
// peer: the peer's DID, a space, and the peer's reference (a job ID).
func LeaseHolder(peer identity.PrincipalID, ref string) string {
	return peer.String() + " " + ref
}

// LeaseTTL is how long a lease on another broker's offer lasts before the
// job is forwarded, which confirms it.
const LeaseTTL = 2 * time.Minute

// DefaultGrace is how long a home broker waits for an executing broker it
// cannot reach before it deems the placement lost.
const DefaultGrace = 2 * time.Minute

var placementID = regexp.MustCompile(`^j-[a-z2-7]{26}-[1-9][0-9]{0,5}$`)
var jobID = regexp.MustCompile(`^j-[a-z2-7]{26}$`)

// remoteAdapter presents a forwarded placement as an adapter, so that the
// home broker follows it as it follows its own.
type remoteAdapter struct {
	r    *Runner
	exec identity.PrincipalID
}

func (ra remoteAdapter) Capacity(context.Context) (adapters.Capacity, error) {
	return adapters.Capacity{}, nil
}

func (ra remoteAdapter) Provision(context.Context, adapters.Placement) error {
	return errors.New("jobs: a forwarded placement is provisioned by forwarding it")
}

func (ra remoteAdapter) Status(ctx context.Context, id string) (adapters.Status, error) {
	st, err := ra.r.cfg.Remote.Status(ctx, ra.exec, id)
	if err != nil {
		return adapters.Status{}, err
	}
	return adapters.Status{State: st.State, Tasks: st.Tasks, Detail: st.Detail, Endpoints: st.Endpoints}, nil
}

func (ra remoteAdapter) Logs(ctx context.Context, id, task string, node int, stream string) (io.ReadCloser, error) {
	// The first chunk is read now, so that a placement with no such
	// output is an error here, as it is from an adapter.
	first, err := ra.r.cfg.Remote.Logs(ctx, ra.exec, LogRequest{Placement: id, Task: task, Node: node, Stream: stream, Limit: LogChunk})
	if err != nil {
		return nil, err
	}
	return &remoteLog{ctx: ctx, ra: ra, q: LogRequest{Placement: id, Task: task, Node: node, Stream: stream, Offset: int64(len(first)), Limit: LogChunk}, buf: first}, nil
}

func (ra remoteAdapter) Usage(ctx context.Context, id string) (adapters.Usage, error) {
	st, err := ra.r.cfg.Remote.Status(ctx, ra.exec, id)
	if err != nil || st.Usage == nil {
		// What the home broker bills is the signed record; this is only
		// for the job's own account of the attempt.
		return adapters.Usage{}, adapters.ErrNotFound
	}
	return adapters.Usage{Start: st.Usage.Start, End: st.Usage.End, CPU: st.Usage.CPU, PeakMemory: st.Usage.PeakMemory}, nil
}

func (ra remoteAdapter) Release(ctx context.Context, id string) error {
	return ra.r.cfg.Remote.Cancel(ctx, ra.exec, id)
}

// LogChunk is the most output one log request carries.
const LogChunk = 256 << 10

// remoteLog reads a forwarded placement's output a chunk at a time. It
// seeks forward without reading what it skips.
type remoteLog struct {
	ctx context.Context
	ra  remoteAdapter
	q   LogRequest
	buf []byte
	eof bool
}

func (l *remoteLog) Read(p []byte) (int, error) {
	for len(l.buf) == 0 {
		if l.eof {
			return 0, io.EOF
		}
		chunk, err := l.ra.r.cfg.Remote.Logs(l.ctx, l.ra.exec, l.q)
		if err != nil {
			return 0, err
		}
		if len(chunk) == 0 {
			l.eof = true
			continue
		}
		l.q.Offset += int64(len(chunk))
		l.buf = chunk
	}
	n := copy(p, l.buf)
	l.buf = l.buf[n:]
	return n, nil
}

// Seek moves forward from the start or from where reading is; the output
// before it is not fetched.
func (l *remoteLog) Seek(offset int64, whence int) (int64, error) {
	pos := l.q.Offset - int64(len(l.buf))
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += pos
	default:
		return pos, errors.New("jobs: a remote log seeks from its start or its position")
	}
	if offset < pos {
		return pos, errors.New("jobs: a remote log does not seek back")
	}
	if skip := offset - pos; skip <= int64(len(l.buf)) {
		l.buf = l.buf[skip:]
	} else {
		l.buf, l.q.Offset, l.eof = nil, offset, false
	}
	return offset, nil
}

func (l *remoteLog) Close() error { return nil }

// remotePlacements places attempts on another broker's offers: a lease
// at the owner holds the instances, the placement is forwarded to it and
// followed there (the owner is then its executing broker), and the usage
// record the owner signs is taken in.
type remotePlacements struct {
	r    *Runner
	exec identity.PrincipalID // the offer's owner
}

// reserve asks the owner for a lease that forwarding confirms. A refusal
// or an unknown offer is the owner's word; any other failure is taken for
// an outage (errUnreachable), so that the offer is asked again later.
func (p remotePlacements) reserve(ctx context.Context, j *Job, c Candidate) (book.Reservation, error) {
	res, err := p.r.cfg.Remote.Reserve(ctx, p.exec, c.Offer, j.Instances(), j.ID, LeaseTTL)
	if err != nil && !errors.Is(err, book.ErrInsufficient) && !errors.Is(err, ErrRefused) && !errors.Is(err, book.ErrUnknownOffer) {
		return res, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	return res, err
}

// unreserve gives back a lease never confirmed (else it runs out); a
// forwarded placement holds its lease until it ends there.
func (p remotePlacements) unreserve(a *Attempt) {
	if a.Reservation == "" || !a.ProvisionedAt.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.r.cfg.Remote.Release(ctx, p.exec, a.Reservation); err != nil {
		p.r.cfg.Log.Info("giving a lease back; it will run out instead", "broker", p.exec, "reservation", a.Reservation, "err", err)
	}
}

// resume does nothing: the owner keeps its leases across restarts.
func (remotePlacements) resume(context.Context, *Job, *Attempt) error { return nil }

func (p remotePlacements) executor(*Attempt) adapters.Adapter {
	return remoteAdapter(p)
}

func (p remotePlacements) status(ctx context.Context, a *Attempt) (adapters.Status, error) {
	st, err := remoteAdapter(p).Status(ctx, a.ID)
	return p.r.reachable(a, st, err)
}

func (p remotePlacements) usage(ctx context.Context, a *Attempt) (adapters.Usage, error) {
	return remoteAdapter(p).Usage(ctx, a.ID)
}

// stop asks the executing broker to stop the placement. What fails is
// asked again at the next poll while the job wants it stopped; the
// executing broker enforces the job's budget itself.
func (p remotePlacements) stop(ctx context.Context, a *Attempt) error {
	if err := p.r.cfg.Remote.Cancel(ctx, p.exec, a.ID); err != nil && !errors.Is(err, ErrNotFound) {
		p.r.cfg.Log.Info("asking an executing broker to stop a placement", "attempt", a.ID, "broker", p.exec, "err", err)
	}
	return nil
}

// release does nothing: the executing broker frees the placement when it
// ends there.
func (remotePlacements) release(context.Context, *Attempt) error { return nil }

// settle takes in the usage record the executing broker signed. It may
// come later than the attempt's end: the error then wraps errNotDelivered
// (and errPending while the record is not signed yet), and the job goes on
// without waiting for it, only to settle.
func (p remotePlacements) settle(ctx context.Context, j *Job, i int) error {
	if err := p.r.settleRemote(ctx, j, i, p.exec); err != nil {
		return fmt.Errorf("%w: %w", errNotDelivered, err)
	}
	return nil
}

// errNotDelivered: a forwarded placement's usage record has not been
// taken in yet.
var errNotDelivered = errors.New("jobs: the usage record of a forwarded placement is not taken in yet")

// start hands the attempt to the broker that owns its offer.
func (p remotePlacements) start(ctx context.Context, j *Job, a *Attempt) error {
	r := p.r
	var err error
	f := Forward{
		Placement: a.ID, Job: j.ID, Tenant: j.Tenant, Document: j.Document, Offer: a.Offer, OfferDigest: a.OfferDigest,
		Reservation: a.Reservation, HomeRegion: j.HomeRegion, HomeFee: r.cfg.Fee.String(), Submission: j.Submission,
	}
	if f.BudgetLeft, err = r.bill.budgetLeft(ctx, j, a); err != nil {
		return err
	}
	err = r.cfg.Remote.Forward(ctx, p.exec, f)
	var again string
	switch {
	case errors.Is(err, book.ErrNoReservation):
		again = "its lease ran out before the job was forwarded; reserving again"
	case errors.Is(err, ErrRefused):
		again = "refused: " + err.Error()
	case err != nil:
		return err // unreachable for now: the lease outlives a short outage
	}
	if again != "" {
		if errors.Is(err, ErrRefused) {
			p.unreserve(a)
		}
		// Nothing ran: the attempt is dropped, and the job placed again.
		return r.update(ctx, j, func(j *Job) {
			a := j.current()
			j.Attempts = j.Attempts[:len(j.Attempts)-1]
			if strings.HasPrefix(again, "refused") {
				j.Excluded = append(j.Excluded, a.Offer)
			}
			j.to(Matched, r.now(), a.Offer+" at broker "+a.Broker+": "+again)
		})
	}
	return r.update(ctx, j, func(j *Job) {
		j.current().ProvisionedAt = r.now()
		j.to(Provisioning, r.now(), "placement "+a.ID+" forwarded to broker "+a.Broker+" in "+a.Region)
	})
}
