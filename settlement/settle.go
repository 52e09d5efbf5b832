package settlement

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/identity/canonjson"
	"github.com/cinet/cinet/settlement/auditlog"
)

// Config sets up a Settler.
type Config struct {
	Store Store
	Key   *identity.Key // this broker's key: record checks, log and statement signatures
	// Origin names the audit log (C2SP checkpoint origin and key name).
	Origin string
	// Brokers are the brokers this one settles with, besides itself: the
	// executing brokers whose records it accepts.
	Brokers []identity.PrincipalID
	// Members, when set, adds the brokers it knows: the federation's
	// current membership, which changes while the settler runs. It must be
	// safe for concurrent use.
	Members identity.SignerSet
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// ClockSkew is how far past now a record's period may end (default 1m).
	ClockSkew time.Duration
}

// A Settler checks, rates, posts and logs usage records. It is safe for
// concurrent use; writes are serialized.
type Settler struct {
	cfg    Config
	signer note.Signer
	trust  identity.SignerSet

	mu sync.Mutex // one writer at a time: log indexes are assigned in order

	offersMu sync.Mutex
	offers   map[string]*descriptor.Offer
}

// New returns a Settler.
func New(cfg Config) (*Settler, error) {
	if cfg.Store == nil || cfg.Key == nil || cfg.Origin == "" {
		return nil, errors.New("settlement: a settler needs a store, a key and a log origin")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = time.Minute
	}
	signer, err := cfg.Key.NoteSigner(cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("settlement: log origin %q: %w", cfg.Origin, err)
	}
	static := identity.Signers(append([]identity.PrincipalID{cfg.Key.ID()}, cfg.Brokers...)...)
	var trust identity.SignerSet = static
	if cfg.Members != nil {
		trust = identity.SignerFunc(func(id identity.PrincipalID) bool { return static.Known(id) || cfg.Members.Known(id) })
	}
	return &Settler{
		cfg:    cfg,
		signer: signer,
		trust:  trust,
		offers: map[string]*descriptor.Offer{},
	}, nil
}

// ID is this broker's principal ID.
func (s *Settler) ID() identity.PrincipalID { return s.cfg.Key.ID() }

// VerifierKey returns the C2SP verifier key of the settler's audit log.
func (s *Settler) VerifierKey() string {
	vkey, _ := s.cfg.Key.ID().VerifierKey(s.cfg.Origin)
	return vkey
}

// Status is what became of a record.
type Status string

// Statuses.
const (
	Accepted  Status = "accepted"
	Duplicate Status = "duplicate" // posted before; nothing changed
	Refused   Status = "refused"
)

// An Outcome is what Ingest did with one input.
type Outcome struct {
	Record      RecordID // "" when the input was not a record
	Status      Status
	Reason      Reason // for refusals
	Detail      string
	LogIndex    int64 // the record's entry, or the refusal's
	Transaction *Transaction
}

// RegisterOffer stores an offer's document, so that records placed on it
// can be rated. The offer is identified by its digest.
func (s *Settler) RegisterOffer(ctx context.Context, doc *descriptor.Document) error {
	if doc.Offer == nil {
		return fmt.Errorf("settlement: %s is not an offer", doc.Kind)
	}
	return s.cfg.Store.Update(ctx, func(tx Tx) error { return tx.PutOffer(doc.Digest, doc.Canonical) })
}

// checked is one input after the work that needs no store transaction.
type checked struct {
	raw    []byte
	digest string
	id     RecordID
	env    *identity.Envelope
	rec    *UsageRecord
	// signed is set once the executing broker's signature is verified:
	// from then on the record is what it says, and one already posted is
	// a duplicate whatever else may be wrong with it now.
	signed bool
	// reason refuses the input before the overlap check; rateReason after
	// it, so that refusals are reported in the order spec/usage-record.md
	// lists the checks.
	reason     Reason
	detail     string
	rateReason Reason
	rateDetail string
	// The transaction and log entries an accepted record writes.
	tx                *Transaction
	recEntry, txEntry []byte
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// precheck does, in parallel, everything that does not depend on what the
// store holds beyond immutable offers: the envelope and signature, the
// record's shape, this broker's part in it, the period against the clock,
// the offer, the quantities, the rating, the transaction and its log
// entries. Errors are the store's, not the record's.
func (s *Settler) precheck(ctx context.Context, inputs [][]byte, now time.Time) ([]*checked, error) {
	out := make([]*checked, len(inputs))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, raw := range inputs {
		g.Go(func() error {
			c := &checked{raw: raw, digest: digestOf(raw)}
			out[i] = c
			return s.check(ctx, c, now)
		})
	}
	return out, g.Wait()
}

func (s *Settler) check(ctx context.Context, c *checked, now time.Time) error {
	refuse := func(r Reason, d string) error { c.reason, c.detail = r, d; return nil }
	env, err := identity.DecodeEnvelope(c.raw)
	if err != nil {
		return refuse(ReasonMalformed, err.Error())
	}
	c.env = env
	if env.PayloadType == RecordPayloadType {
		r, err := DecodeRecord(env.Payload)
		if err != nil {
			return refuse(ReasonMalformed, err.Error())
		}
		c.rec, c.id = r, RecordIDOf(env.Payload)
	}
	if err := env.Verify(identity.Verification{PayloadType: RecordPayloadType, Signers: s.trust, Now: now}); err != nil {
		if errors.Is(err, identity.ErrUnknownSigner) {
			return refuse(ReasonUnknownBroker, err.Error())
		}
		return refuse(ReasonBadSignature, err.Error())
	}
	if env.Signer != c.rec.ExecutingBroker {
		return refuse(ReasonBadSignature, fmt.Sprintf("signed by %s, not by the executing broker %s", env.Signer, c.rec.ExecutingBroker))
	}
	c.signed = true
	if r, d := c.rec.checkShape(); r != "" {
		return refuse(r, d)
	}
	if self := s.cfg.Key.ID(); c.rec.HomeBroker != self && c.rec.ExecutingBroker != self {
		return refuse(ReasonNotInvolved, fmt.Sprintf("this broker (%s) is neither the home nor the executing broker", self))
	}
	if c.rec.PeriodEnd.After(now.Add(s.cfg.ClockSkew)) {
		return refuse(ReasonFuturePeriod, fmt.Sprintf("period ends at %s, after now (%s)", c.rec.PeriodEnd.Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	offer, reason, detail, err := s.offerFor(ctx, c.rec)
	if err != nil {
		return err
	}
	if reason != "" {
		return refuse(reason, detail)
	}
	if r, d := checkQuantities(c.rec, offer); r != "" {
		return refuse(r, d)
	}
	rating, err := Rate(c.rec, offer)
	if re := (*RatingError)(nil); errors.As(err, &re) {
		c.rateReason, c.rateDetail = re.Reason, re.Detail
		return nil
	} else if err != nil {
		return fmt.Errorf("settlement: rating %s: %w", c.id, err)
	}
	if c.tx, err = post(c.rec, c.id, rating, s.cfg.Key.ID(), now); err != nil {
		return err
	}
	if c.recEntry, err = recordEntry(c.env); errors.Is(err, errEntryTooLarge) {
		return refuse(ReasonMalformed, fmt.Sprintf("the record's log entry would be too large (%v)", err))
	} else if err != nil {
		return err
	}
	if c.txEntry, err = transactionEntry(c.tx); errors.Is(err, errEntryTooLarge) {
		// Reported after the overlap check, like rating's refusals.
		c.tx, c.rateReason = nil, ReasonInvalidPeriod
		c.rateDetail = fmt.Sprintf("the period is cut into %d rated items, too many for one log entry (%v); send records for shorter periods", len(rating.Items), err)
		return nil
	}
	return err
}

// errEntryTooLarge is a log entry over auditlog.MaxEntrySize.
var errEntryTooLarge = errors.New("log entry too large")

// Ingest checks, rates, posts and logs a batch of encoded envelopes, one
// usage record each, and says what became of each. A record already posted
// is reported as a duplicate; bytes already refused are refused again
// without a second log entry, unless the reason may have passed (a future
// period, an unknown offer or broker), when they are checked afresh. Every
// accepted record, its transaction and every refusal are written in one
// store transaction: on error, nothing of the batch is kept, and the whole
// batch may be sent again. Batches from concurrent callers are checked in
// parallel and written one after another.
func (s *Settler) Ingest(ctx context.Context, inputs [][]byte) ([]Outcome, error) {
	now := s.cfg.Now().UTC()
	pre, err := s.precheck(ctx, inputs, now)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var outcomes []Outcome
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		var err error
		outcomes, err = s.settle(tx, pre, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return outcomes, nil
}

// settle is the transactional part of Ingest. It reads what it needs,
// decides every input's outcome, and writes.
func (s *Settler) settle(tx Tx, pre []*checked, now time.Time) ([]Outcome, error) {
	b, err := readBatch(tx, pre, now)
	if err != nil {
		return nil, err
	}
	for i, c := range pre {
		if err := b.decide(i, c); err != nil {
			return nil, err
		}
	}
	if len(b.entries) == 0 {
		return b.outcomes, nil
	}
	if err := b.write(tx); err != nil {
		return nil, err
	}
	return b.outcomes, nil
}

// A batch is one Ingest's inputs being settled: what the store holds of
// them, and what settling them writes.
type batch struct {
	now         time.Time
	size        int64 // the audit log's size before the batch
	existing    map[RecordID]*RecordRow
	refused     map[string]*Refusal
	byPlacement map[string][]PeriodRow
	holds       map[string]*Hold

	entries    [][]byte
	records    []*RecordRow
	txs        []*Transaction
	refusals   []*Refusal
	touched    map[string]*Hold
	outcomes   []Outcome
	seenInput  map[RecordID]int
	seenDigest map[string]int
}

// readBatch reads what the store holds of the inputs: the records and
// refusals already settled, the periods of their placements, the holds of
// their jobs, and the log's size.
func readBatch(tx Tx, pre []*checked, now time.Time) (*batch, error) {
	var ids []RecordID
	var digests, placements, jobs []string
	for _, c := range pre {
		digests = append(digests, c.digest)
		if c.signed {
			ids = append(ids, c.id)
		}
		if c.signed && c.reason == "" {
			placements = append(placements, c.rec.Placement)
			jobs = append(jobs, c.rec.Job)
		}
	}
	b := &batch{now: now, byPlacement: map[string][]PeriodRow{}, touched: map[string]*Hold{}, outcomes: make([]Outcome, len(pre)),
		seenInput: map[RecordID]int{}, seenDigest: map[string]int{}}
	var periods []PeriodRow
	var err error
	if b.existing, err = tx.Records(ids); err != nil {
		return nil, err
	}
	if b.refused, err = tx.Refusals(digests); err != nil {
		return nil, err
	}
	if periods, err = tx.Periods(placements); err != nil {
		return nil, err
	}
	if b.holds, err = tx.Holds(jobs); err != nil {
		return nil, err
	}
	for _, p := range periods {
		b.byPlacement[p.Placement] = append(b.byPlacement[p.Placement], p)
	}
	if b.size, err = tx.LogSize(); err != nil {
		return nil, err
	}
	return b, nil
}

// decide settles input i: a duplicate (of an earlier input of the batch,
// or of what was settled before), a refusal, or accepted.
func (b *batch) decide(i int, c *checked) error {
	o := &b.outcomes[i]
	o.Record = c.id
	// The same bytes or record earlier in this batch.
	if j, ok := b.seenDigest[c.digest]; ok {
		*o = b.outcomes[j]
		if o.Status == Accepted {
			o.Status = Duplicate
		}
		return nil
	}
	b.seenDigest[c.digest] = i
	if c.signed {
		if j, ok := b.seenInput[c.id]; ok {
			*o = b.outcomes[j]
			o.Status = Duplicate
			return nil
		}
		if row, ok := b.existing[c.id]; ok {
			o.Status, o.LogIndex = Duplicate, row.LogIndex
			return nil
		}
	}
	prev := b.refused[c.digest]
	if prev != nil && !prev.Reason.Transient() {
		o.Status, o.Reason, o.Detail, o.LogIndex = Refused, prev.Reason, prev.Detail, prev.LogIndex
		return nil
	}
	reason, detail := c.reason, c.detail
	if reason == "" {
		reason, detail = overlapping(c, b.byPlacement[c.rec.Placement])
	}
	if reason == "" {
		reason, detail = c.rateReason, c.rateDetail
	}
	if reason != "" {
		return b.refuse(o, c, prev, reason, detail)
	}
	b.accept(i, o, c)
	return nil
}

// refuse records input c's refusal, unless it was refused before for the
// same passing reason (then no new entry is written).
func (b *batch) refuse(o *Outcome, c *checked, prev *Refusal, reason Reason, detail string) error {
	if prev != nil && prev.Reason == reason {
		o.Status, o.Reason, o.Detail, o.LogIndex = Refused, prev.Reason, prev.Detail, prev.LogIndex
		return nil
	}
	o.Status, o.Reason, o.Detail, o.LogIndex = Refused, reason, detail, b.size+int64(len(b.entries))
	ref := &Refusal{Digest: c.digest, Record: c.id, Reason: reason, Detail: detail, ReceivedAt: b.now, LogIndex: o.LogIndex}
	entry, err := refusalEntry(ref)
	if err != nil {
		return err
	}
	b.entries = append(b.entries, entry)
	b.refusals = append(b.refusals, ref)
	return nil
}

// accept posts input i: the record's entry, then its transaction's, and
// what it captures from its job's hold.
func (b *batch) accept(i int, o *Outcome, c *checked) {
	t := c.tx
	o.Status, o.Transaction, o.LogIndex = Accepted, t, b.size+int64(len(b.entries))
	t.LogIndex = o.LogIndex + 1
	b.seenInput[c.id] = i
	b.entries = append(b.entries, c.recEntry, c.txEntry)
	b.records = append(b.records, &RecordRow{
		ID: c.id, Job: c.rec.Job, Placement: c.rec.Placement, Sequence: c.rec.Sequence,
		ComputeID: c.rec.ComputeID.String(), Offer: c.rec.Offer, Tenant: c.rec.Tenant.String(),
		Provider: c.rec.Provider.String(), HomeBroker: c.rec.HomeBroker.String(),
		ExecutingBroker: c.rec.ExecutingBroker.String(), PeriodStart: c.rec.PeriodStart,
		PeriodEnd: c.rec.PeriodEnd, LogIndex: o.LogIndex, ReceivedAt: b.now,
	})
	b.txs = append(b.txs, t)
	b.byPlacement[c.rec.Placement] = append(b.byPlacement[c.rec.Placement], PeriodRow{c.rec.Placement, c.id, c.rec.PeriodStart, c.rec.PeriodEnd})
	if h := b.holds[c.rec.Job]; h != nil && h.Open && t.Role != RoleExecuting {
		h.Captured += min(h.Remaining(), t.TenantCharge())
		b.touched[h.Job] = h
	}
}

// write appends the batch's entries to the log and writes its rows.
func (b *batch) write(tx Tx) error {
	if err := appendLog(tx, b.size, b.entries); err != nil {
		return err
	}
	if err := tx.InsertRecords(b.records); err != nil {
		return err
	}
	if err := tx.InsertTransactions(b.txs); err != nil {
		return err
	}
	if err := tx.InsertRefusals(b.refusals); err != nil {
		return err
	}
	if len(b.touched) == 0 {
		return nil
	}
	var hs []*Hold
	for _, h := range b.touched {
		hs = append(hs, h)
	}
	return tx.PutHolds(hs)
}

// appendLog appends entries to the audit log at size, its current size.
func appendLog(tx Tx, size int64, entries [][]byte) error {
	hashes, err := auditlog.Append(size, entries, tlog.HashReaderFunc(tx.ReadHashes))
	if err != nil {
		return err
	}
	return tx.AppendLog(size, entries, hashes)
}

// offerFor finds and checks the offer a record was placed on. Offers are
// immutable (named by digest), so a cached or separately read offer is
// the one the transaction would see. The error is the store's.
func (s *Settler) offerFor(ctx context.Context, r *UsageRecord) (*descriptor.Offer, Reason, string, error) {
	s.offersMu.Lock()
	o, ok := s.offers[r.Offer]
	s.offersMu.Unlock()
	if !ok {
		var canonical []byte
		err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
			var err error
			canonical, err = tx.Offer(r.Offer)
			return err
		})
		if errors.Is(err, ErrNotFound) {
			return nil, ReasonUnknownOffer, fmt.Sprintf("no price schedule is known for offer %s", r.Offer), nil
		}
		if err != nil {
			return nil, "", "", fmt.Errorf("settlement: reading offer %s: %w", r.Offer, err)
		}
		doc, err := descriptor.ParseOffer(r.Offer, canonical)
		if err != nil {
			return nil, "", "", fmt.Errorf("settlement: stored offer %s no longer parses: %w", r.Offer, err)
		}
		o = doc.Offer
		s.offersMu.Lock()
		s.offers[r.Offer] = o
		s.offersMu.Unlock()
	}
	switch {
	case o.ComputeID.Name() != r.ComputeID.Name():
		return nil, ReasonOfferMismatch, fmt.Sprintf("the record is for %s, offer %s is for %s", r.ComputeID, r.Offer, o.ComputeID), nil
	case o.Provider != r.Provider:
		return nil, ReasonOfferMismatch, fmt.Sprintf("the record names provider %s, the offer's is %s", r.Provider, o.Provider), nil
	case o.Broker != r.ExecutingBroker:
		return nil, ReasonOfferMismatch, fmt.Sprintf("the record's executing broker is %s, but the offer's capacity is owned by %s", r.ExecutingBroker, o.Broker), nil
	}
	return o, "", "", nil
}

// overlapping refuses a record whose period overlaps a settled period of
// its placement.
func overlapping(c *checked, settled []PeriodRow) (Reason, string) {
	for _, p := range settled {
		if p.Record != c.id && c.rec.PeriodStart.Before(p.End) && p.Start.Before(c.rec.PeriodEnd) {
			return ReasonOverlappingPeriod, fmt.Sprintf("period %s–%s overlaps %s–%s, settled by record %s",
				c.rec.PeriodStart.Format(time.RFC3339), c.rec.PeriodEnd.Format(time.RFC3339),
				p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339), p.Record)
		}
	}
	return "", ""
}

// Log entries (spec/audit-log.md): canonical JSON objects with a type.

func canonicalEntry(v any) ([]byte, error) {
	out, err := canonjson.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(out) > auditlog.MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errEntryTooLarge, len(out), auditlog.MaxEntrySize)
	}
	return out, nil
}

// recordEntry wraps an envelope, which Encode writes in canonical form.
func recordEntry(env *identity.Envelope) ([]byte, error) {
	enc := env.Encode()
	out := make([]byte, 0, len(enc)+40)
	out = append(out, `{"envelope":`...)
	out = append(out, enc...)
	out = append(out, `,"type":"usage-record"}`...)
	if len(out) > auditlog.MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errEntryTooLarge, len(out), auditlog.MaxEntrySize)
	}
	return out, nil
}

// The entry structs declare their fields in RFC 8785 key order (see
// canonicalJSON).

func refusalEntry(r *Refusal) ([]byte, error) {
	return canonicalEntry(struct {
		Detail     string   `json:"detail"`
		Digest     string   `json:"digest"`
		Reason     Reason   `json:"reason"`
		ReceivedAt string   `json:"receivedAt"`
		Record     RecordID `json:"record,omitempty"`
		Type       string   `json:"type"`
	}{r.Detail, r.Digest, r.Reason, r.ReceivedAt.UTC().Format(time.RFC3339Nano), r.Record, "refusal"})
}

type itemEntry struct {
	Amount           string `json:"amount"`
	ConsumedQuantity string `json:"consumedQuantity"`
	End              string `json:"end"`
	Meter            string `json:"meter"`
	Model            string `json:"model,omitempty"`
	PricingQuantity  string `json:"pricingQuantity"`
	PricingUnit      string `json:"pricingUnit"`
	Start            string `json:"start"`
	Tier             string `json:"tier,omitempty"`
	UnitPrice        string `json:"unitPrice"`
}

type lineEntry struct {
	Account Account `json:"account"`
	Amount  string  `json:"amount"`
}

func transactionEntry(t *Transaction) ([]byte, error) {
	items := make([]itemEntry, len(t.Items))
	for i, it := range t.Items {
		items[i] = itemEntry{
			Amount: it.Amount.Decimal(), ConsumedQuantity: it.ConsumedQty,
			End: it.End.UTC().Format(time.RFC3339Nano), Meter: string(it.Meter), Model: it.Model,
			PricingQuantity: it.PricingQuantity, PricingUnit: it.PricingUnit,
			Start: it.Start.UTC().Format(time.RFC3339Nano), Tier: it.Tier, UnitPrice: it.UnitPrice,
		}
	}
	lines := make([]lineEntry, len(t.Lines))
	for i, l := range t.Lines {
		lines[i] = lineEntry{Account: l.Account, Amount: l.Amount.Decimal()}
	}
	return canonicalEntry(struct {
		Currency     string      `json:"currency"`
		ExecutingFee string      `json:"executingFee"`
		HomeFee      string      `json:"homeFee"`
		ID           string      `json:"id"`
		Items        []itemEntry `json:"items"`
		Lines        []lineEntry `json:"lines"`
		PostedAt     string      `json:"postedAt"`
		Role         Role        `json:"role"`
		Type         string      `json:"type"`
	}{t.Currency, t.ExecutingFee.Decimal(), t.HomeFee.Decimal(), t.ID, items, lines, t.PostedAt.UTC().Format(time.RFC3339Nano), t.Role, "ledger-transaction"})
}
