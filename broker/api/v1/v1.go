// Package v1 holds the types of cinet's HTTP API, version 1
// (spec/api/openapi.json): what the broker's API writes and reads, and what
// its client, the command line and the console share. It is a leaf: it
// imports no storage, network or matching package, so that a client of the
// API pulls in only this package, identity and the request signer. The
// broker's own rows (broker/jobs, broker/store) are types of their own,
// converted to these at the API's edge.
package v1

import (
	"encoding/json"
	"time"

	"github.com/cinet/cinet/broker/httpsig"
	"github.com/cinet/cinet/descriptor/money"
	"github.com/cinet/cinet/identity"
)

// A Role is what a principal may do at a broker.
type Role string

// Roles.
const (
	Tenant    Role = "tenant"    // submits and watches its own jobs, reads its own bills
	Provider  Role = "provider"  // registers and withdraws its own offers, reads its own earnings
	Regulator Role = "regulator" // reads settlement and audit data; writes nothing
	Operator  Role = "operator"  // runs the broker: everything
)

// Problem is an RFC 9457 problem details answer.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors are a document's located errors, for an invalid job or offer.
	Errors []DocumentError `json:"errors,omitempty"`
}

// A DocumentError is one located error in a submitted document.
type DocumentError struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Info is what a broker says about itself, to anyone.
type Info struct {
	Broker      identity.PrincipalID `json:"broker"`
	Region      string               `json:"region"`
	LogOrigin   string               `json:"logOrigin"`
	VerifierKey string               `json:"verifierKey"`
}

// State is where a job is in its lifecycle (spec/jobs.md §1).
type State string

// States, in lifecycle order.
const (
	Submitted    State = "submitted"    // accepted, not yet matched
	Matched      State = "matched"      // candidates found, in failover order
	Reserved     State = "reserved"     // the owning broker holds capacity for it
	Provisioning State = "provisioning" // the adapter is starting it
	Running      State = "running"      // a task runs
	Succeeded    State = "succeeded"    // every task exited 0
	Failed       State = "failed"       // it could not be placed, or failed beyond its recovery policy
	Cancelled    State = "cancelled"    // stopped at the tenant's request
	Settled      State = "settled"      // its usage is billed and its hold released; final
)

// States lists every state.
var States = []State{Submitted, Matched, Reserved, Provisioning, Running, Succeeded, Failed, Cancelled, Settled}

// Ended reports whether the job has stopped running for good.
func (s State) Ended() bool {
	return s == Succeeded || s == Failed || s == Cancelled || s == Settled
}

// A Job is a tenant's job as the API shows it (spec/jobs.md).
type Job struct {
	ID         string          `json:"id"`
	Tenant     string          `json:"tenant"` // the tenant's principal ID
	Name       string          `json:"name"`
	Digest     string          `json:"digest"`
	Document   json.RawMessage `json:"document"` // the job document, canonical JSON
	HomeRegion string          `json:"homeRegion"`
	State      State           `json:"state"`
	// Outcome is how it ended (succeeded, failed, cancelled), kept once
	// it is settled.
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

	// Home, HomeJob, HomeFee and BudgetLeft are set on a placement another
	// broker forwarded here (spec/protocol.md §4.3).
	Home       string `json:"home,omitempty"`
	HomeJob    string `json:"homeJob,omitempty"`
	HomeFee    string `json:"homeFee,omitempty"`
	BudgetLeft *Money `json:"budgetLeft,omitempty"`

	// Submission is the tenant's signed request, when it signed one.
	Submission *Submission `json:"submission,omitempty"`

	Version int64 `json:"version"`
}

// A Submission is the request that submitted a job, as the tenant signed
// it: the body and the signature's proof.
type Submission struct {
	Body  []byte        `json:"body"`
	Proof httpsig.Proof `json:"proof"`
}

// A Transition is one step of a job's history.
type Transition struct {
	State  State     `json:"state"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

// A Candidate is an offer the job was matched to.
type Candidate struct {
	Offer    string `json:"offer"` // the pool's name
	Digest   string `json:"digest"`
	Broker   string `json:"broker"` // the broker that owns the offer
	Provider string `json:"provider"`
	Region   string `json:"region"`
	Estimate *Money `json:"estimate,omitempty"`
}

// An Attempt is one placement of a job.
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
	State         string    `json:"state,omitempty"` // the backend's last word: running, succeeded, failed, cancelled, lost
	ExitCode      int       `json:"exitCode"`
	Detail        string    `json:"detail,omitempty"`

	BudgetEnd     time.Time `json:"budgetEnd,omitzero"`
	BudgetStopped bool      `json:"budgetStopped,omitempty"`
	LimitStopped  bool      `json:"limitStopped,omitempty"`

	Endpoints []Endpoint `json:"endpoints,omitempty"`

	Usage   *Usage `json:"usage,omitempty"`  // measured, once the attempt ended
	Record  string `json:"record,omitempty"` // the usage record's ID
	Settled bool   `json:"settled"`
	Charge  *Money `json:"charge,omitempty"` // what the tenant was charged for it

	Envelope  []byte `json:"envelope,omitempty"`  // the signed usage record
	Delivered bool   `json:"delivered,omitempty"` // its home broker has it
}

// An Endpoint is where a service's port answers.
type Endpoint struct {
	Name     string `json:"name"`
	Replica  int    `json:"replica"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`       // host:port
	URL      string `json:"url,omitempty"` // http://host:port, for http ports
	Ready    bool   `json:"ready"`
}

// Usage is what an attempt used, as measured.
type Usage struct {
	Start      time.Time     `json:"start"`
	End        time.Time     `json:"end"`
	CPU        time.Duration `json:"cpuNanos"`
	PeakMemory int64         `json:"peakMemoryBytes"`
}

// Money is an amount in a currency, written as a decimal string.
type Money struct {
	Amount   money.Nanos `json:"amount"`
	Currency string      `json:"currency"`
}

// An Offer is an offer in the broker's book.
type Offer struct {
	Name       string               `json:"name"`
	ComputeID  identity.ComputeID   `json:"computeId"`
	Digest     string               `json:"digest"`
	Provider   identity.PrincipalID `json:"provider"`
	Broker     identity.PrincipalID `json:"broker"`
	Region     string               `json:"region"`
	Quantity   int                  `json:"quantity"`
	Free       int                  `json:"free"`
	ValidUntil time.Time            `json:"validUntil"`
	Sequence   uint64               `json:"sequence"`
	Offer      json.RawMessage      `json:"offer"` // the offer document's body (spec/descriptor-v1.md §6)
	Envelope   *identity.Envelope   `json:"envelope,omitempty"`
}

// A Balance is one account's balance in one currency.
type Balance struct {
	Account  string      `json:"account"`
	Currency string      `json:"currency"`
	Amount   money.Nanos `json:"amount"`
}

// Balances answers a balances request; the trial balance is for the
// regulator and the operator.
type Balances struct {
	Balances     []Balance              `json:"balances"`
	TrialBalance map[string]money.Nanos `json:"trialBalance,omitempty"`
}

// A Proof shows a usage record in the broker's audit log.
type Proof struct {
	Record      string `json:"record"`
	Index       int64  `json:"index"`
	Entry       []byte `json:"entry"`      // base64 in JSON
	Checkpoint  string `json:"checkpoint"` // the signed note
	Proof       string `json:"proof"`      // the C2SP tlog-proof
	VerifierKey string `json:"verifierKey"`
}

// An IssuedToken is a bearer token as issued: the secret is shown once.
type IssuedToken struct {
	ID        string               `json:"id"` // names it to list and revoke it; not a secret
	Token     string               `json:"token"`
	Principal identity.PrincipalID `json:"principal"`
	Role      Role                 `json:"role"`
	Expires   time.Time            `json:"expires"`
}

// A TokenRecord is what the broker keeps of a token it issued.
type TokenRecord struct {
	ID        string    `json:"id"`
	Principal string    `json:"principal"`
	Role      string    `json:"role"`
	Issued    time.Time `json:"issued"`
	Expires   time.Time `json:"expires"`
	Revoked   time.Time `json:"revoked,omitzero"` // zero while it is good
}

// A ConsoleCode signs a principal in to the console once.
type ConsoleCode struct {
	Code    string    `json:"code"`
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

// Federation is a broker's view of its federation.
type Federation struct {
	Broker        identity.PrincipalID   `json:"broker"`
	Open          bool                   `json:"open"`
	Addrs         []string               `json:"addrs"`
	Members       []identity.PrincipalID `json:"members,omitempty"`
	Peers         []Peer                 `json:"peers"`
	Brokers       []BrokerAnnouncement   `json:"brokers"`
	Clearing      []ClearingResult       `json:"clearing"`      // how the latest clearing statements went, oldest first
	Equivocations []Equivocation         `json:"equivocations"` // pairs of inconsistent checkpoints a member signed
}

// A Peer is a broker this one is connected to.
type Peer struct {
	Peer   string               `json:"peer"`
	Broker identity.PrincipalID `json:"broker"`
	Addrs  []string             `json:"addrs"`
	Meshed bool                 `json:"meshed"` // in the offers topic's gossip mesh
}

// A BrokerAnnouncement is what a member says of itself.
type BrokerAnnouncement struct {
	Broker      identity.PrincipalID `json:"broker"`
	Region      string               `json:"region"`
	API         string               `json:"api,omitempty"` // the broker's HTTP API URL
	Fee         string               `json:"fee,omitempty"` // its fee rate, a decimal fraction
	VerifierKey string               `json:"verifierKey,omitempty"`
	Protocols   []string             `json:"protocols"`
	Addrs       []string             `json:"addrs,omitempty"`
	Expires     time.Time            `json:"expires,omitzero"` // when the announcement runs out unless renewed
}

// A ClearingResult is how one clearing statement went.
type ClearingResult struct {
	Counterparty identity.PrincipalID `json:"counterparty"`
	PeriodStart  time.Time            `json:"periodStart"`
	PeriodEnd    time.Time            `json:"periodEnd"`
	Digest       string               `json:"digest,omitempty"`
	Result       string               `json:"result"`
	Detail       string               `json:"detail,omitempty"`
	OnlyHere     []string             `json:"onlyHere,omitempty"`
	OnlyThere    []string             `json:"onlyThere,omitempty"`
	At           time.Time            `json:"at"`
}

// An Equivocation is a pair of inconsistent checkpoints one member signed.
type Equivocation struct {
	Broker identity.PrincipalID `json:"broker"`
	First  []byte               `json:"first"`  // the checkpoint seen first
	Second []byte               `json:"second"` // the one that contradicts it
	Detail string               `json:"detail"`
	At     time.Time            `json:"at"`
}

// A ClearingStatement is a clearing statement between a broker and
// another, with its signatures.
type ClearingStatement struct {
	Digest           string    `json:"digest"`
	Issuer           string    `json:"issuer"`
	Counterparty     string    `json:"counterparty"`
	PeriodStart      time.Time `json:"periodStart"`
	PeriodEnd        time.Time `json:"periodEnd"`
	Statement        []byte    `json:"statement"`                  // the issuer's envelope
	Countersignature []byte    `json:"countersignature,omitempty"` // the counterparty's, once countersigned
	LogIndex         int64     `json:"logIndex"`
}

// Ended reports whether the attempt has ended.
func (a *Attempt) Ended() bool { return !a.EndedAt.IsZero() }
