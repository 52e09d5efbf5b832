// Package jobs is the job lifecycle: a job moves from submitted through
// matched, reserved, provisioning and running to succeeded, failed or
// cancelled, and then to settled once its usage is rated, posted and
// logged. Every transition is persisted with its time before the next
// step's side effects, and every side effect — a reservation, a
// provisioning, a usage record — is idempotent, so a broker that restarts
// resumes each job where it stood, and never bills a job twice.
package jobs

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cinet/cinet/adapters"
	v1 "github.com/cinet/cinet/broker/api/v1"
)

// State is where a job stands (the API's v1.State).
type State = v1.State

// States, in the order a job passes them.
const (
	Submitted    = v1.Submitted
	Matched      = v1.Matched
	Reserved     = v1.Reserved
	Provisioning = v1.Provisioning
	Running      = v1.Running
	Succeeded    = v1.Succeeded
	Failed       = v1.Failed
	Cancelled    = v1.Cancelled
	Settled      = v1.Settled
)

// States lists every state, in lifecycle order.
var States = v1.States

// A Job is a tenant's job and everything that happened to it.
type Job struct {
	ID         string          `json:"id"`
	Tenant     string          `json:"tenant"` // the tenant's principal ID
	Name       string          `json:"name"`
	Digest     string          `json:"digest"`
	Document   json.RawMessage `json:"document"` // the job document, canonical JSON
	HomeRegion string          `json:"homeRegion"`
	State      State           `json:"state"`
	// Outcome is succeeded, failed or cancelled once the job has ended; it
	// stays when the job moves on to settled.
	Outcome State  `json:"outcome,omitempty"`
	Detail  string `json:"detail,omitempty"` // why it failed, in words

	CreatedAt time.Time    `json:"createdAt"`
	UpdatedAt time.Time    `json:"updatedAt"`
	History   []Transition `json:"history"`

	Candidates []Candidate `json:"candidates,omitempty"` // the last match, best first
	Excluded   []string    `json:"excluded,omitempty"`   // offers that refused or lost the job
	Attempts   []Attempt   `json:"attempts,omitempty"`
	Restarts   int         `json:"restarts"`

	Hold *Money `json:"hold,omitempty"` // the budget held at placement
	Cost *Money `json:"cost,omitempty"` // what the tenant was charged, once settled

	CancelRequested bool `json:"cancelRequested,omitempty"`

	// Home is set on a placement another broker forwarded to this one: the
	// home broker's DID. Such a job has one attempt, on this broker's
	// offer, and its ID is the placement's (spec/protocol.md §5).
	Home string `json:"home,omitempty"`
	// HomeJob is the home broker's job ID, and HomeFee its fee rate.
	HomeJob string `json:"homeJob,omitempty"`
	HomeFee string `json:"homeFee,omitempty"`
	// BudgetLeft bounds what a forwarded placement may spend; nil: no
	// bound in the offer's currency.
	BudgetLeft *Money `json:"budgetLeft,omitempty"`

	// Submission is the tenant's signed request that submitted the job,
	// when it was signed (not sent with a token or from a console
	// session): it travels with the job to the broker that runs it.
	Submission *Submission `json:"submission,omitempty"`

	// Version increases with every update; a store refuses an update made
	// from a stale copy.
	Version int64 `json:"version"`
}

// A Submission is the tenant's signed request that submitted a job.
type Submission = v1.Submission

// A Transition is one step of a job's history.
type Transition = v1.Transition

// A Candidate is an offer the job could run on.
type Candidate struct {
	Offer    string `json:"offer"` // the pool's name
	Digest   string `json:"digest"`
	Broker   string `json:"broker"` // the broker that owns the offer
	Provider string `json:"provider"`
	Region   string `json:"region"`
	Estimate *Money `json:"estimate,omitempty"`
}

// An Attempt is one placement of the job on an offer.
type Attempt struct {
	ID          string `json:"id"` // the placement ID: the job's ID and the attempt's number
	Offer       string `json:"offer"`
	OfferDigest string `json:"offerDigest"`
	Broker      string `json:"broker"`
	Provider    string `json:"provider"`
	Region      string `json:"region"`
	Reservation string `json:"reservation,omitempty"` // the owning broker's reservation

	ProvisionedAt time.Time `json:"provisionedAt,omitzero"`
	StartedAt     time.Time `json:"startedAt,omitzero"`
	EndedAt       time.Time `json:"endedAt,omitzero"`
	State         string    `json:"state,omitempty"` // the adapter's last word: running, succeeded, failed, cancelled, lost
	ExitCode      int       `json:"exitCode"`
	Detail        string    `json:"detail,omitempty"`

	// BudgetEnd is when the attempt, at the most it could use of the
	// offer's class, would spend what is left of the job's budget: it is
	// stopped before then, and never billed past it. Zero: no budget.
	BudgetEnd time.Time `json:"budgetEnd,omitzero"`
	// BudgetStopped: the broker stopped the attempt at its budget.
	BudgetStopped bool `json:"budgetStopped,omitempty"`
	// LimitStopped: the broker stopped the attempt when it had run for
	// settlement.MaxRecordPeriod, the longest one usage record covers.
	LimitStopped bool `json:"limitStopped,omitempty"`

	// Endpoints are a service's, while the attempt runs (spec/jobs.md §7).
	Endpoints []adapters.Endpoint `json:"endpoints,omitempty"`

	Usage   *Usage `json:"usage,omitempty"`  // measured, once the attempt ended
	Record  string `json:"record,omitempty"` // the usage record's ID
	Settled bool   `json:"settled"`
	Charge  *Money `json:"charge,omitempty"` // what the tenant was charged for it

	// On the executing broker of a forwarded placement: the signed usage
	// record, kept until the home broker acknowledges it (Delivered).
	Envelope  []byte `json:"envelope,omitempty"`
	Delivered bool   `json:"delivered,omitempty"`
}

// Ended reports whether the attempt has stopped.
func (a *Attempt) Ended() bool { return !a.EndedAt.IsZero() }

// Usage is what an attempt used, as measured.
type Usage = v1.Usage

// Money is an amount in a currency.
type Money = v1.Money

// NewID returns a new job ID: "j-" and 26 base32 characters.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return "j-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// ErrNotFound, ErrConflict and ErrExists are a store's answers.
var (
	ErrNotFound = errors.New("jobs: no such job")
	ErrConflict = errors.New("jobs: the job changed since it was read")
	ErrExists   = errors.New("jobs: a job with that ID exists")
)

// to records a transition.
func (j *Job) to(s State, at time.Time, detail string) {
	j.State = s
	j.UpdatedAt = at
	j.History = append(j.History, Transition{State: s, At: at, Detail: detail})
}

// end records the job's outcome.
func (j *Job) end(outcome State, at time.Time, detail string) {
	j.Outcome = outcome
	if detail != "" {
		j.Detail = detail
	}
	j.to(outcome, at, detail)
}

// current returns the attempt in progress, or nil.
func (j *Job) current() *Attempt {
	if n := len(j.Attempts); n > 0 && !j.Attempts[n-1].Ended() {
		return &j.Attempts[n-1]
	}
	return nil
}

// Clone returns a deep copy.
func (j *Job) Clone() *Job {
	c := *j
	c.History = slices.Clone(j.History)
	c.Candidates = slices.Clone(j.Candidates)
	c.Excluded = slices.Clone(j.Excluded)
	c.Attempts = slices.Clone(j.Attempts)
	return &c
}
