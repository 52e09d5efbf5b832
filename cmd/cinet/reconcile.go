package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/broker/federation"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/auditlog"
)

// A reconciliation is what 'cinet audit reconcile' found.
type reconciliation struct {
	Brokers  []reconciledBroker `json:"brokers"`
	Pairs    []reconciledPair   `json:"pairs"`
	Problems []string           `json:"problems"`
}

type reconciledBroker struct {
	URL         string   `json:"url"`
	Broker      string   `json:"broker"`
	Region      string   `json:"region"`
	LogSize     int64    `json:"logSize"`
	Witnessed   int64    `json:"witnessedSize"` // the size of the newest cosigned checkpoint; -1 for none
	WitnessedBy []string `json:"witnessedBy"`
}

type reconciledPair struct {
	A          string `json:"a"`
	B          string `json:"b"`
	Statements int    `json:"statements"` // countersigned statements found on both sides
	Records    int64  `json:"records"`    // the records they cover
	Open       int    `json:"open"`       // issued, not countersigned, not superseded
	Logged     int    `json:"logged"`     // statements proven to be in the log of the side that keeps them
}

func newReconcileCmd() *cobra.Command {
	var key, token, ca string
	var wait time.Duration
	var o output
	cmd := &cobra.Command{
		Use:   "reconcile BROKER_URL...",
		Short: "Check that a set of brokers' books and logs agree with each other",
		Long: `Reconcile asks each broker, as a regulator, for its audit log and its clearing
statements with each of the others, and checks with nothing but what they
return:

  - each broker's latest checkpoint is signed by the broker's own key;
  - its newest witnessed checkpoint is cosigned by at least one of the other
    brokers (C2SP tlog-cosignature, under cinet.witness/<fingerprint>) and
    the latest checkpoint is consistent with it (a consistency proof);
  - every clearing statement between two of them verifies — the issuer's
    signature and the counterparty's countersignature over the same payload;
  - every statement countersigned on one side is kept, countersigned, on the
    other; and a statement left without a countersignature is reported
    unless a later statement of the same period replaced it.

It exits with status 1 and lists the problems when any check fails; with
--wait it checks again every second until every check passes or the time
runs out (statements of the last seconds may still be in flight). The
regulator's key (--key, or $CINET_KEY) must be admitted at every broker.`,
		Example: `  cinet audit reconcile http://a:8420 http://b:8420 http://c:8420 --key regulator.key`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := o.json(); err != nil {
				return err
			}
			var clients []*client.Client
			for _, u := range args {
				if _, err := url.ParseRequestURI(u); err != nil {
					return usageError{fmt.Errorf("%q: want a broker's URL: %w", u, err)}
				}
				r := remote{broker: u, key: key, token: token, ca: ca}
				c, err := r.client()
				if err != nil {
					return err
				}
				clients = append(clients, c)
			}
			deadline := time.Now().Add(wait)
			var rec *reconciliation
			for {
				var err error
				if rec, err = reconcile(cmd.Context(), clients); err != nil {
					return err
				}
				if len(rec.Problems) == 0 || !time.Now().Before(deadline) {
					break
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(time.Second):
				}
			}
			if structured, _ := o.json(); structured {
				if err := o.write(cmd.OutOrStdout(), rec); err != nil {
					return err
				}
			} else {
				printReconciliation(cmd, rec)
			}
			if len(rec.Problems) > 0 {
				return fmt.Errorf("reconciliation found %d problem(s)", len(rec.Problems))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the regulator's key file, which signs requests (or $CINET_KEY)")
	cmd.Flags().StringVar(&token, "token", "", "a token instead of a key (or $CINET_TOKEN)")
	cmd.Flags().StringVar(&ca, "ca", "", "a PEM file of CA certificates to trust for the brokers' TLS, besides the system's (or $CINET_CA)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "check again every second until every check passes, for up to this long")
	o.register(cmd)
	return cmd
}

func printReconciliation(cmd *cobra.Command, rec *reconciliation) {
	w := cmd.OutOrStdout()
	for _, b := range rec.Brokers {
		witnessed := "not witnessed"
		if b.Witnessed >= 0 {
			witnessed = fmt.Sprintf("witnessed at size %d by %d broker(s)", b.Witnessed, len(b.WitnessedBy))
		}
		fmt.Fprintf(w, "broker %s (%s): log of %d entries, %s\n", b.Broker, b.Region, b.LogSize, witnessed)
	}
	for _, p := range rec.Pairs {
		fmt.Fprintf(w, "%s ↔ %s: %d statement(s) countersigned on both sides, covering %d record(s); %d open\n", p.A, p.B, p.Statements, p.Records, p.Open)
	}
	if len(rec.Problems) == 0 {
		fmt.Fprintln(w, "reconciled: every check passed")
		return
	}
	for _, p := range rec.Problems {
		fmt.Fprintln(w, "PROBLEM:", p)
	}
}

// reconcile runs the checks over the brokers the clients reach.
func reconcile(ctx context.Context, clients []*client.Client) (*reconciliation, error) {
	rec := &reconciliation{Brokers: []reconciledBroker{}, Pairs: []reconciledPair{}, Problems: []string{}}
	problem := func(format string, args ...any) { rec.Problems = append(rec.Problems, fmt.Sprintf(format, args...)) }
	var ids []identity.PrincipalID
	for _, c := range clients {
		info, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Base, err)
		}
		if slices.Contains(ids, info.Broker) {
			return nil, usageError{fmt.Errorf("%s is broker %s, named twice", c.Base, info.Broker)}
		}
		ids = append(ids, info.Broker)
		b := reconciledBroker{URL: c.Base, Broker: info.Broker.String(), Region: info.Region, Witnessed: -1, WitnessedBy: []string{}}
		vkey, err := info.Broker.VerifierKey(settlement.LogOrigin(info.Broker))
		if err != nil {
			return nil, err
		}
		if info.VerifierKey != vkey {
			problem("%s: its log's verifier key is not its own broker key's (%s)", info.Broker, info.VerifierKey)
		}
		signed, err := c.Checkpoint(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Base, err)
		}
		latest, err := auditlog.OpenCheckpoint(signed, vkey)
		if err != nil {
			problem("%s: its latest checkpoint: %v", info.Broker, err)
			rec.Brokers = append(rec.Brokers, b)
			continue
		}
		b.LogSize = latest.Size
		rec.Brokers = append(rec.Brokers, b)
	}
	for i, c := range clients {
		b := &rec.Brokers[i]
		witnessed, err := c.Bytes(ctx, "GET", "/v1/audit/witnessed")
		var he *client.ProblemError
		if errors.As(err, &he) && he.Status == 404 {
			if len(clients) > 1 {
				problem("%s: no other broker has cosigned a checkpoint of its log", b.Broker)
			}
			continue
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Base, err)
		}
		if err := checkWitnessed(ctx, c, ids[i], ids, witnessed, b); err != nil {
			problem("%s: %v", b.Broker, err)
		}
	}
	for i := range clients {
		for j := i + 1; j < len(clients); j++ {
			p, problems, err := reconcilePair(ctx, clients[i], clients[j], ids[i], ids[j])
			if err != nil {
				return nil, err
			}
			rec.Pairs = append(rec.Pairs, p)
			rec.Problems = append(rec.Problems, problems...)
		}
	}
	return rec, nil
}

// checkWitnessed verifies a broker's witnessed checkpoint: its own
// signature, the cosignatures of the other brokers given, and that its
// latest checkpoint extends it.
func checkWitnessed(ctx context.Context, c *client.Client, log identity.PrincipalID, all []identity.PrincipalID, signed []byte, b *reconciledBroker) error {
	vkey, _ := log.VerifierKey(settlement.LogOrigin(log))
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	verifiers := []note.Verifier{v}
	names := map[string]identity.PrincipalID{}
	for _, w := range all {
		if w == log {
			continue
		}
		cv, err := w.CosignatureVerifier(federation.WitnessName(w))
		if err != nil {
			return err
		}
		verifiers = append(verifiers, cv)
		names[cv.Name()] = w
	}
	n, err := note.Open(signed, note.VerifierList(verifiers...))
	if err != nil {
		return fmt.Errorf("its witnessed checkpoint does not verify: %w", err)
	}
	var logSigned bool
	for _, s := range n.Sigs {
		if w, ok := names[s.Name]; ok {
			b.WitnessedBy = append(b.WitnessedBy, w.String())
		} else if s.Name == v.Name() {
			logSigned = true
		}
	}
	sort.Strings(b.WitnessedBy)
	if !logSigned {
		return errors.New("its witnessed checkpoint is not signed by its log")
	}
	if len(b.WitnessedBy) == 0 {
		return errors.New("its witnessed checkpoint bears no cosignature of the brokers given")
	}
	own := n.Sigs[slices.IndexFunc(n.Sigs, func(s note.Signature) bool { return s.Name == v.Name() })]
	bare := []byte(n.Text + "\n— " + own.Name + " " + own.Base64 + "\n")
	w, err := auditlog.OpenCheckpoint(bare, vkey)
	if err != nil {
		return fmt.Errorf("its witnessed checkpoint: %w", err)
	}
	b.Witnessed = w.Size
	if w.Size > b.LogSize {
		return fmt.Errorf("its witnessed checkpoint (size %d) is ahead of its latest (size %d)", w.Size, b.LogSize)
	}
	latestNote, err := c.Checkpoint(ctx)
	if err != nil {
		return err
	}
	latest, err := auditlog.OpenCheckpoint(latestNote, vkey)
	if err != nil {
		return err
	}
	var resp struct{ Proof []string }
	if err := c.JSON(ctx, "GET", "/v1/audit/consistency?old="+strconv.FormatInt(w.Size, 10)+"&new="+strconv.FormatInt(latest.Size, 10), nil, "", &resp); err != nil {
		return fmt.Errorf("asking for a consistency proof: %w", err)
	}
	var proof []tlog.Hash
	for _, h := range resp.Proof {
		x, err := tlog.ParseHash(h)
		if err != nil {
			return fmt.Errorf("a consistency proof hash: %w", err)
		}
		proof = append(proof, x)
	}
	if err := auditlog.VerifyConsistency(w, latest, proof); err != nil {
		return fmt.Errorf("its latest checkpoint (size %d) does not extend the witnessed one (size %d): %w", latest.Size, w.Size, err)
	}
	return nil
}

// reconcilePair checks the clearing statements two brokers keep of each
// other.
func reconcilePair(ctx context.Context, ca, cb *client.Client, a, b identity.PrincipalID) (reconciledPair, []string, error) {
	atA, err := clearingWith(ctx, ca, b)
	if err != nil {
		return reconciledPair{}, nil, err
	}
	atB, err := clearingWith(ctx, cb, a)
	if err != nil {
		return reconciledPair{}, nil, err
	}
	r := &pairCheck{ctx: ctx, ca: ca, cb: cb, a: a, b: b, atA: atA, atB: atB,
		p: reconciledPair{A: a.String(), B: b.String()}, settled: countersignedPeriods(atA, atB)}
	digests := slices.Collect(maps.Keys(atA))
	for d := range atB {
		if _, ok := atA[d]; !ok {
			digests = append(digests, d)
		}
	}
	sort.Strings(digests)
	for _, d := range digests {
		r.statement(d)
	}
	return r.p, r.problems, nil
}

// clearingWith lists the clearing statements c's broker keeps with other,
// by digest.
func clearingWith(ctx context.Context, c *client.Client, other identity.PrincipalID) (map[string]v1.ClearingStatement, error) {
	var out struct{ Statements []v1.ClearingStatement }
	if err := c.JSON(ctx, "GET", "/v1/ledger/clearing?with="+url.QueryEscape(other.String()), nil, "", &out); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Base, err)
	}
	m := map[string]v1.ClearingStatement{}
	for _, s := range out.Statements {
		m[s.Digest] = s
	}
	return m, nil
}

// countersignedPeriods are the issuers' periods that have a countersigned
// statement on either side: a statement left open is superseded by it.
func countersignedPeriods(sides ...map[string]v1.ClearingStatement) map[string]bool {
	settled := map[string]bool{}
	for _, side := range sides {
		for _, s := range side {
			if s.Countersignature != nil {
				settled[periodKey(s)] = true
			}
		}
	}
	return settled
}

func periodKey(s v1.ClearingStatement) string {
	return s.Issuer + " " + s.PeriodStart.String() + " " + s.PeriodEnd.String()
}

// A pairCheck is the reconciliation of two brokers' statements under way.
type pairCheck struct {
	ctx      context.Context
	ca, cb   *client.Client
	a, b     identity.PrincipalID
	atA, atB map[string]v1.ClearingStatement
	settled  map[string]bool
	p        reconciledPair
	problems []string
}

func (r *pairCheck) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// statement checks the statement of digest d as each side keeps it: it is
// between the two, its signatures verify, each side's log proves it, and
// both keep it countersigned.
func (r *pairCheck) statement(d string) {
	x, inA := r.atA[d]
	y, inB := r.atB[d]
	s := x
	if !inA {
		s = y
	}
	a, b := r.a.String(), r.b.String()
	name := fmt.Sprintf("statement %s (%s → %s, %s to %s)", d, s.Issuer, s.Counterparty, s.PeriodStart.Format("2006-01-02T15:04:05Z"), s.PeriodEnd.Format("2006-01-02T15:04:05Z"))
	if s.Issuer != a && s.Issuer != b || s.Counterparty != a && s.Counterparty != b {
		r.problem("%s is not between %s and %s", name, a, b)
		return
	}
	for _, v := range []v1.ClearingStatement{x, y} {
		r.verify(name, s, v)
	}
	r.logged(name, r.ca, r.a, x, inA)
	r.logged(name, r.cb, r.b, y, inB)
	counterA, counterB := inA && x.Countersignature != nil, inB && y.Countersignature != nil
	switch {
	case counterA && counterB:
		if !bytes.Equal(x.Statement, y.Statement) {
			r.problem("%s: the two sides keep different issuer envelopes", name)
		}
		r.p.Statements++
		if st, err := settlement.VerifyStatement(x.Statement, x.Countersignature); err == nil {
			r.p.Records += st.RecordCount
		}
	case counterA || counterB:
		missing := r.b
		if counterB {
			missing = r.a
		}
		r.problem("%s is countersigned on one side and not kept countersigned by %s", name, missing)
	case !r.settled[periodKey(s)]:
		r.p.Open++
		r.problem("%s was never countersigned: the counterparty disagreed, or has not answered yet", name)
	}
}

// verify checks one side's copy of statement s: its signatures, and that
// its signed payload names the same brokers.
func (r *pairCheck) verify(name string, s, v v1.ClearingStatement) {
	if v.Statement == nil {
		return
	}
	st, err := settlement.VerifyStatement(v.Statement, v.Countersignature)
	if err != nil {
		r.problem("%s does not verify: %v", name, err)
		return
	}
	if st.Issuer.String() != s.Issuer || st.Counterparty.String() != s.Counterparty {
		r.problem("%s: its signed payload names %s → %s", name, st.Issuer, st.Counterparty)
	}
}

// logged checks that a side that keeps the statement proves it in its
// audit log.
func (r *pairCheck) logged(name string, c *client.Client, id identity.PrincipalID, v v1.ClearingStatement, kept bool) {
	if !kept {
		return
	}
	if err := provenInLog(r.ctx, c, id, v); err != nil {
		r.problem("%s: %v", name, err)
		return
	}
	r.p.Logged++
}

// provenInLog checks that a broker's audit log holds, at the index it
// gives, the statement it keeps: an inclusion proof against a checkpoint
// signed by the broker's key, of an entry whose statement is this one.
func provenInLog(ctx context.Context, c *client.Client, broker identity.PrincipalID, v v1.ClearingStatement) error {
	var pv v1.Proof
	if err := c.JSON(ctx, "GET", "/v1/audit/proof?index="+strconv.FormatInt(v.LogIndex, 10), nil, "", &pv); err != nil {
		return fmt.Errorf("asking %s for the log entry at %d: %w", broker, v.LogIndex, err)
	}
	vkey, err := broker.VerifierKey(settlement.LogOrigin(broker))
	if err != nil {
		return err
	}
	if _, _, err := auditlog.VerifyReceipt([]byte(pv.Proof), pv.Entry, vkey, nil); err != nil {
		return fmt.Errorf("the log entry %d of %s: %w", v.LogIndex, broker, err)
	}
	var entry struct {
		Statement json.RawMessage `json:"statement"`
	}
	var inLog, kept any
	if json.Unmarshal(pv.Entry, &entry) != nil || json.Unmarshal(entry.Statement, &inLog) != nil || json.Unmarshal(v.Statement, &kept) != nil || !reflect.DeepEqual(inLog, kept) {
		return fmt.Errorf("the log entry %d of %s is not this statement", v.LogIndex, broker)
	}
	return nil
}
