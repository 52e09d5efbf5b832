package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/match"
	"github.com/cinet/cinet/descriptor"
)

func newJobCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Work with jobs: submit, follow, read logs, cancel, explain",
	}
	cmd.AddCommand(newSubmitCmd(), newStatusCmd(), newListCmd(), newLogsCmd(), newEndpointsCmd(), newCancelCmd(), newExplainCmd())
	return cmd
}

func newExplainCmd() *cobra.Command {
	var offersDir, home, latencyFile, currency, at string
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:   "explain FILE (--offers DIR | --broker URL)",
		Short: "Show every offer's fate for a job: placed, ranked or rejected, and why",
		Long: `Match a job file against a folder of offer files, without a broker, and show
what became of every offer: the one the job would be placed on, the others
ranked with their score parts (estimated cost, peak hourly price, time,
latency), and every rejected offer with its reason code and the reason in
words, followed by a count per reason. Reason codes are listed in
spec/matching.md. With --broker instead of --offers, the broker explains
against its own book.`,
		Example: `  cinet job explain examples/jobs/train-llama.yaml --offers examples/offers
  cinet job explain job.yaml --offers offers/ --home-region cn-east-1 --latency latency.yaml -o json
  cinet job explain job.yaml --offers offers/ --at 2026-12-01T09:00:00Z`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			if offersDir == "" {
				if on, err := r.on(); err != nil {
					return err
				} else if on {
					return explainRemote(cmd, &r, args[0], &o)
				}
				return usageError{errors.New("give --offers DIR, or --broker URL to ask a broker")}
			}
			now := time.Now().UTC()
			if at != "" {
				if now, err = time.Parse(time.RFC3339, at); err != nil {
					return usageError{fmt.Errorf("--at %q: want an RFC 3339 time such as 2026-12-01T09:00:00Z", at)}
				}
			}
			cfg := match.Config{HomeRegion: home, Currency: currency}
			if latencyFile != "" {
				if cfg.Latency, err = match.LoadLatencyTable(latencyFile); err != nil {
					return err
				}
			}
			job, err := parseOrReport(cmd, args[0])
			if err != nil {
				return err
			}
			if job.Job == nil {
				return fmt.Errorf("%s is an %s, not a job", args[0], job.Kind)
			}
			b := book.New(func() time.Time { return now })
			if err := loadOffers(b, offersDir, cmd.ErrOrStderr()); err != nil {
				return err
			}
			x, err := match.New(b, cfg).Explain(job, match.Options{})
			if err != nil {
				return err
			}
			if asJSON {
				return o.write(cmd.OutOrStdout(), x)
			}
			return printExplanation(cmd.OutOrStdout(), x)
		},
	}
	cmd.Flags().StringVar(&offersDir, "offers", "", "folder of offer files (.yaml, .yml, .json)")
	cmd.Flags().StringVar(&home, "home-region", "", "the region latency is measured from")
	cmd.Flags().StringVar(&latencyFile, "latency", "", "region-to-region latency table (YAML; see spec/matching.md)")
	cmd.Flags().StringVar(&currency, "currency", "USD", "currency of jobs without a budget")
	cmd.Flags().StringVar(&at, "at", "", "match as of this time (RFC 3339); default now")
	r.register(cmd)
	o.register(cmd)
	return cmd
}

// loadOffers puts every valid offer in dir into b; files that are not valid
// offers, or have lapsed, are reported and skipped.
func loadOffers(b *book.Book, dir string, warn io.Writer) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("couldn't read offers: %w", err)
	}
	n := 0
	for _, de := range entries {
		ext := filepath.Ext(de.Name())
		if de.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		path := filepath.Join(dir, de.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		doc, err := descriptor.ParseOffer(path, data)
		if err != nil {
			fmt.Fprintf(warn, "skipped %s:\n%v\n", path, err)
			continue
		}
		if err := b.Put(doc, nil, doc.Offer.Broker); err != nil {
			fmt.Fprintf(warn, "skipped %s: %v\n", path, err)
			continue
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no valid offers in %s", dir)
	}
	return nil
}

func printExplanation(w io.Writer, x *match.Explanation) error {
	fmt.Fprintf(w, "job %s (%s): %d offers, %d feasible\n\n", x.Job, x.Digest, x.Total, x.Feasible)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tSTATUS\tOFFER\tREGION\tEST. COST\tPEAK/HOUR\tTIME\tLATENCY\tWHY NOT")
	for _, f := range x.Fates {
		if f.Parts != nil {
			p := f.Parts
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s %s\t%s %s\t%s\t%gms\t\n", f.Rank, f.Status, f.Offer, f.Region,
				p.Currency, displayMoney(p.Cost), p.Currency, displayMoney(p.PeakHourly), p.Time.Round(time.Second), p.LatencyMs)
			continue
		}
		fmt.Fprintf(tw, "-\t%s\t%s\t%s\t\t\t\t\t%s: %s\n", f.Status, f.Offer, f.Region, f.Reason, f.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, r := range match.Reasons {
		if n := x.Summary[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
	}
	if x.Feasible > 0 {
		parts = append([]string{fmt.Sprintf("%d ranked", x.Feasible)}, parts...)
	}
	fmt.Fprintf(w, "\nsummary: %s\n", strings.Join(parts, ", "))
	return nil
}

// displayMoney shows cents, or four places for amounts under one unit.
func displayMoney(n descriptor.Nanos) string {
	if n < 1_000_000_000 {
		return n.Round(4)
	}
	return n.Round(2)
}
