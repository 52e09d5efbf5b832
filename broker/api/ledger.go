package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
	"github.com/cinet/cinet/settlement/focus"
)

// account picks the account a ledger request is about. A tenant or a
// provider sees only its own account (the default); a regulator or the
// operator any account, or every one when none is named.
func (s *Server) account(w http.ResponseWriter, r *http.Request, c *Caller) (settlement.Account, bool) {
	name := r.URL.Query().Get("account")
	var own settlement.Account
	switch c.Role {
	case Tenant:
		own = settlement.AccountOf(settlement.TenantAccounts, c.Principal)
	case Provider:
		own = settlement.AccountOf(settlement.ProviderAccounts, c.Principal)
	}
	if name == "" {
		return own, true
	}
	a, err := settlement.ParseAccount(name)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", err.Error())
		return "", false
	}
	if own != "" && a != own {
		problem(w, http.StatusForbidden, "forbidden", "Forbidden", fmt.Sprintf("a %s reads its own account, %s", c.Role, own))
		return "", false
	}
	return a, true
}

var (
	monthRE = regexp.MustCompile(`^\d{4}-\d{2}$`)
	dayRE   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// ParsePeriod reads a period: a month (2026-11), a day (2026-11-30) or
// START/END in RFC 3339, in UTC, start included, end excluded.
func ParsePeriod(s string) (from, to time.Time, err error) {
	bad := fmt.Errorf("period %q: want a month (2026-11), a day (2026-11-30) or START/END in RFC 3339", s)
	switch {
	case monthRE.MatchString(s):
		t, err := time.Parse("2006-01", s)
		if err != nil {
			return from, to, bad
		}
		return t, t.AddDate(0, 1, 0), nil
	case dayRE.MatchString(s):
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return from, to, bad
		}
		return t, t.AddDate(0, 0, 1), nil
	}
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return from, to, bad
	}
	if from, err = time.Parse(time.RFC3339, a); err != nil {
		return from, to, bad
	}
	if to, err = time.Parse(time.RFC3339, b); err != nil {
		return from, to, bad
	}
	if !to.After(from) {
		return from, to, fmt.Errorf("period %q ends before it starts", s)
	}
	return from.UTC(), to.UTC(), nil
}

func (s *Server) period(w http.ResponseWriter, r *http.Request) (time.Time, time.Time, bool) {
	p := r.URL.Query().Get("period")
	if p == "" {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "period is required: a month (2026-11), a day (2026-11-30) or START/END")
		return time.Time{}, time.Time{}, false
	}
	from, to, err := ParsePeriod(p)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", err.Error())
		return from, to, false
	}
	return from, to, true
}

func (s *Server) balances(w http.ResponseWriter, r *http.Request, c *Caller) {
	a, ok := s.account(w, r, c)
	if !ok {
		return
	}
	bs, err := s.cfg.Settler.Balances(r.Context(), a)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := v1.Balances{Balances: []v1.Balance{}}
	for _, b := range bs {
		out.Balances = append(out.Balances, v1.Balance{Account: string(b.Account), Currency: b.Currency, Amount: b.Amount})
	}
	if c.Role == Regulator || c.Role == Operator {
		if out.TrialBalance, err = s.cfg.Settler.TrialBalance(r.Context()); err != nil {
			s.internal(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) statement(w http.ResponseWriter, r *http.Request, c *Caller) {
	a, ok := s.account(w, r, c)
	if !ok {
		return
	}
	if a == "" {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "account is required")
		return
	}
	from, to, ok := s.period(w, r)
	if !ok {
		return
	}
	st, err := s.cfg.Settler.Statement(r.Context(), a, from, to)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := NewStatementView(st)
	writeJSON(w, http.StatusOK, out)
}

// A StatementView is an account's statement as the API and the CLI show
// it.
type StatementView struct {
	Account      settlement.Account          `json:"account"`
	From         time.Time                   `json:"from"`
	To           time.Time                   `json:"to"`
	Transactions []StatementEntry            `json:"transactions"`
	Net          map[string]descriptor.Nanos `json:"net"`
}

// A StatementEntry is one transaction that moved the account.
type StatementEntry struct {
	Record       settlement.RecordID `json:"record"`
	Job          string              `json:"job"`
	Placement    string              `json:"placement"`
	PeriodStart  time.Time           `json:"periodStart"`
	PeriodEnd    time.Time           `json:"periodEnd"`
	Role         settlement.Role     `json:"role"`
	Currency     string              `json:"currency"`
	Amount       descriptor.Nanos    `json:"amount"` // what the transaction moved in the account
	HomeFee      descriptor.Nanos    `json:"homeFee"`
	ExecutingFee descriptor.Nanos    `json:"executingFee"`
	LogIndex     int64               `json:"logIndex"` // of the record's entry in the audit log
	Items        []ItemView          `json:"items"`
}

// An ItemView is a rated item.
type ItemView struct {
	Meter           settlement.MeterKind `json:"meter"`
	Model           string               `json:"model,omitempty"`
	Tier            string               `json:"tier,omitempty"`
	Start           time.Time            `json:"start"`
	End             time.Time            `json:"end"`
	ConsumedQty     string               `json:"consumedQuantity"`
	PricingQuantity string               `json:"pricingQuantity"`
	PricingUnit     string               `json:"pricingUnit"`
	UnitPrice       string               `json:"unitPrice"`
	Amount          descriptor.Nanos     `json:"amount"`
}

// NewStatementView shows a statement.
func NewStatementView(st *settlement.AccountStatement) *StatementView {
	out := &StatementView{Account: st.Account, From: st.From, To: st.To, Transactions: []StatementEntry{}, Net: st.Net}
	for _, t := range st.Transactions {
		e := StatementEntry{t.Transaction.Record, t.Usage.Job, t.Usage.Placement, t.Usage.PeriodStart, t.Usage.PeriodEnd, t.Role, t.Currency,
			t.Amount(st.Account), t.HomeFee, t.ExecutingFee, t.Usage.LogIndex, []ItemView{}}
		for _, it := range t.Items {
			e.Items = append(e.Items, ItemView{it.Meter, it.Model, it.Tier, it.Start, it.End, it.ConsumedQty, it.PricingQuantity, it.PricingUnit, it.UnitPrice, it.Amount})
		}
		out.Transactions = append(out.Transactions, e)
	}
	return out
}

func (s *Server) export(w http.ResponseWriter, r *http.Request, c *Caller) {
	if f := r.URL.Query().Get("format"); f != "" && f != "focus" {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "format: the one format is focus")
		return
	}
	a, ok := s.account(w, r, c)
	if !ok {
		return
	}
	from, to, ok := s.period(w, r)
	if !ok {
		return
	}
	st, err := s.cfg.Settler.Statement(r.Context(), a, from, to)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := focus.Write(&buf, &focus.Export{Broker: s.cfg.Key.ID(), Account: a, From: from, To: to, Transactions: st.Transactions}); err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request, c *Caller) {
	cp, err := s.cfg.Settler.Checkpoint(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(cp.Note)
}

// witnessed serves the newest checkpoint of the log that other members
// cosigned, with their cosignatures (spec/protocol.md §4.5).
func (s *Server) witnessed(w http.ResponseWriter, r *http.Request, c *Caller) {
	var signed []byte
	if s.cfg.Federation != nil {
		signed = s.cfg.Federation.Witnessed()
	}
	if signed == nil {
		problem(w, http.StatusNotFound, "not-witnessed", "Not Found", "no member has cosigned a checkpoint of this broker's log yet")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(signed)
}

// A ClearingView is a clearing statement between this broker and another,
// with its signatures.
type ClearingView = v1.ClearingStatement

// clearing lists the clearing statements kept between this broker and
// another (?with=DID), issued by either.
func (s *Server) clearing(w http.ResponseWriter, r *http.Request, c *Caller) {
	with, err := identity.ParsePrincipalID(r.URL.Query().Get("with"))
	if err != nil {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "with: want the other broker's did:key ("+err.Error()+")")
		return
	}
	rows, err := s.cfg.Settler.Statements(r.Context(), with)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := struct {
		Statements []ClearingView `json:"statements"`
	}{Statements: []ClearingView{}}
	for _, row := range rows {
		out.Statements = append(out.Statements, ClearingView{Digest: row.Digest, Issuer: row.Issuer, Counterparty: row.Counterparty,
			PeriodStart: row.PeriodStart, PeriodEnd: row.PeriodEnd, Statement: row.Envelope, Countersignature: row.Countersignature, LogIndex: row.LogIndex})
	}
	writeJSON(w, http.StatusOK, out)
}

// CheckpointView is a checkpoint the broker issued, and when.
type CheckpointView struct {
	Size       int64     `json:"size"`
	SignedAt   time.Time `json:"signedAt,omitzero"`
	Checkpoint string    `json:"checkpoint"` // the signed note
}

// checkpoints lists the checkpoints issued, newest first: the log's size
// over time.
func (s *Server) checkpoints(w http.ResponseWriter, r *http.Request, c *Caller) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "limit: want 1 to 1000")
			return
		}
		limit = n
	}
	kept, err := s.cfg.Settler.Checkpoints(r.Context(), limit)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := []CheckpointView{}
	for _, k := range kept {
		out = append(out, CheckpointView{Size: k.Size, SignedAt: k.SignedAt, Checkpoint: string(k.Note)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"checkpoints": out})
}

func (s *Server) consistency(w http.ResponseWriter, r *http.Request, c *Caller) {
	q := r.URL.Query()
	old, err1 := strconv.ParseInt(q.Get("old"), 10, 64)
	n, err2 := strconv.ParseInt(q.Get("new"), 10, 64)
	if err1 != nil || err2 != nil || old < 0 || old > n {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "old and new are log sizes, old ≤ new")
		return
	}
	size, err := s.cfg.Settler.LogSize(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if n > size {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", fmt.Sprintf("the log has %d entries, not %d", size, n))
		return
	}
	p, err := s.cfg.Settler.ProveConsistency(r.Context(), old, n)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	hashes := []string{}
	for _, h := range p {
		hashes = append(hashes, h.String())
	}
	writeJSON(w, http.StatusOK, map[string]any{"old": old, "new": n, "proof": hashes})
}

func (s *Server) proof(w http.ResponseWriter, r *http.Request, c *Caller) {
	q := r.URL.Query()
	id := settlement.RecordID(q.Get("record"))
	if (id == "") == (q.Get("index") == "") {
		problem(w, http.StatusBadRequest, "bad-request", "Bad Request", "give record (a usage record's ID) or index (a log entry's, for regulators and operators)")
		return
	}
	var p *settlement.Proof
	var err error
	if v := q.Get("index"); v != "" {
		// Any entry by its place in the log: statements, refusals and
		// all. Tenants and providers prove their own records by ID.
		if c.Role != Regulator && c.Role != Operator {
			problem(w, http.StatusForbidden, "forbidden", "Forbidden", "proofs by index are for regulators and operators")
			return
		}
		index, perr := strconv.ParseInt(v, 10, 64)
		size, serr := s.cfg.Settler.LogSize(r.Context())
		if serr != nil {
			s.internal(w, r, serr)
			return
		}
		if perr != nil || index < 0 || index >= size {
			problem(w, http.StatusBadRequest, "bad-request", "Bad Request", fmt.Sprintf("index: want 0 to %d", size-1))
			return
		}
		p, err = s.cfg.Settler.ProveIndex(r.Context(), "", index)
	} else {
		p, err = s.cfg.Settler.Prove(r.Context(), id)
	}
	if errors.Is(err, settlement.ErrNotFound) {
		problem(w, http.StatusNotFound, "record-not-found", "Not Found", "no record "+string(id))
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if c.Role == Tenant || c.Role == Provider {
		if !partyTo(p.Entry, c.Principal) {
			problem(w, http.StatusNotFound, "record-not-found", "Not Found", "no record "+string(id))
			return
		}
	}
	// An inclusion proof: the three files 'cinet audit verify' and any
	// C2SP verifier take.
	writeJSON(w, http.StatusOK, v1.Proof{Record: string(id), Index: p.Index, Entry: p.Entry, Checkpoint: string(p.Checkpoint.Note), Proof: string(p.Receipt), VerifierKey: s.cfg.Settler.VerifierKey()})
}

// partyTo reports whether a usage-record log entry names id as its tenant
// or provider.
func partyTo(entry []byte, id identity.PrincipalID) bool {
	var e struct {
		Envelope json.RawMessage `json:"envelope"`
	}
	if json.Unmarshal(entry, &e) != nil {
		return false
	}
	env, err := identity.DecodeEnvelope(e.Envelope)
	if err != nil {
		return false
	}
	rec, err := settlement.DecodeRecord(env.Payload)
	return err == nil && (rec.Tenant == id || rec.Provider == id)
}

func (s *Server) tiles(w http.ResponseWriter, r *http.Request, c *Caller) {
	// Entries name tenants: only the authenticated route serves them.
	auditlog.Handler(s.cfg.Settler.TileSource(), c != nil, func(w http.ResponseWriter, status int, err error) {
		if status == http.StatusInternalServerError {
			s.internal(w, r, err)
			return
		}
		problem(w, status, "not-found", "Not Found", err.Error())
	}).ServeHTTP(w, r)
}
