package settlement

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/identity/canonjson"
)

// StatementPayloadType is the envelope payload type of clearing
// statements, both the issuer's and the counterparty's countersignature.
const StatementPayloadType = "application/vnd.cinet.clearing-statement.v1+json"

// A ClearingStatement nets two brokers' positions toward each other over a
// period (spec/usage-record.md, "Clearing"). The issuer signs it; the
// counterparty, having found the same figures in its own books, signs the
// same payload to countersign it. Fields are in canonical key order.
type ClearingStatement struct {
	Counterparty identity.PrincipalID `json:"counterparty"`
	Issuer       identity.PrincipalID `json:"issuer"`
	PeriodEnd    time.Time            `json:"periodEnd"`
	PeriodStart  time.Time            `json:"periodStart"`
	// Positions are the issuer's net position toward the counterparty per
	// currency, ordered by currency, zeros left out: positive means the
	// issuer owes the counterparty.
	Positions []Position `json:"positions"`
	// RecordCount and RecordsDigest name the usage records the statement
	// covers: those that moved the clearing account, with periods ending
	// in [PeriodStart, PeriodEnd). The digest is RecordsDigest's.
	RecordCount   int64  `json:"recordCount"`
	RecordsDigest string `json:"recordsDigest"`
}

// A Position is an amount in one currency.
type Position struct {
	Amount   descriptor.Nanos `json:"amount"`
	Currency string           `json:"currency"`
}

// RecordsDigest is "sha256:" and the hex SHA-256 of the record IDs, sorted,
// each followed by a newline.
func RecordsDigest(ids []RecordID) string {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	h := sha256.New()
	for _, id := range sorted {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// An IssuedStatement is a statement with its signatures and, when this
// broker computed it, the records it covers.
type IssuedStatement struct {
	Statement        ClearingStatement
	Digest           string // of the payload
	Envelope         []byte // the issuer's
	Countersignature []byte // the counterparty's envelope over the same payload; nil until countersigned
	Records          []RecordID
	LogIndex         int64
}

// ErrStatement wraps the reasons a statement is refused.
var ErrStatement = errors.New("settlement: clearing statement")

// clearingView computes, from this broker's books, its net position toward
// another broker and the records behind it.
func clearingView(tx ReadTx, other identity.PrincipalID, from, to time.Time) ([]Position, []RecordID, error) {
	account := AccountOf(ClearingAccounts, other)
	txs, err := tx.Transactions(account, from, to)
	if err != nil {
		return nil, nil, err
	}
	net := map[string]descriptor.Nanos{}
	var ids []RecordID
	for _, t := range txs {
		if net[t.Currency], err = net[t.Currency].CheckedAdd(t.Amount(account)); err != nil {
			return nil, nil, fmt.Errorf("settlement: clearing position with %s: %w", other, err)
		}
		ids = append(ids, t.Transaction.Record)
	}
	var out []Position
	for c, n := range net {
		if n != 0 {
			out = append(out, Position{Amount: n, Currency: c})
		}
	}
	slices.SortFunc(out, func(a, b Position) int { return strings.Compare(a.Currency, b.Currency) })
	slices.Sort(ids)
	return out, ids, nil
}

// checkPeriod enforces a statement period: whole seconds in UTC, start
// before end, end not after now.
func checkPeriod(from, to, now time.Time) error {
	switch {
	case from.Location() != time.UTC || to.Location() != time.UTC || from.Nanosecond() != 0 || to.Nanosecond() != 0:
		return fmt.Errorf("%w: the period must be whole seconds in UTC", ErrStatement)
	case !to.After(from):
		return fmt.Errorf("%w: the period ends (%s) before it starts (%s)", ErrStatement, to.Format(time.RFC3339), from.Format(time.RFC3339))
	case to.After(now):
		return fmt.Errorf("%w: the period ends at %s, after now (%s); records for it may still arrive", ErrStatement, to.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

// IssueStatement nets this broker's position toward a counterparty over
// [from, to), signs the statement, keeps it and logs it. Issuing the same
// statement again returns the one kept.
func (s *Settler) IssueStatement(ctx context.Context, counterparty identity.PrincipalID, from, to time.Time) (*IssuedStatement, error) {
	self := s.cfg.Key.ID()
	if counterparty == self || !s.trust.Known(counterparty) {
		return nil, fmt.Errorf("%w: %s is not a broker this one settles with", ErrStatement, counterparty)
	}
	if err := checkPeriod(from, to, s.cfg.Now().UTC()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out *IssuedStatement
	err := s.cfg.Store.Update(ctx, func(tx Tx) error {
		positions, ids, err := clearingView(tx, counterparty, from, to)
		if err != nil {
			return err
		}
		st := ClearingStatement{
			Counterparty: counterparty, Issuer: self, PeriodStart: from, PeriodEnd: to,
			Positions: positions, RecordCount: int64(len(ids)), RecordsDigest: RecordsDigest(ids),
		}
		if st.Positions == nil {
			st.Positions = []Position{}
		}
		payload, err := canonjson.Marshal(st)
		if err != nil {
			return err
		}
		out = &IssuedStatement{Statement: st, Digest: digestOf(payload), Records: ids}
		if row, err := statementRow(tx, counterparty, out.Digest); err != nil || row != nil {
			if row != nil {
				out.Envelope, out.Countersignature, out.LogIndex = row.Envelope, row.Countersignature, row.LogIndex
			}
			return err
		}
		env, err := identity.Seal(s.cfg.Key, StatementPayloadType, payload, identity.SealOptions{})
		if err != nil {
			return err
		}
		out.Envelope = env.Encode()
		entry, err := statementEntry("clearing-statement", out.Envelope, nil)
		if err != nil {
			return err
		}
		if out.LogIndex, err = tx.LogSize(); err != nil {
			return err
		}
		if err := appendLog(tx, out.LogIndex, [][]byte{entry}); err != nil {
			return err
		}
		return tx.PutStatement(&StatementRow{Digest: out.Digest, Issuer: self.String(), Counterparty: counterparty.String(),
			PeriodStart: from, PeriodEnd: to, Envelope: out.Envelope, LogIndex: out.LogIndex})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Countersign checks a statement another broker issued to this one
// against this broker's own books — the same records, the mirror-image
// positions — and if they agree signs the same payload, keeps both
// signatures and logs them. It returns the countersigned statement; its
// Countersignature goes back to the issuer.
func (s *Settler) Countersign(ctx context.Context, envelope []byte) (*IssuedStatement, error) {
	self := s.cfg.Key.ID()
	env, st, err := openStatement(envelope, s.trust, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	if st.Counterparty != self {
		return nil, fmt.Errorf("%w: it is addressed to %s, not to this broker (%s)", ErrStatement, st.Counterparty, self)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &IssuedStatement{Statement: *st, Digest: digestOf(env.Payload), Envelope: env.Encode()}
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		positions, ids, err := clearingView(tx, st.Issuer, st.PeriodStart, st.PeriodEnd)
		if err != nil {
			return err
		}
		out.Records = ids
		if err := compareStatement(st, positions, ids); err != nil {
			return err
		}
		if row, err := statementRow(tx, st.Issuer, out.Digest); err != nil || (row != nil && row.Countersignature != nil) {
			if row != nil {
				out.Countersignature, out.LogIndex = row.Countersignature, row.LogIndex
			}
			return err
		}
		counter, err := identity.Seal(s.cfg.Key, StatementPayloadType, env.Payload, identity.SealOptions{})
		if err != nil {
			return err
		}
		out.Countersignature = counter.Encode()
		return s.logCountersigned(tx, out, st.Issuer, self)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddCountersignature keeps the counterparty's countersignature of a
// statement this broker issued, and logs it.
func (s *Settler) AddCountersignature(ctx context.Context, countersignature []byte) (*IssuedStatement, error) {
	self := s.cfg.Key.ID()
	env, st, err := openStatement(countersignature, s.trust, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	if st.Issuer != self || env.Signer != st.Counterparty {
		return nil, fmt.Errorf("%w: a countersignature of this broker's statement is signed by its counterparty; this one is by %s for a statement issued by %s", ErrStatement, env.Signer, st.Issuer)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &IssuedStatement{Statement: *st, Digest: digestOf(env.Payload), Countersignature: env.Encode()}
	err = s.cfg.Store.Update(ctx, func(tx Tx) error {
		row, err := statementRow(tx, st.Counterparty, out.Digest)
		if err != nil {
			return err
		}
		if row == nil {
			return fmt.Errorf("%w: this broker issued no statement %s", ErrStatement, out.Digest)
		}
		out.Envelope = row.Envelope
		if row.Countersignature != nil {
			out.LogIndex = row.LogIndex
			return nil
		}
		return s.logCountersigned(tx, out, self, st.Counterparty)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// logCountersigned appends a countersigned statement to the log and keeps it.
func (s *Settler) logCountersigned(tx Tx, st *IssuedStatement, issuer, counterparty identity.PrincipalID) error {
	entry, err := statementEntry("clearing-countersignature", st.Envelope, st.Countersignature)
	if err != nil {
		return err
	}
	if st.LogIndex, err = tx.LogSize(); err != nil {
		return err
	}
	if err := appendLog(tx, st.LogIndex, [][]byte{entry}); err != nil {
		return err
	}
	return tx.PutStatement(&StatementRow{Digest: st.Digest, Issuer: issuer.String(), Counterparty: counterparty.String(),
		PeriodStart: st.Statement.PeriodStart, PeriodEnd: st.Statement.PeriodEnd,
		Envelope: st.Envelope, Countersignature: st.Countersignature, LogIndex: st.LogIndex})
}

// compareStatement checks a statement against this broker's own view of
// the same period: the same records and the opposite positions.
func compareStatement(st *ClearingStatement, mine []Position, ids []RecordID) error {
	var diffs []string
	theirs := map[string]descriptor.Nanos{}
	for _, p := range st.Positions {
		theirs[p.Currency] = p.Amount
	}
	ours := map[string]descriptor.Nanos{}
	for _, p := range mine {
		ours[p.Currency] = p.Amount
	}
	for _, c := range sortedKeys(theirs, ours) {
		if theirs[c] != -ours[c] {
			diffs = append(diffs, fmt.Sprintf("%s: the statement says %s owes %s %s; these books say %s", c,
				st.Issuer, st.Counterparty, theirs[c].Decimal(), (-ours[c]).Decimal()))
		}
	}
	if int64(len(ids)) != st.RecordCount || RecordsDigest(ids) != st.RecordsDigest {
		diffs = append(diffs, fmt.Sprintf("records: the statement covers %d (%s); these books have %d (%s)",
			st.RecordCount, st.RecordsDigest, len(ids), RecordsDigest(ids)))
	}
	if diffs != nil {
		return fmt.Errorf("%w: does not match this broker's books: %s", ErrStatement, strings.Join(diffs, "; "))
	}
	return nil
}

func sortedKeys(ms ...map[string]descriptor.Nanos) []string {
	var out []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// statementRow finds a kept statement by digest among those with a party.
func statementRow(tx ReadTx, party identity.PrincipalID, digest string) (*StatementRow, error) {
	rows, err := tx.Statements(party.String())
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if r.Digest == digest {
			return r, nil
		}
	}
	return nil, nil
}

// openStatement decodes an envelope holding a statement and verifies that
// one of signers signed it, the issuer or the counterparty.
func openStatement(envelope []byte, signers identity.SignerSet, now time.Time) (*identity.Envelope, *ClearingStatement, error) {
	env, err := identity.DecodeEnvelope(envelope)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrStatement, err)
	}
	if err := env.Verify(identity.Verification{PayloadType: StatementPayloadType, Signers: signers, Now: now}); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrStatement, err)
	}
	st, err := DecodeStatement(env.Payload)
	if err != nil {
		return nil, nil, err
	}
	if env.Signer != st.Issuer && env.Signer != st.Counterparty {
		return nil, nil, fmt.Errorf("%w: signed by %s, who is neither its issuer nor its counterparty", ErrStatement, env.Signer)
	}
	return env, st, nil
}

// DecodeStatement reads a statement payload, which must be the canonical
// encoding of the statement it holds.
func DecodeStatement(payload []byte) (*ClearingStatement, error) {
	var st ClearingStatement
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrStatement, err)
	}
	again, err := canonjson.Marshal(st)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, payload) {
		return nil, fmt.Errorf("%w: the payload is not the canonical encoding of a statement", ErrStatement)
	}
	switch {
	case st.Issuer.IsZero() || st.Counterparty.IsZero() || st.Issuer == st.Counterparty:
		return nil, fmt.Errorf("%w: issuer and counterparty are two different brokers", ErrStatement)
	case st.PeriodStart.Location() != time.UTC || st.PeriodEnd.Location() != time.UTC || !st.PeriodEnd.After(st.PeriodStart):
		return nil, fmt.Errorf("%w: the period is not a UTC interval", ErrStatement)
	case st.Positions == nil:
		return nil, fmt.Errorf("%w: positions is a list (empty when the brokers are even)", ErrStatement)
	case st.RecordCount < 0 || st.RecordCount > maxExactInt:
		return nil, fmt.Errorf("%w: recordCount %d is out of range", ErrStatement, st.RecordCount)
	}
	for i, p := range st.Positions {
		if !descriptor.IsCurrency(p.Currency) || p.Amount == 0 || (i > 0 && st.Positions[i-1].Currency >= p.Currency) {
			return nil, fmt.Errorf("%w: positions are non-zero amounts in distinct ISO 4217 currencies, in order", ErrStatement)
		}
	}
	return &st, nil
}

// VerifyStatement checks a statement on its own, as a regulator would:
// the issuer's signature and, when given, the counterparty's
// countersignature over the very same payload. It needs nothing else.
func VerifyStatement(statement, countersignature []byte) (*ClearingStatement, error) {
	env, err := identity.DecodeEnvelope(statement)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStatement, err)
	}
	st, err := DecodeStatement(env.Payload)
	if err != nil {
		return nil, err
	}
	if _, _, err := openStatement(statement, identity.Signers(st.Issuer), time.Time{}); err != nil {
		return nil, fmt.Errorf("issuer's signature: %w", err)
	}
	if countersignature == nil {
		return st, nil
	}
	counter, _, err := openStatement(countersignature, identity.Signers(st.Counterparty), time.Time{})
	if err != nil {
		return nil, fmt.Errorf("countersignature: %w", err)
	}
	if !bytes.Equal(counter.Payload, env.Payload) {
		return nil, fmt.Errorf("%w: the countersignature covers a different statement", ErrStatement)
	}
	return st, nil
}

// statementEntry is a clearing-statement or clearing-countersignature log
// entry; both envelopes are canonical (Encode writes them so).
func statementEntry(kind string, statement, countersignature []byte) ([]byte, error) {
	return canonicalEntry(struct {
		Countersignature json.RawMessage `json:"countersignature,omitempty"`
		Statement        json.RawMessage `json:"statement"`
		Type             string          `json:"type"`
	}{countersignature, statement, kind})
}

// ClearingView computes this broker's net position toward another broker
// over [from, to) and the records behind it, without issuing anything.
func (s *Settler) ClearingView(ctx context.Context, other identity.PrincipalID, from, to time.Time) ([]Position, []RecordID, error) {
	var positions []Position
	var ids []RecordID
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		var err error
		positions, ids, err = clearingView(tx, other, from, to)
		return err
	})
	return positions, ids, err
}

// Statements returns the clearing statements kept between this broker and
// another, issued by either.
func (s *Settler) Statements(ctx context.Context, other identity.PrincipalID) ([]*StatementRow, error) {
	var out []*StatementRow
	err := s.cfg.Store.View(ctx, func(tx ReadTx) error {
		var err error
		out, err = tx.Statements(other.String())
		return err
	})
	return out, err
}

// DiffRecords says which records one side has that the other lacks; both
// lists come out sorted.
func DiffRecords(mine, theirs []RecordID) (onlyMine, onlyTheirs []RecordID) {
	in := func(ids []RecordID) map[RecordID]bool {
		m := make(map[RecordID]bool, len(ids))
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	m, t := in(mine), in(theirs)
	for id := range m {
		if !t[id] {
			onlyMine = append(onlyMine, id)
		}
	}
	for id := range t {
		if !m[id] {
			onlyTheirs = append(onlyTheirs, id)
		}
	}
	slices.Sort(onlyMine)
	slices.Sort(onlyTheirs)
	return onlyMine, onlyTheirs
}

// LogOrigin is the audit log origin of a broker (spec/audit-log.md): its
// checkpoints are signed under this key name.
func LogOrigin(id identity.PrincipalID) string {
	return "cinet.broker/" + identity.ProviderFingerprint(id)
}
