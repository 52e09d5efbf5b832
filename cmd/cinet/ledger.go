package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/broker/api"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
)

func newLedgerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Settle usage: ingest signed usage records, balances, statements, clearing",
		Long: `The ledger commands work on a broker's books in its data directory (--data),
without a running broker: ingest signed usage records, read balances and
account statements, and clear positions with other brokers. Every command
takes the same --data, --store, --broker-key and --peer flags; with --broker URL
(and --key, your key) it asks a running broker instead.`,
	}
	cmd.AddCommand(newLedgerIngestCmd(), newLedgerBalanceCmd(), newLedgerStatementCmd(), newClearingCmd())
	return cmd
}

// An input is one line of an ingest file.
type input struct {
	where string // FILE:LINE
	data  []byte
}

// readInputs reads files of envelopes, one per line (JSON Lines); blank
// lines are skipped.
func readInputs(cmd *cobra.Command, files []string) ([]input, error) {
	var out []input
	for _, f := range files {
		data, err := readInput(cmd, f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, identity.MaxEnvelopeSize+1)
		for n := 1; sc.Scan(); n++ {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) > 0 {
				out = append(out, input{fmt.Sprintf("%s:%d", f, n), bytes.Clone(line)})
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return out, nil
}

func newLedgerIngestCmd() *cobra.Command {
	var d brokerData
	var offers []string
	var batchSize int
	var o output
	cmd := &cobra.Command{
		Use:   "ingest FILE...",
		Short: "Check, rate, post and log signed usage records",
		Long: `Ingest reads signed usage records — envelopes as executing brokers send them,
one per line — and settles each: it checks the envelope, the signature and
the record, rates it against its offer's price schedule, posts the balanced
transaction and appends the record, the transaction or the refusal to the
audit log. Offers named by the records must be known: pass their documents
with --offer (they are kept for later runs). Records already posted are
reported as duplicates, so a file may be ingested again safely.

The exit status is 0 when every record was accepted or was a duplicate, 1
when any was refused (each refusal is reported and logged) or the books
could not be written (then nothing of the failed batch was kept).`,
		Example: `  cinet ledger ingest --offer offers/h100.yaml usage/2026-11-30.jsonl
  cinet ledger ingest --peer did:key:z6Mk... --data /var/lib/cinet records.jsonl -o json`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			if batchSize < 1 {
				return usageError{fmt.Errorf("--batch %d: want at least 1", batchSize)}
			}
			inputs, err := readInputs(cmd, args)
			if err != nil {
				return err
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			for _, f := range offers {
				doc, err := parseOrReport(cmd, f)
				if err != nil {
					return err
				}
				if err := s.RegisterOffer(cmd.Context(), doc); err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
			}
			type result struct {
				Input    string              `json:"input"`
				Status   settlement.Status   `json:"status"`
				Record   settlement.RecordID `json:"record,omitempty"`
				LogIndex int64               `json:"logIndex"`
				Reason   settlement.Reason   `json:"reason,omitempty"`
				Detail   string              `json:"detail,omitempty"`
			}
			var results []result
			counts := map[settlement.Status]int{}
			for start := 0; start < len(inputs); start += batchSize {
				batch := inputs[start:min(start+batchSize, len(inputs))]
				raw := make([][]byte, len(batch))
				for i, in := range batch {
					raw[i] = in.data
				}
				out, err := s.Ingest(cmd.Context(), raw)
				if err != nil {
					return fmt.Errorf("ingesting %s to %s: %w (%d records before them were kept)", batch[0].where, batch[len(batch)-1].where, err, start)
				}
				for i, oc := range out {
					results = append(results, result{batch[i].where, oc.Status, oc.Record, oc.LogIndex, oc.Reason, oc.Detail})
					counts[oc.Status]++
				}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := o.write(w, results); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "INPUT\tSTATUS\tRECORD\tLOG\tREASON")
				for _, r := range results {
					reason := ""
					if r.Reason != "" {
						reason = string(r.Reason) + ": " + r.Detail
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", r.Input, r.Status, dash(string(r.Record)), r.LogIndex, dash(reason))
				}
				tw.Flush()
				fmt.Fprintf(w, "%d accepted, %d duplicate, %d refused\n", counts[settlement.Accepted], counts[settlement.Duplicate], counts[settlement.Refused])
			}
			if n := counts[settlement.Refused]; n > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "cinet: %d of %d records refused\n", n, len(results))
				return exitError{1}
			}
			return nil
		},
	}
	d.register(cmd)
	d.registerAt(cmd)
	cmd.Flags().StringSliceVar(&offers, "offer", nil, "an offer document the records were placed on (repeatable)")
	cmd.Flags().IntVar(&batchSize, "batch", 1000, "records per store transaction")
	o.register(cmd)
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newLedgerBalanceCmd() *cobra.Command {
	var d brokerData
	var r remote
	var account string
	var o output
	cmd := &cobra.Command{
		Use:   "balance [--account ACCOUNT]",
		Short: "Show account balances and the trial balance",
		Long: `Balance lists the balance of every account, or of one with --account, in each
currency. Accounts are tenant/DID, provider/DID, fees/DID and clearing/DID;
balances are credit-positive: positive is owed by this broker to the account's
holder, negative is owed to this broker. The trial balance — every balance
summed per currency — is zero in books that balance.`,
		Example: `  cinet ledger balance
  cinet ledger balance --account provider/did:key:z6Mk... -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			var acct settlement.Account
			if account != "" {
				if acct, err = settlement.ParseAccount(account); err != nil {
					return usageError{err}
				}
			}
			if on, err := r.on(); err != nil {
				return err
			} else if on {
				return remoteBalances(cmd, &r, account, &o)
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			balances, err := s.Balances(cmd.Context(), acct)
			if err != nil {
				return err
			}
			trial, err := s.TrialBalance(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				type bal struct {
					Account  settlement.Account `json:"account"`
					Currency string             `json:"currency"`
					Amount   descriptor.Nanos   `json:"amount"`
				}
				out := struct {
					Balances     []bal                       `json:"balances"`
					TrialBalance map[string]descriptor.Nanos `json:"trialBalance"`
				}{[]bal{}, trial}
				for _, b := range balances {
					out.Balances = append(out.Balances, bal{b.Account, b.Currency, b.Amount})
				}
				return o.write(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCOUNT\tCURRENCY\tBALANCE")
			for _, b := range balances {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Account, b.Currency, b.Amount.Decimal())
			}
			tw.Flush()
			for _, c := range sortedCurrencies(trial) {
				fmt.Fprintf(cmd.OutOrStdout(), "trial balance %s: %s\n", c, trial[c].Decimal())
			}
			return nil
		},
	}
	d.register(cmd)
	r.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "show only this account")
	o.register(cmd)
	return cmd
}

func sortedCurrencies(m map[string]descriptor.Nanos) []string {
	var out []string
	for c := range m {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func newLedgerStatementCmd() *cobra.Command {
	var d brokerData
	var r remote
	var account, period string
	var o output
	cmd := &cobra.Command{
		Use:   "statement --account ACCOUNT --period PERIOD",
		Short: "List what moved an account in a period",
		Long: `Statement lists the transactions that moved an account for the usage records
whose period ends in PERIOD — a month (2026-11), a day (2026-11-30) or an
interval START/END of RFC 3339 times, in UTC — with the amount each moved and
the net change per currency. -o json adds every rated item.`,
		Example: `  cinet ledger statement --account tenant/did:key:z6Mk... --period 2026-11`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			if on, err := r.on(); err != nil {
				return err
			} else if on {
				if period == "" {
					return usageError{errors.New("--period is required")}
				}
				c, err := r.client()
				if err != nil {
					return err
				}
				raw, err := c.Statement(cmd.Context(), account, period)
				if err != nil {
					return err
				}
				return printRemoteStatement(cmd, raw, &o)
			}
			if account == "" || period == "" {
				return usageError{errors.New("--account and --period are required")}
			}
			acct, err := settlement.ParseAccount(account)
			if err != nil {
				return usageError{err}
			}
			from, to, err := parsePeriod(period)
			if err != nil {
				return err
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			st, err := s.Statement(cmd.Context(), acct, from, to)
			if err != nil {
				return err
			}
			if asJSON {
				return o.write(cmd.OutOrStdout(), api.NewStatementView(st))
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s, %s to %s\n", acct, from.Format(time.RFC3339), to.Format(time.RFC3339))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PERIOD END\tRECORD\tJOB\tROLE\tAMOUNT\tCURRENCY")
			for _, t := range st.Transactions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Usage.PeriodEnd.Format(time.RFC3339), t.Transaction.Record, t.Usage.Job, t.Role, t.Amount(acct).Decimal(), t.Currency)
			}
			tw.Flush()
			for _, c := range sortedCurrencies(st.Net) {
				fmt.Fprintf(w, "net %s: %s\n", c, st.Net[c].Decimal())
			}
			return nil
		},
	}
	d.register(cmd)
	r.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "the account: tenant/DID, provider/DID, fees/DID or clearing/DID")
	cmd.Flags().StringVar(&period, "period", "", "a month (2026-11), a day (2026-11-30) or START/END in RFC 3339")
	o.register(cmd)
	return cmd
}

func newClearingCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clearing",
		Short: "Net positions with another broker into signed, countersigned statements",
		Long: `Clearing nets this broker's position toward another broker over a period into
a statement — the amount per currency and a digest of the usage records it
covers — signed by the issuer. The other broker countersigns it only if its
own books show the same records and the mirror-image amounts; the issuer then
keeps the countersignature. Anyone can verify the pair with 'verify'.`,
	}
	cmd.AddCommand(newClearingIssueCmd(), newClearingCountersignCmd(), newClearingAcceptCmd(), newClearingVerifyCmd())
	return cmd
}

func newClearingIssueCmd() *cobra.Command {
	var d brokerData
	var with, period, out string
	var o output
	cmd := &cobra.Command{
		Use:     "issue --with DID --period PERIOD",
		Short:   "Issue a clearing statement to another broker",
		Example: `  cinet ledger clearing issue --with did:key:z6Mk... --peer did:key:z6Mk... --period 2026-11 --out 2026-11.statement`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			if with == "" || period == "" {
				return usageError{errors.New("--with and --period are required")}
			}
			other, err := identity.ParsePrincipalID(with)
			if err != nil {
				return usageError{fmt.Errorf("--with: %w", err)}
			}
			from, to, err := parsePeriod(period)
			if err != nil {
				return err
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			st, err := s.IssueStatement(cmd.Context(), other, from, to)
			if err != nil {
				return err
			}
			return showStatement(cmd, &o, structured, out, st, st.Envelope)
		},
	}
	d.register(cmd)
	d.registerAt(cmd)
	o.register(cmd)
	cmd.Flags().StringVar(&with, "with", "", "the other broker's DID")
	cmd.Flags().StringVar(&period, "period", "", "a month (2026-11), a day (2026-11-30) or START/END in RFC 3339")
	cmd.Flags().StringVar(&out, "out", "", "write the statement here (default standard output)")
	return cmd
}

// showStatement writes a signed statement (or countersignature) to --out or
// standard output, describing it on standard error; with -o json or yaml,
// standard output gets the description and the signed envelope together.
func showStatement(cmd *cobra.Command, o *output, structured bool, out string, st *settlement.IssuedStatement, envelope []byte) error {
	if !structured {
		describeStatement(cmd.ErrOrStderr(), st)
		return writeOut(cmd, out, append(envelope, '\n'))
	}
	if out != "" {
		if err := writeOut(cmd, out, append(envelope, '\n')); err != nil {
			return err
		}
	}
	return o.write(cmd.OutOrStdout(), map[string]any{"digest": st.Digest, "statement": st.Statement, "envelope": string(envelope), "logIndex": st.LogIndex})
}

func describeStatement(w io.Writer, st *settlement.IssuedStatement) {
	fmt.Fprintf(w, "statement %s\n  %s → %s, %s to %s, %d records (%s)\n", st.Digest, st.Statement.Issuer, st.Statement.Counterparty,
		st.Statement.PeriodStart.Format(time.RFC3339), st.Statement.PeriodEnd.Format(time.RFC3339), st.Statement.RecordCount, st.Statement.RecordsDigest)
	if len(st.Statement.Positions) == 0 {
		fmt.Fprintln(w, "  even: neither owes the other")
	}
	for _, p := range st.Statement.Positions {
		fmt.Fprintf(w, "  issuer owes counterparty %s %s\n", p.Amount.Decimal(), p.Currency)
	}
}

// writeOut writes data to a file, or to standard output for "".
func writeOut(cmd *cobra.Command, path string, data []byte) error {
	if path == "" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func newClearingCountersignCmd() *cobra.Command {
	var d brokerData
	var out string
	var o output
	cmd := &cobra.Command{
		Use:   "countersign STATEMENT",
		Short: "Check another broker's statement against these books and countersign it",
		Long: `Countersign verifies the issuer's signature, recomputes the statement from this
broker's own books — the same usage records, the opposite amounts — and, if
they agree, signs the same statement. Send the countersignature back to the
issuer. If the books disagree, nothing is signed and the differences are
reported.`,
		Example: `  cinet ledger clearing countersign --peer did:key:z6Mk... 2026-11.statement --out 2026-11.countersignature`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			env, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			st, err := s.Countersign(cmd.Context(), bytes.TrimSpace(env))
			if err != nil {
				return err
			}
			return showStatement(cmd, &o, structured, out, st, st.Countersignature)
		},
	}
	d.register(cmd)
	o.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write the countersignature here (default standard output)")
	return cmd
}

func newClearingAcceptCmd() *cobra.Command {
	var d brokerData
	var o output
	cmd := &cobra.Command{
		Use:     "accept COUNTERSIGNATURE",
		Short:   "Keep the countersignature of a statement this broker issued",
		Example: `  cinet ledger clearing accept --peer did:key:z6Mk... 2026-11.countersignature`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			env, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			s, store, err := d.openSettler(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			st, err := s.AddCountersignature(cmd.Context(), bytes.TrimSpace(env))
			if err != nil {
				return err
			}
			if structured {
				return o.write(cmd.OutOrStdout(), map[string]any{"digest": st.Digest, "statement": st.Statement, "countersigned": true, "logIndex": st.LogIndex})
			}
			describeStatement(cmd.OutOrStdout(), st)
			fmt.Fprintf(cmd.OutOrStdout(), "countersigned by %s; logged at %d\n", st.Statement.Counterparty, st.LogIndex)
			return nil
		},
	}
	d.register(cmd)
	o.register(cmd)
	return cmd
}

func newClearingVerifyCmd() *cobra.Command {
	var o output
	cmd := &cobra.Command{
		Use:   "verify STATEMENT [COUNTERSIGNATURE]",
		Short: "Verify a statement and its countersignature offline",
		Long: `Verify checks the issuer's signature of a statement and, when given, that the
countersignature is the counterparty's signature of the very same statement.
It needs nothing but the two files.`,
		Example: `  cinet ledger clearing verify 2026-11.statement 2026-11.countersignature`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{errors.New("want STATEMENT and optionally COUNTERSIGNATURE")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			env, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			var counter []byte
			if len(args) == 2 {
				if counter, err = readInput(cmd, args[1]); err != nil {
					return err
				}
				counter = bytes.TrimSpace(counter)
			}
			st, err := settlement.VerifyStatement(bytes.TrimSpace(env), counter)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if structured {
				return o.write(w, map[string]any{"verified": true, "countersigned": counter != nil, "statement": st})
			}
			fmt.Fprintf(w, "verified: signed by the issuer %s", st.Issuer)
			if counter != nil {
				fmt.Fprintf(w, " and countersigned by %s", st.Counterparty)
			}
			fmt.Fprintf(w, "\nperiod %s to %s, %d records (%s)\n", st.PeriodStart.Format(time.RFC3339), st.PeriodEnd.Format(time.RFC3339), st.RecordCount, st.RecordsDigest)
			for _, p := range st.Positions {
				fmt.Fprintf(w, "issuer owes counterparty %s %s\n", p.Amount.Decimal(), p.Currency)
			}
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

// remoteBalances prints balances a broker reports.
func remoteBalances(cmd *cobra.Command, r *remote, account string, o *output) error {
	asJSON, _ := o.json()
	c, err := r.client()
	if err != nil {
		return err
	}
	b, err := c.Balances(cmd.Context(), account)
	if err != nil {
		return err
	}
	if asJSON {
		return o.write(cmd.OutOrStdout(), b)
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tCURRENCY\tBALANCE")
	for _, x := range b.Balances {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", x.Account, x.Currency, x.Amount.Decimal())
	}
	tw.Flush()
	cur := make([]string, 0, len(b.TrialBalance))
	for k := range b.TrialBalance {
		cur = append(cur, k)
	}
	sort.Strings(cur)
	for _, k := range cur {
		fmt.Fprintf(cmd.OutOrStdout(), "trial balance %s: %s\n", k, b.TrialBalance[k])
	}
	return nil
}

// printRemoteStatement prints a statement a broker returned.
func printRemoteStatement(cmd *cobra.Command, raw json.RawMessage, o *output) error {
	if asJSON, _ := o.json(); asJSON {
		return o.write(cmd.OutOrStdout(), raw)
	}
	var st api.StatementView
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s\n", st.Account)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PERIOD END\tRECORD\tJOB\tROLE\tAMOUNT\tCURRENCY")
	for _, t := range st.Transactions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.PeriodEnd.Format(time.RFC3339), t.Record, t.Job, t.Role, t.Amount.Decimal(), t.Currency)
	}
	tw.Flush()
	for _, c := range sortedCurrencies(st.Net) {
		fmt.Fprintf(w, "net %s: %s\n", c, st.Net[c].Decimal())
	}
	return nil
}
