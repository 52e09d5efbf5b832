package settlement

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/gowebpki/jcs"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
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
	return &Settler{
		cfg:    cfg,
		signer: signer,
		trust:  identity.Signers(append([]identity.PrincipalID{cfg.Key.ID()}, cfg.Brokers...)...),
		offers: map[string]*descriptor.Offer{},
	}, nil
}

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

// checked is one input after the checks that need no store.
type checked struct {
	raw     []byte
	digest  string
	id      RecordID
	env     *identity.Envelope
	rec     *UsageRecord
	reason  Reason
	detail  string
	outcome *Outcome
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// precheck does what can be done without the store, in parallel: the
// envelope, the signature, the record's shape, this broker's part in it,
// and the period against the clock.
func (s *Settler) precheck(inputs [][]byte, now time.Time) []*checked {
	out := make([]*checked, len(inputs))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, raw := range inputs {
		g.Go(func() error {
			c := &checked{raw: raw, digest: digestOf(raw)}
			out[i] = c
			env, err := identity.DecodeEnvelope(raw)
			if err != nil {
				c.reason, c.detail = ReasonMalformed, err.Error()
				return nil
			}
			c.env = env
			if env.PayloadType == RecordPayloadType {
				if r, err := DecodeRecord(env.Payload); err == nil {
					c.rec, c.id = r, RecordIDOf(env.Payload)
				} else {
					c.reason, c.detail = ReasonMalformed, err.Error()
					return nil
				}
			}
			if err := env.Verify(identity.Verification{PayloadType: RecordPayloadType, Signers: s.trust, Now: now}); err != nil {
				c.reason, c.detail = ReasonBadSignature, err.Error()
				if errors.Is(err, identity.ErrUnknownSigner) {
					c.reason = ReasonUnknownBroker
				}
				return nil
			}
			if env.Signer != c.rec.ExecutingBroker {
				c.reason, c.detail = ReasonBadSignature, fmt.Sprintf("signed by %s, not by the executing broker %s", env.Signer, c.rec.ExecutingBroker)
				return nil
			}
			if r, d := c.rec.checkShape(); r != "" {
				c.reason, c.detail = r, d
				return nil
			}
			if self := s.cfg.Key.ID(); c.rec.HomeBroker != self && c.rec.ExecutingBroker != self {
				c.reason, c.detail = ReasonNotInvolved, fmt.Sprintf("this broker (%s) is neither the home nor the executing broker", self)
				return nil
			}
			if c.rec.PeriodEnd.After(now.Add(s.cfg.ClockSkew)) {
				c.reason, c.detail = ReasonFuturePeriod, fmt.Sprintf("period ends at %s, after now (%s)", c.rec.PeriodEnd.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
			}
			return nil
		})
	}
	g.Wait()
	return out
}

// Ingest checks, rates, posts and logs a batch of encoded envelopes, one
// usage record each, and says what became of each. A record already posted
// is reported as a duplicate; bytes already refused are refused again
// without a second log entry. Every accepted record, its transaction and
// every refusal are written in one store transaction: on error, nothing of
// the batch is kept, and the whole batch may be sent again.
func (s *Settler) Ingest(ctx context.Context, inputs [][]byte) ([]Outcome, error) {
	now := s.cfg.Now().UTC()
	pre := s.precheck(inputs, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	var outcomes []Outcome
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
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
	var ids []RecordID
	var digests, placements, jobs []string
	for _, c := range pre {
		c.outcome = nil
		digests = append(digests, c.digest)
		if c.rec != nil && c.reason == "" {
			ids = append(ids, c.id)
			placements = append(placements, c.rec.Placement)
			jobs = append(jobs, c.rec.Job)
		}
	}
	existing, err := tx.Records(ids)
	if err != nil {
		return nil, err
	}
	refused, err := tx.Refusals(digests)
	if err != nil {
		return nil, err
	}
	periods, err := tx.Periods(placements)
	if err != nil {
		return nil, err
	}
	holds, err := tx.Holds(jobs)
	if err != nil {
		return nil, err
	}
	byPlacement := map[string][]PeriodRow{}
	for _, p := range periods {
		byPlacement[p.Placement] = append(byPlacement[p.Placement], p)
	}
	size, err := tx.LogSize()
	if err != nil {
		return nil, err
	}

	var (
		entries    [][]byte
		records    []*RecordRow
		txs        []*Transaction
		refusals   []*Refusal
		touched    = map[string]*Hold{}
		outcomes   = make([]Outcome, len(pre))
		seenInput  = map[RecordID]int{}
		seenDigest = map[string]int{}
	)
	for i, c := range pre {
		o := &outcomes[i]
		o.Record = c.id
		// The same bytes or record earlier in this batch.
		if j, ok := seenDigest[c.digest]; ok {
			*o = outcomes[j]
			if o.Status == Accepted {
				o.Status = Duplicate
			}
			continue
		}
		seenDigest[c.digest] = i
		if c.rec != nil && c.reason == "" {
			if j, ok := seenInput[c.id]; ok {
				*o = outcomes[j]
				o.Status = Duplicate
				continue
			}
			if row, ok := existing[c.id]; ok {
				o.Status, o.LogIndex = Duplicate, row.LogIndex
				continue
			}
		}
		if r, ok := refused[c.digest]; ok {
			o.Status, o.Reason, o.Detail, o.LogIndex = Refused, r.Reason, r.Detail, r.LogIndex
			continue
		}
		reason, detail := c.reason, c.detail
		var t *Transaction
		var offer *descriptor.Offer
		if reason == "" {
			offer, reason, detail = s.offerFor(tx, c.rec)
		}
		if reason == "" {
			reason, detail = checkQuantities(c.rec, offer)
		}
		if reason == "" {
			reason, detail = overlapping(c, byPlacement[c.rec.Placement])
		}
		var rating *Rating
		if reason == "" {
			rating, err = Rate(c.rec, offer)
			var re *RatingError
			switch {
			case errors.As(err, &re):
				reason, detail = re.Reason, re.Detail
			case err != nil:
				return nil, fmt.Errorf("settlement: rating %s: %w", c.id, err)
			}
		}
		if reason == "" {
			if t, err = post(c.rec, c.id, rating, s.cfg.Key.ID(), now); err != nil {
				return nil, err
			}
		}
		if reason != "" {
			o.Status, o.Reason, o.Detail, o.LogIndex = Refused, reason, detail, size+int64(len(entries))
			ref := &Refusal{Digest: c.digest, Record: c.id, Reason: reason, Detail: detail, ReceivedAt: now, LogIndex: o.LogIndex}
			entry, err := refusalEntry(ref)
			if err != nil {
				return nil, err
			}
			entries = append(entries, entry)
			refusals = append(refusals, ref)
			continue
		}
		// Accepted: the record's entry, then its transaction's.
		o.Status, o.Transaction, o.LogIndex = Accepted, t, size+int64(len(entries))
		seenInput[c.id] = i
		recEntry, err := recordEntry(c.raw)
		if err != nil {
			return nil, err
		}
		txEntry, err := transactionEntry(t)
		if err != nil {
			return nil, err
		}
		entries = append(entries, recEntry, txEntry)
		records = append(records, &RecordRow{
			ID: c.id, Job: c.rec.Job, Placement: c.rec.Placement, Sequence: c.rec.Sequence,
			ComputeID: c.rec.ComputeID.String(), Offer: c.rec.Offer, Tenant: c.rec.Tenant.String(),
			Provider: c.rec.Provider.String(), HomeBroker: c.rec.HomeBroker.String(),
			ExecutingBroker: c.rec.ExecutingBroker.String(), PeriodStart: c.rec.PeriodStart,
			PeriodEnd: c.rec.PeriodEnd, Envelope: c.env.Encode(), LogIndex: o.LogIndex, ReceivedAt: now,
		})
		txs = append(txs, t)
		byPlacement[c.rec.Placement] = append(byPlacement[c.rec.Placement], PeriodRow{c.rec.Placement, c.id, c.rec.PeriodStart, c.rec.PeriodEnd})
		if h := holds[c.rec.Job]; h != nil && h.Open && t.Role != RoleExecuting {
			h.Captured += min(h.Remaining(), t.TenantCharge())
			touched[h.Job] = h
		}
	}
	if len(entries) == 0 {
		return outcomes, nil
	}
	hashes, err := auditlog.Append(size, entries, tlog.HashReaderFunc(tx.ReadHashes))
	if err != nil {
		return nil, err
	}
	if err := tx.AppendLog(size, entries, hashes); err != nil {
		return nil, err
	}
	if err := tx.InsertRecords(records); err != nil {
		return nil, err
	}
	if err := tx.InsertTransactions(txs); err != nil {
		return nil, err
	}
	if err := tx.InsertRefusals(refusals); err != nil {
		return nil, err
	}
	if len(touched) > 0 {
		var hs []*Hold
		for _, h := range touched {
			hs = append(hs, h)
		}
		if err := tx.PutHolds(hs); err != nil {
			return nil, err
		}
	}
	return outcomes, nil
}

// offerFor finds and checks the offer a record was placed on.
func (s *Settler) offerFor(tx ReadTx, r *UsageRecord) (*descriptor.Offer, Reason, string) {
	s.offersMu.Lock()
	o, ok := s.offers[r.Offer]
	s.offersMu.Unlock()
	if !ok {
		canonical, err := tx.Offer(r.Offer)
		if errors.Is(err, ErrNotFound) {
			return nil, ReasonUnknownOffer, fmt.Sprintf("no price schedule is known for offer %s", r.Offer)
		}
		if err != nil {
			return nil, ReasonUnknownOffer, err.Error()
		}
		doc, err := descriptor.ParseOffer(r.Offer, canonical)
		if err != nil {
			return nil, ReasonUnknownOffer, fmt.Sprintf("stored offer %s no longer parses: %v", r.Offer, err)
		}
		o = doc.Offer
		s.offersMu.Lock()
		s.offers[r.Offer] = o
		s.offersMu.Unlock()
	}
	switch {
	case o.ComputeID.Name() != r.ComputeID.Name():
		return nil, ReasonOfferMismatch, fmt.Sprintf("the record is for %s, offer %s is for %s", r.ComputeID, r.Offer, o.ComputeID)
	case o.Provider != r.Provider:
		return nil, ReasonOfferMismatch, fmt.Sprintf("the record names provider %s, the offer's is %s", r.Provider, o.Provider)
	}
	return o, "", ""
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
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out, err := jcs.Transform(raw)
	if err != nil {
		return nil, err
	}
	if len(out) > auditlog.MaxEntrySize {
		return nil, fmt.Errorf("settlement: log entry of %d bytes exceeds %d", len(out), auditlog.MaxEntrySize)
	}
	return out, nil
}

func recordEntry(envelope []byte) ([]byte, error) {
	return canonicalEntry(struct {
		Type     string          `json:"type"`
		Envelope json.RawMessage `json:"envelope"`
	}{"usage-record", envelope})
}

func refusalEntry(r *Refusal) ([]byte, error) {
	return canonicalEntry(struct {
		Type       string   `json:"type"`
		Digest     string   `json:"digest"`
		Record     RecordID `json:"record,omitempty"`
		Reason     Reason   `json:"reason"`
		Detail     string   `json:"detail"`
		ReceivedAt string   `json:"receivedAt"`
	}{"refusal", r.Digest, r.Record, r.Reason, r.Detail, r.ReceivedAt.UTC().Format(time.RFC3339Nano)})
}

type lineEntry struct {
	Account     Account `json:"account"`
	Amount      string  `json:"amount"`
	Meter       string  `json:"meter,omitempty"`
	Model       string  `json:"model,omitempty"`
	Tier        string  `json:"tier,omitempty"`
	Start       string  `json:"start,omitempty"`
	End         string  `json:"end,omitempty"`
	Quantity    string  `json:"quantity,omitempty"`
	PricingUnit string  `json:"pricingUnit,omitempty"`
	UnitPrice   string  `json:"unitPrice,omitempty"`
	Fee         string  `json:"fee,omitempty"`
}

func transactionEntry(t *Transaction) ([]byte, error) {
	lines := make([]lineEntry, len(t.Lines))
	for i, l := range t.Lines {
		le := lineEntry{Account: l.Account, Amount: l.Amount.Decimal(), Fee: l.Fee}
		if it := l.Item; it != nil {
			le.Meter, le.Model, le.Tier = string(it.Meter), it.Model, it.Tier
			le.Start, le.End = it.Start.UTC().Format(time.RFC3339Nano), it.End.UTC().Format(time.RFC3339Nano)
			le.Quantity, le.PricingUnit, le.UnitPrice = it.PricingQuantity, it.PricingUnit, it.UnitPrice
		}
		lines[i] = le
	}
	return canonicalEntry(struct {
		Type     string      `json:"type"`
		ID       string      `json:"id"`
		Role     Role        `json:"role"`
		Currency string      `json:"currency"`
		PostedAt string      `json:"postedAt"`
		Lines    []lineEntry `json:"lines"`
	}{"ledger-transaction", t.ID, t.Role, t.Currency, t.PostedAt.UTC().Format(time.RFC3339Nano), lines})
}
