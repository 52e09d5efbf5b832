package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cinet/cinet/adapters"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// The executing broker's side of a forwarded placement. Every method takes
// the home broker that asks, as the federation authenticated it, and
// answers only about placements that broker forwarded: any other is
// ErrNotFound, whether or not it exists.

// Accept takes a placement forwarded by its home broker: it confirms the
// lease the home broker holds on this broker's offer, and keeps the
// placement as a job that this broker runs, meters and signs the usage
// of. Accepting the same placement again does nothing.
func (r *Runner) Accept(ctx context.Context, home identity.PrincipalID, f Forward) error {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
	}
	if !placementID.MatchString(f.Placement) || !jobID.MatchString(f.Job) || f.Placement[:len(f.Job)] != f.Job {
		return refuse("placement %q of job %q: want a job ID j-… and its attempt's number", f.Placement, f.Job)
	}
	if j, err := r.cfg.Store.Get(ctx, f.Placement); err == nil {
		if j.Home != home.String() {
			return refuse("placement %s is taken", f.Placement)
		}
		return nil // forwarded before; the answer was lost
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	tenant, err := identity.ParsePrincipalID(f.Tenant)
	if err != nil {
		return refuse("tenant: %v", err)
	}
	fee, err := descriptor.ParseDecimal(f.HomeFee)
	if err != nil || fee.Apd().Sign() < 0 || fee.Apd().Cmp(descriptor.MustDecimal("1").Apd()) > 0 {
		return refuse("home fee %q: want a fraction between 0 and 1", f.HomeFee)
	}
	doc, err := descriptor.Parse(f.Placement+".json", f.Document)
	if err != nil {
		return refuse("the job document: %v", err)
	}
	if doc.Job == nil {
		return refuse("the document is a %s, not a job", doc.Kind)
	}
	signed, err := checkSubmission(f.Submission, tenant, doc)
	if err != nil {
		return refuse("%v", err)
	}
	if !signed && r.cfg.RequireSigned {
		return refuse("the job comes without the tenant's signed submission, which this broker requires")
	}
	offer, err := r.cfg.Offers(ctx, f.OfferDigest)
	if err != nil || offer.Offer == nil {
		return refuse("offer %s is not known here", f.OfferDigest)
	}
	e, ok := r.cfg.Book.Get(f.Offer)
	if !ok || offer.Offer.ComputeID.Name() != f.Offer {
		return refuse("offer %s (%s) is not in this broker's book", f.Offer, f.OfferDigest)
	}
	if e.Owner != r.cfg.Key.ID() {
		return refuse("offer %s is owned by %s", f.Offer, e.Owner)
	}
	provider := e.ProvidedBy
	if r.cfg.Adapters[provider] == nil {
		return refuse("no adapter runs provider %s's placements here", provider)
	}
	j := &Job{
		ID: f.Placement, Tenant: tenant.String(), Name: doc.Job.Metadata.Name, Digest: doc.Digest, Document: doc.Canonical,
		HomeRegion: f.HomeRegion, CreatedAt: r.now(), Home: home.String(), HomeJob: f.Job, HomeFee: fee.String(), BudgetLeft: f.BudgetLeft,
	}
	count := j.Instances()
	res, err := r.cfg.Book.Confirm(f.Reservation, func(res book.Reservation) error {
		switch {
		case res.Holder != LeaseHolder(home, f.Job):
			return fmt.Errorf("%w: %s (not held by %s for %s)", book.ErrNoReservation, f.Reservation, home, f.Job)
		case res.Offer != f.Offer || res.Count != count:
			return refuse("the lease is for %d of %s; the job takes %d of %s", res.Count, res.Offer, count, f.Offer)
		}
		return nil
	}, f.Placement, reservationTTL)
	if err != nil {
		return err
	}
	j.Attempts = []Attempt{{
		ID: f.Placement, Offer: f.Offer, OfferDigest: f.OfferDigest, Broker: r.cfg.Key.ID().String(),
		Provider: provider.String(), Region: e.Attrs.Region, Reservation: res.ID,
	}}
	intent := "without the tenant's signature (sent with a token or from a console session)"
	if signed {
		intent = "the tenant's signed submission checked"
	}
	j.Submission = f.Submission
	j.to(Reserved, r.now(), fmt.Sprintf("forwarded by broker %s (job %s in %s; %s); %d instance(s) of %s reserved", home, f.Job, f.HomeRegion, intent, count, f.Offer))
	if err := r.cfg.Store.Create(ctx, j); err != nil {
		r.cfg.Book.Release(res.ID)
		if errors.Is(err, ErrExists) {
			return r.Accept(ctx, home, f)
		}
		return err
	}
	r.cfg.Log.Info("accepted a forwarded placement", "placement", f.Placement, "home", home, "offer", f.Offer)
	r.notify(j)
	r.poke()
	return nil
}

// forwarded returns the placement home forwarded to this broker.
func (r *Runner) forwarded(ctx context.Context, home identity.PrincipalID, placement string) (*Job, error) {
	if !placementID.MatchString(placement) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, placement)
	}
	j, err := r.cfg.Store.Get(ctx, placement)
	if err != nil {
		return nil, err
	}
	if j.Home != home.String() || len(j.Attempts) != 1 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, placement)
	}
	return j, nil
}

// ExecStatus says how a forwarded placement is doing. It reports the
// placement ended only once this broker recorded its end, from which the
// usage record is built.
func (r *Runner) ExecStatus(ctx context.Context, home identity.PrincipalID, placement string) (RemoteStatus, error) {
	j, err := r.forwarded(ctx, home, placement)
	if err != nil {
		return RemoteStatus{}, err
	}
	a := &j.Attempts[0]
	var st adapters.Status
	if a.ProvisionedAt.IsZero() {
		st = adapters.Status{State: adapters.Running, Detail: "being provisioned"}
	} else if ad, err := r.Executor(a); err != nil {
		return RemoteStatus{}, err
	} else if st, err = ad.Status(ctx, a.ID); errors.Is(err, adapters.ErrNotFound) {
		st = adapters.Status{State: adapters.Running}
	} else if err != nil {
		return RemoteStatus{}, err
	}
	out := RemoteStatus{State: st.State, Tasks: st.Tasks, Detail: st.Detail, Endpoints: st.Endpoints}
	if !a.Ended() {
		if out.State.Ended() {
			out.State, out.Detail = adapters.Running, "ending"
		}
		return out, nil
	}
	out.State, out.Detail, out.Usage, out.Endpoints = adapters.State(a.State), a.Detail, a.Usage, nil
	if len(out.Tasks) == 0 && !a.StartedAt.IsZero() {
		doc, err := j.doc()
		if err != nil {
			return RemoteStatus{}, err
		}
		out.Tasks = []adapters.TaskStatus{{Name: doc.Job.Tasks[0].Name, Started: a.StartedAt, End: a.EndedAt, ExitCode: a.ExitCode}}
	}
	return out, nil
}

// ExecLogs reads a slice of a forwarded placement's output.
func (r *Runner) ExecLogs(ctx context.Context, home identity.PrincipalID, q LogRequest) ([]byte, error) {
	j, err := r.forwarded(ctx, home, q.Placement)
	if err != nil {
		return nil, err
	}
	switch {
	case q.Stream != "stdout" && q.Stream != "stderr":
		return nil, fmt.Errorf("%w: stream %q: want stdout or stderr", ErrRefused, q.Stream)
	case q.Node < 0 || q.Node >= j.Instances():
		return nil, fmt.Errorf("%w: node %d: want 0 to %d", ErrRefused, q.Node, j.Instances()-1)
	case q.Offset < 0 || q.Limit < 1 || q.Limit > LogChunk:
		return nil, fmt.Errorf("%w: offset %d, limit %d: want an offset ≥ 0 and a limit of 1 to %d", ErrRefused, q.Offset, q.Limit, LogChunk)
	}
	ad, err := r.Executor(&j.Attempts[0])
	if err != nil {
		return nil, err
	}
	rc, err := ad.Logs(ctx, q.Placement, q.Task, q.Node, q.Stream)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	defer rc.Close()
	if s, ok := rc.(io.Seeker); ok {
		if _, err := s.Seek(q.Offset, io.SeekStart); err != nil {
			return nil, err
		}
	} else if _, err := io.CopyN(io.Discard, rc, q.Offset); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	buf := make([]byte, q.Limit)
	n, err := io.ReadFull(rc, buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return buf[:n], err
}

// ExecCancel stops a forwarded placement.
func (r *Runner) ExecCancel(ctx context.Context, home identity.PrincipalID, placement string) error {
	if _, err := r.forwarded(ctx, home, placement); err != nil {
		return err
	}
	_, err := r.Cancel(ctx, placement)
	return err
}

// ExecUsage hands over a forwarded placement's signed usage record, once
// there is one; it keeps it until the home broker acknowledges it.
func (r *Runner) ExecUsage(ctx context.Context, home identity.PrincipalID, placement string) (Delivery, error) {
	j, err := r.forwarded(ctx, home, placement)
	if err != nil {
		return Delivery{}, err
	}
	a := &j.Attempts[0]
	if !a.Settled {
		return Delivery{Pending: true}, nil
	}
	return Delivery{Record: a.Record, Envelope: a.Envelope}, nil
}

// ExecAck records that the home broker took in a placement's usage record.
func (r *Runner) ExecAck(ctx context.Context, home identity.PrincipalID, placement, record string) error {
	j, err := r.forwarded(ctx, home, placement)
	if err != nil {
		return err
	}
	a := &j.Attempts[0]
	if !a.Settled || a.Record != record {
		return fmt.Errorf("%w: placement %s's record is %q, not %q", ErrRefused, placement, a.Record, record)
	}
	if a.Delivered {
		return nil
	}
	if err := r.update(ctx, j, func(j *Job) { j.Attempts[0].Delivered = true }); err != nil {
		return err
	}
	r.poke()
	return nil
}

// settleRemote takes in the usage record of an attempt another broker ran:
// it checks that the record is this attempt's, settles it as the home
// broker, and acknowledges it, so that the executing broker stops keeping
// it. Settling is idempotent, so a lost acknowledgement costs only a
// second delivery of a record already posted.
func (r *Runner) settleRemote(ctx context.Context, j *Job, i int, exec identity.PrincipalID) error {
	a := &j.Attempts[i]
	if a.State == string(adapters.Lost) {
		// Deemed lost while out of reach: stop it there, if it runs.
		if err := r.cfg.Remote.Cancel(ctx, exec, a.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	d, err := r.cfg.Remote.Usage(ctx, exec, a.ID)
	if errors.Is(err, ErrNotFound) {
		// The executing broker never took the placement: nothing ran.
		d, err = Delivery{}, nil
	}
	if err != nil {
		return err
	}
	if d.Pending {
		return errPending
	}
	var charge *Money
	var recordID, detail string
	if len(d.Envelope) > 0 {
		recordID = d.Record
		if reason := r.recordIsAttempts(j, a, exec, d); reason != "" {
			detail = "usage record refused: " + reason
			r.cfg.Log.Error("a forwarded placement's usage record is not its own", "job", j.ID, "attempt", a.ID, "broker", a.Broker, "reason", reason)
		} else if r.cfg.Settler != nil {
			rec, _ := decodeRecord(d.Envelope)
			if recordID, charge, detail, err = r.bill.ingest(ctx, j, a, d.Envelope, rec.PeriodEnd); err != nil {
				return err
			}
		}
	}
	if err := r.cfg.Remote.Ack(ctx, exec, a.ID, d.Record); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return r.update(ctx, j, func(j *Job) {
		a := &j.Attempts[i]
		a.Record, a.Charge, a.Settled = recordID, charge, true
		if detail != "" {
			a.Detail = joinDetail(a.Detail, detail)
		}
	})
}

// recordIsAttempts says why a delivered record is not the attempt's, or "".
func (r *Runner) recordIsAttempts(j *Job, a *Attempt, exec identity.PrincipalID, d Delivery) string {
	rec, err := decodeRecord(d.Envelope)
	if err != nil {
		return err.Error()
	}
	switch {
	case string(settlement.RecordIDOf(mustPayload(d.Envelope))) != d.Record:
		return "the record's ID is not the one named"
	case rec.Placement != a.ID || rec.Job != j.ID:
		return fmt.Sprintf("the record is of placement %s of job %s", rec.Placement, rec.Job)
	case rec.Tenant.String() != j.Tenant:
		return "the record names another tenant"
	case rec.HomeBroker != r.cfg.Key.ID() || rec.ExecutingBroker != exec:
		return fmt.Sprintf("the record's brokers are %s (home) and %s (executing)", rec.HomeBroker, rec.ExecutingBroker)
	case rec.Offer != a.OfferDigest:
		return fmt.Sprintf("the record is rated on offer %s, not %s", rec.Offer, a.OfferDigest)
	case rec.Fees.Home.String() != r.cfg.Fee.String():
		return fmt.Sprintf("the record's home fee is %s, not %s", rec.Fees.Home, r.cfg.Fee)
	}
	return ""
}

func decodeRecord(envelope []byte) (*settlement.UsageRecord, error) {
	env, err := identity.DecodeEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	return settlement.DecodeRecord(env.Payload)
}

func mustPayload(envelope []byte) []byte {
	env, err := identity.DecodeEnvelope(envelope)
	if err != nil {
		return nil
	}
	return env.Payload
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// checkSubmission checks a forwarded job's signed submission: the tenant
// signed a POST /v1/jobs whose body is this very job document. It reports
// whether there was one. (The authority it was sent to, the home
// broker's, is checked by the federation, which knows the home broker's
// announced API.)
func checkSubmission(sub *Submission, tenant identity.PrincipalID, doc *descriptor.Document) (bool, error) {
	if sub == nil {
		return false, nil
	}
	signed, created, err := sub.Proof.Verify(sub.Body)
	switch {
	case err != nil:
		return true, fmt.Errorf("the tenant's signed submission: %w", err)
	case signed.Signer != tenant:
		return true, fmt.Errorf("the submission is signed by %s, not by the tenant %s", signed.Signer, tenant)
	case sub.Proof.Method != "POST" || sub.Proof.Path != "/v1/jobs":
		return true, fmt.Errorf("the signed request is %s %s, not a job submission", sub.Proof.Method, sub.Proof.Path)
	}
	sent, err := descriptor.Parse("submission", sub.Body)
	if err != nil || sent.Digest != doc.Digest {
		return true, fmt.Errorf("the job forwarded is not the one the tenant signed for at %s", created.Format(time.RFC3339))
	}
	return true, nil
}

// recoveryOf is the job's recovery policy at this broker: a forwarded
// placement has none here, for its home broker decides what follows.
func recoveryOf(j *Job, doc *descriptor.Document) descriptor.Recovery {
	if j.Home != "" {
		return descriptor.Recovery{}
	}
	return doc.Job.Recovery
}

// heldForHome reports whether a forwarded placement is kept, unsettled,
// until its home broker has taken in its usage record.
func heldForHome(j *Job) bool {
	return j.Home != "" && len(j.Attempts) == 1 && j.Attempts[0].Record != "" && !j.Attempts[0].Delivered
}

// budgetOf is the job's budget at this broker: for a forwarded placement,
// what its home broker said is left of it (nil: none to enforce).
func budgetOf(j *Job, doc *descriptor.Document) *descriptor.Budget {
	if j.Home == "" {
		return doc.Job.Budget
	}
	if j.BudgetLeft == nil {
		return nil
	}
	return &descriptor.Budget{Currency: j.BudgetLeft.Currency, MaxTotal: descriptor.MustDecimal(j.BudgetLeft.Amount.Decimal())}
}
