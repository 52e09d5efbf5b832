package federation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

// ProtocolStatements carries clearing statements between the two brokers
// of a pair (spec/protocol.md §4.4): the issuer sends its signed netting
// statement and the records behind it; the counterparty, having found the
// same in its own books, countersigns it, or says which records differ.
const ProtocolStatements = "/cinet/statements/1.0.0"

// Bounds of the statements protocol.
const (
	MaxStatement       = 16 << 20 // a statement and the IDs of up to ~200,000 records
	statementsDeadline = 30 * time.Second
	keptResults        = 200 // clearing results kept for the status
)

// Clearing is the ledger side of inter-broker settlement:
// settlement.Settler implements it.
type Clearing interface {
	ClearingView(ctx context.Context, other identity.PrincipalID, from, to time.Time) ([]settlement.Position, []settlement.RecordID, error)
	IssueStatement(ctx context.Context, counterparty identity.PrincipalID, from, to time.Time) (*settlement.IssuedStatement, error)
	Countersign(ctx context.Context, envelope []byte) (*settlement.IssuedStatement, error)
	AddCountersignature(ctx context.Context, countersignature []byte) (*settlement.IssuedStatement, error)
}

type statementRequest struct {
	Statement []byte                `json:"statement"` // the issuer's envelope
	Records   []settlement.RecordID `json:"records"`   // the records it covers, sorted
}

type statementResponse struct {
	Countersignature []byte `json:"countersignature,omitempty"`
	// Code is set when the statement was not countersigned: disagree
	// (with the records that differ) or refused.
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
	// OnlyIssuer and OnlyCounterparty are the records one side posted in
	// the period and the other did not.
	OnlyIssuer       []settlement.RecordID `json:"onlyIssuer,omitempty"`
	OnlyCounterparty []settlement.RecordID `json:"onlyCounterparty,omitempty"`
}

// A ClearingResult is how one period's statement with one counterparty
// went.
type ClearingResult struct {
	Counterparty identity.PrincipalID `json:"counterparty"`
	PeriodStart  time.Time            `json:"periodStart"`
	PeriodEnd    time.Time            `json:"periodEnd"`
	Digest       string               `json:"digest,omitempty"`
	// Result is countersigned, disagreed, refused or unreachable (tried
	// again at the next round).
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
	// The records posted in the period by this broker only, and by the
	// counterparty only, when they disagree.
	OnlyHere  []settlement.RecordID `json:"onlyHere,omitempty"`
	OnlyThere []settlement.RecordID `json:"onlyThere,omitempty"`
	At        time.Time             `json:"at"`
}

// serveStatement countersigns a statement its issuer sends, or says why not.
func (n *Node) serveStatement(s network.Stream) {
	serveOne(n, s, ProtocolStatements, statementsDeadline, MaxStatement, func(ctx context.Context, asker identity.PrincipalID, req statementRequest) any {
		resp := n.countersignFor(ctx, asker, req)
		n.m.statements.WithLabelValues("served", orDefault(resp.Code, "countersigned")).Inc()
		return resp
	})
}

func (n *Node) countersignFor(ctx context.Context, asker identity.PrincipalID, req statementRequest) statementResponse {
	if n.cfg.Clearing == nil {
		return statementResponse{Code: "refused", Error: "this broker keeps no clearing statements"}
	}
	env, err := identity.DecodeEnvelope(req.Statement)
	if err != nil {
		return statementResponse{Code: "refused", Error: err.Error()}
	}
	st, err := settlement.DecodeStatement(env.Payload)
	if err != nil {
		return statementResponse{Code: "refused", Error: err.Error()}
	}
	if st.Issuer != asker || env.Signer != asker {
		return statementResponse{Code: "refused", Error: fmt.Sprintf("a statement is sent by its issuer, %s, not by %s", st.Issuer, asker)}
	}
	out, err := n.cfg.Clearing.Countersign(ctx, req.Statement)
	if err == nil {
		return statementResponse{Countersignature: out.Countersignature}
	}
	if !errors.Is(err, settlement.ErrStatement) {
		n.cfg.Log.Warn("countersigning a statement", "issuer", asker, "err", err)
		return statementResponse{Code: "unavailable", Error: "the counterparty could not check the statement now; send it again"}
	}
	resp := statementResponse{Code: "disagree", Error: err.Error()}
	if _, mine, verr := n.cfg.Clearing.ClearingView(ctx, asker, st.PeriodStart, st.PeriodEnd); verr == nil {
		resp.OnlyIssuer, resp.OnlyCounterparty = settlement.DiffRecords(req.Records, mine)
	}
	n.cfg.Log.Error("a clearing statement disagrees with this broker's books", "issuer", asker,
		"period", st.PeriodStart.Format(time.RFC3339)+"/"+st.PeriodEnd.Format(time.RFC3339), "err", err,
		"onlyIssuer", resp.OnlyIssuer, "onlyHere", resp.OnlyCounterparty)
	return resp
}

// clearPeriod issues this broker's statement toward a counterparty for a
// period over the records ids, has the counterparty countersign it, and
// keeps the countersignature.
func (n *Node) clearPeriod(ctx context.Context, other identity.PrincipalID, from, to time.Time) ClearingResult {
	res := ClearingResult{Counterparty: other, PeriodStart: from, PeriodEnd: to, At: n.cfg.Now().UTC()}
	st, err := n.cfg.Clearing.IssueStatement(ctx, other, from, to)
	if err != nil {
		res.Result, res.Detail = "refused", err.Error()
		return res
	}
	res.Digest = st.Digest
	if st.Countersignature != nil {
		res.Result = "countersigned" // before
		return res
	}
	var resp statementResponse
	if err := n.call(ctx, other, ProtocolStatements, statementsDeadline, MaxStatement, statementRequest{Statement: st.Envelope, Records: st.Records}, &resp); err != nil {
		res.Result, res.Detail = "unreachable", err.Error()
		return res
	}
	switch resp.Code {
	case "":
		if _, err := n.cfg.Clearing.AddCountersignature(ctx, resp.Countersignature); err != nil {
			res.Result, res.Detail = "refused", "the countersignature: "+err.Error()
			return res
		}
		res.Result = "countersigned"
	case "disagree":
		res.Result, res.Detail, res.OnlyHere, res.OnlyThere = "disagreed", resp.Error, resp.OnlyIssuer, resp.OnlyCounterparty
		n.cfg.Log.Error("a counterparty disagrees with this broker's clearing statement", "counterparty", other,
			"period", from.Format(time.RFC3339)+"/"+to.Format(time.RFC3339), "detail", resp.Error,
			"onlyHere", resp.OnlyIssuer, "onlyThere", resp.OnlyCounterparty)
	case "unavailable":
		res.Result, res.Detail = "unreachable", resp.Error
	default:
		res.Result, res.Detail = "refused", resp.Error
	}
	return res
}

// statementWindow is how many past periods the clearing loop looks back
// over: a record that reaches the books late (a delivery held up by a
// partition) is covered by a new statement of its period while the period
// is in the window.
const statementWindow = 48

// clearing issues, every period, this broker's statement toward each
// member it posted records with in the period, once the period is over
// and a delay for late records has passed. A period whose records change
// afterwards — within the window — gets a new statement; one the
// counterparty disagreed with is offered again after a period (at least
// 10 s), in case the counterparty's books caught up.
func (n *Node) clearing(ctx context.Context) {
	period, delay := n.cfg.StatementPeriod, n.cfg.StatementDelay
	tick := time.NewTicker(max(period/4, 100*time.Millisecond))
	defer tick.Stop()
	type key struct {
		other identity.PrincipalID
		from  int64
	}
	type state struct {
		records string    // the records digest concluded
		retry   time.Time // when a disagreement is tried again
	}
	done := map[key]state{}
	for {
		now := n.cfg.Now().UTC()
		last := now.Add(-delay).Truncate(period) // the end of the last period closed
		first := last.Add(-statementWindow * period)
		for end := first.Add(period); !end.After(last); end = end.Add(period) {
			from := end.Add(-period)
			for _, other := range n.counterparties() {
				if other == n.self {
					continue
				}
				k := key{other, from.Unix()}
				_, ids, err := n.cfg.Clearing.ClearingView(ctx, other, from, end)
				if err != nil || len(ids) == 0 {
					continue // nothing between them (or the books cannot say now)
				}
				digest := settlement.RecordsDigest(ids)
				if st, ok := done[k]; ok && st.records == digest && now.Before(st.retry) {
					continue
				}
				res := n.clearPeriod(ctx, other, from, end)
				if ctx.Err() != nil {
					return
				}
				switch res.Result {
				case "countersigned":
					done[k] = state{records: digest, retry: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
				case "disagreed", "refused":
					// Most often the counterparty has yet to take in a
					// record (a delivery in flight): offer it again.
					done[k] = state{records: digest, retry: now.Add(max(period, 10*time.Second))}
				}
				n.m.statements.WithLabelValues("issued", res.Result).Inc()
				n.noteClearing(res)
			}
		}
		for k := range done {
			if k.from < first.Unix() {
				delete(done, k) // out of the window
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (n *Node) noteClearing(r ClearingResult) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if i := slices.IndexFunc(n.cleared, func(x ClearingResult) bool {
		return x.Counterparty == r.Counterparty && x.PeriodStart.Equal(r.PeriodStart)
	}); i >= 0 {
		n.cleared = slices.Delete(n.cleared, i, i+1)
	}
	n.cleared = append(n.cleared, r)
	if len(n.cleared) > keptResults {
		n.cleared = slices.Delete(n.cleared, 0, len(n.cleared)-keptResults)
	}
}

// Clearings returns the latest clearing results, oldest first.
func (n *Node) Clearings() []ClearingResult {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.cleared)
}

// counterparties are the brokers this one may have settled with: the
// members, or in open mode the brokers that announced themselves.
func (n *Node) counterparties() []identity.PrincipalID {
	if m := n.Members(); m != nil {
		return m
	}
	var out []identity.PrincipalID
	for _, a := range n.Brokers() {
		out = append(out, a.Broker)
	}
	return out
}
