package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/broker/match"
	"github.com/cinet/cinet/broker/offers"
)

// Exit statuses of 'job submit --wait'.
const (
	exitJobFailed    = 1
	exitJobCancelled = 3
)

func newSubmitCmd() *cobra.Command {
	var r remote
	var wait bool
	var o output
	cmd := &cobra.Command{
		Use:   "submit FILE",
		Short: "Submit a job to a broker",
		Long: `Submit sends a job file (YAML or JSON, or - for standard input) to your
broker and prints the job's ID. An invalid file is refused with every error
located by line and column. With --wait it follows the job — its transitions
shown as they happen — until it is settled, prints where it ran and what it
cost, and exits 0 if it succeeded, 1 if it failed and 3 if it was cancelled.`,
		Example: `  cinet job submit examples/jobs/batch-cpu.yaml --broker http://127.0.0.1:8420 --key tenant.key
  cinet job submit job.yaml --wait -o json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			data, err := readInput(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			name := args[0]
			if name == "-" {
				name = "job.yaml"
			}
			j, err := c.SubmitJob(cmd.Context(), data, name)
			if err != nil {
				return reportDocumentErrors(cmd, name, err)
			}
			if !wait {
				if asJSON {
					return o.write(cmd.OutOrStdout(), j)
				}
				fmt.Fprintln(cmd.OutOrStdout(), j.ID)
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "job %s submitted\n", j.ID)
			j, err = follow(cmd.Context(), c, j.ID, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if asJSON {
				if err := o.write(cmd.OutOrStdout(), j); err != nil {
					return err
				}
			} else {
				printJob(cmd.OutOrStdout(), j)
			}
			switch j.Outcome {
			case v1.Succeeded:
				return nil
			case v1.Cancelled:
				return exitError{exitJobCancelled}
			}
			return exitError{exitJobFailed}
		},
	}
	r.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the job until it is settled; exit with its outcome")
	o.register(cmd)
	return cmd
}

// reportDocumentErrors prints a broker's located errors in a document as
// FILE:LINE:COL: PATH: MESSAGE, as 'descriptor validate' does; other
// errors pass through.
func reportDocumentErrors(cmd *cobra.Command, file string, err error) error {
	var p *client.ProblemError
	if !errors.As(err, &p) || len(p.Errors) == 0 {
		return err
	}
	for _, e := range p.Errors {
		loc := file + ":"
		if e.Line > 0 {
			loc += fmt.Sprintf("%d:%d:", e.Line, e.Column)
		}
		path := ""
		if e.Path != "" {
			path = e.Path + ": "
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s %s%s\n", loc, path, e.Message)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "cinet: the broker refused %s: %s\n", file, p.Detail)
	return exitError{1}
}

// follow shows a job's transitions until it settles, and returns it.
func follow(ctx context.Context, c *client.Client, id string, progress io.Writer) (*v1.Job, error) {
	start := time.Now()
	err := c.Events(ctx, id, func(t v1.Transition) error {
		detail := ""
		if t.Detail != "" {
			detail = ": " + t.Detail
		}
		fmt.Fprintf(progress, "  %6.1fs  %-12s%s\n", time.Since(start).Seconds(), t.State, detail)
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	// The stream ends when the job settles; read it whole.
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.State == v1.Settled {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func money(m *v1.Money) string {
	if m == nil {
		return "-"
	}
	return m.Amount.Decimal() + " " + m.Currency
}

func printJob(w io.Writer, j *v1.Job) {
	fmt.Fprintf(w, "job        %s (%s)\n", j.ID, j.Name)
	fmt.Fprintf(w, "state      %s", j.State)
	if j.Outcome != "" && j.Outcome != j.State {
		fmt.Fprintf(w, " (%s)", j.Outcome)
	}
	fmt.Fprintln(w)
	if j.Detail != "" {
		fmt.Fprintf(w, "detail     %s\n", j.Detail)
	}
	fmt.Fprintf(w, "home       %s\n", j.HomeRegion)
	if n := len(j.Attempts); n > 0 {
		a := j.Attempts[n-1]
		fmt.Fprintf(w, "ran on     %s in %s (provider %s)\n", a.Offer, a.Region, a.Provider)
	}
	fmt.Fprintf(w, "cost       %s\n", money(j.Cost))
	if j.Restarts > 0 {
		fmt.Fprintf(w, "restarts   %d\n", j.Restarts)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if eps := currentEndpoints(j); len(eps) > 0 {
		fmt.Fprintln(w)
		printEndpoints(tw, eps)
	}
	if len(j.Attempts) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "ATTEMPT\tSTATE\tEXIT\tWALL\tCPU\tCHARGE\tRECORD")
		for _, a := range j.Attempts {
			wall, cpu := "-", "-"
			if a.Usage != nil {
				wall, cpu = a.Usage.End.Sub(a.Usage.Start).Round(time.Millisecond).String(), a.Usage.CPU.Round(time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", a.ID, dash(a.State), a.ExitCode, wall, cpu, money(a.Charge), dash(a.Record))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "AT\tSTATE\tDETAIL")
	for _, t := range j.History {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.At.Format("15:04:05.000"), t.State, t.Detail)
	}
	tw.Flush()
}

// currentEndpoints are the endpoints of the job's attempt under way.
func currentEndpoints(j *v1.Job) []v1.Endpoint {
	if n := len(j.Attempts); n > 0 && !j.Attempts[n-1].Ended() {
		return j.Attempts[n-1].Endpoints
	}
	return nil
}

func printEndpoints(tw *tabwriter.Writer, eps []v1.Endpoint) {
	fmt.Fprintln(tw, "ENDPOINT\tREPLICA\tREADY\tADDRESS")
	for _, ep := range eps {
		ready := "no"
		if ep.Ready {
			ready = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", ep.Name, ep.Replica, ready, cmp.Or(ep.URL, ep.Address))
	}
	tw.Flush()
}

func newEndpointsCmd() *cobra.Command {
	var r remote
	var o output
	var readyOnly, wait bool
	cmd := &cobra.Command{
		Use:   "endpoints ID",
		Short: "List where a service job serves: an endpoint per port and replica",
		Long: `List the endpoints of a service job's running attempt (spec/jobs.md §7):
each port of each replica, where to connect, and whether the replica passed
its readiness probe. A job that is not a service, or not running, has none.`,
		Example: `  cinet job endpoints j-abc...
  cinet job endpoints j-abc... --wait --ready -o template='{{range .}}{{.url}}{{"\n"}}{{end}}'`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			var eps []v1.Endpoint
			for {
				j, err := c.Job(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				eps = currentEndpoints(j)
				if readyOnly {
					eps = slices.DeleteFunc(eps, func(ep v1.Endpoint) bool { return !ep.Ready })
				}
				if !wait || slices.ContainsFunc(eps, func(ep v1.Endpoint) bool { return ep.Ready }) {
					break
				}
				if j.State.Ended() {
					return fmt.Errorf("job %s ended (%s) without a ready endpoint", j.ID, j.State)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(250 * time.Millisecond):
				}
			}
			if eps == nil {
				eps = []v1.Endpoint{}
			}
			if asJSON {
				return o.write(cmd.OutOrStdout(), eps)
			}
			printEndpoints(tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0), eps)
			return nil
		},
	}
	r.register(cmd)
	o.register(cmd)
	cmd.Flags().BoolVar(&readyOnly, "ready", false, "only the endpoints of ready replicas")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until a replica is ready; fail if the job ends first")
	return cmd
}

func newStatusCmd() *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:     "status ID",
		Short:   "Show a job: its state, history, attempts, usage and cost",
		Example: `  cinet job status j-abc... --broker http://127.0.0.1:8420 --key tenant.key`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return answer(cmd, &r, &o, func(c *client.Client, ctx context.Context) (*v1.Job, error) { return c.Job(ctx, args[0]) },
				func(w io.Writer, j *v1.Job) error { printJob(w, j); return nil })
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}

func newListCmd() *cobra.Command {
	var r remote
	var state string
	var limit int
	var o output
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List your jobs, newest first",
		Example: `  cinet job list --state running`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			js, err := c.Jobs(cmd.Context(), state, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return o.write(cmd.OutOrStdout(), map[string]any{"jobs": js})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATE\tOUTCOME\tCREATED\tCOST")
			for _, j := range js {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, j.State, dash(string(j.Outcome)), j.CreatedAt.Format(time.RFC3339), money(j.Cost))
			}
			return tw.Flush()
		},
	}
	r.register(cmd)
	cmd.Flags().StringVar(&state, "state", "", "only jobs in this state")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	o.register(cmd)
	return cmd
}

func newLogsCmd() *cobra.Command {
	var r remote
	var task, stream string
	var node int
	var followFlag, raw bool
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a job's output",
		Example: `  cinet job logs j-abc... --follow
  cinet job logs j-abc... --task train --stream stderr
  cinet job logs j-abc... --node 1`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			rc, err := c.Logs(cmd.Context(), args[0], task, node, stream, followFlag)
			if err != nil {
				return err
			}
			defer rc.Close()
			w := cmd.OutOrStdout()
			if raw {
				w = rawWriter(w)
			}
			_, err = io.Copy(w, rc)
			return err
		},
	}
	r.register(cmd)
	cmd.Flags().BoolVar(&raw, "raw", false, "print the output byte for byte, control characters and all (by default they are shown escaped, so that a job's output cannot command your terminal)")
	cmd.Flags().StringVar(&task, "task", "", "the task (default the first)")
	cmd.Flags().StringVar(&stream, "stream", "stdout", "stdout or stderr")
	cmd.Flags().IntVar(&node, "node", 0, "which node of a multi-node job, from 0")
	cmd.Flags().BoolVarP(&followFlag, "follow", "f", false, "keep printing until the job's attempt ends")
	return cmd
}

func newCancelCmd() *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:     "cancel ID",
		Short:   "Cancel a job: its processes are stopped and it is billed for what ran",
		Example: `  cinet job cancel j-abc...`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			structured, err := o.json()
			if err != nil {
				return err
			}
			j, err := c.Cancel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if structured {
				return o.write(cmd.OutOrStdout(), j)
			}
			if j.State.Ended() {
				fmt.Fprintf(cmd.OutOrStdout(), "job %s had already ended: %s\n", j.ID, j.State)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "job %s: cancellation requested\n", j.ID)
			return nil
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}

// explainRemote asks a broker where a job would run.
func explainRemote(cmd *cobra.Command, r *remote, file string, o *output) error {
	asJSON, _ := o.json()
	data, err := readInput(cmd, file)
	if err != nil {
		return err
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	raw, err := c.Explain(cmd.Context(), data, file)
	if err != nil {
		return err
	}
	if asJSON {
		return o.write(cmd.OutOrStdout(), raw)
	}
	var x match.Explanation
	if err := json.Unmarshal(raw, &x); err != nil {
		return err
	}
	return printExplanation(cmd.OutOrStdout(), &x)
}

func newProviderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "Offer capacity through a broker: register, list and withdraw offers",
	}
	cmd.AddCommand(newRegisterCmd(), newOffersCmd(), newWithdrawCmd(), newDiscoverCmd())
	return cmd
}

func newRegisterCmd() *cobra.Command {
	var r remote
	var o output
	var out string
	cmd := &cobra.Command{
		Use:   "register FILE",
		Short: "Sign an offer with your key and register it at a broker",
		Long: `Register reads an offer document, signs it with your key — the offer's
provider must be you, and its compute identifier's first segment your key's
fingerprint (cinet id prints it) — and registers it at the broker, which
refuses an offer that fails validation and says why.

The offer's broker field names the broker that owns the capacity: the one
you register at, which alone reserves it and runs its placements. It is
signed with the rest of the offer, so no other broker can claim it.`,
		Example: `  cinet provider register offer.yaml --broker http://127.0.0.1:8420 --key provider.key
  cinet provider register offer.yaml --key provider.key --out offer.signed.json   # sign only: upload it in the console`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			if c.Key == nil {
				return usageError{errors.New("an offer is signed with the provider's key: give --key")}
			}
			doc, err := parseOrReport(cmd, args[0])
			if err != nil {
				if info, ierr := c.Info(cmd.Context()); ierr == nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "the broker at %s is %s: an offer registered there names it as its broker\n", c.Base, info.Broker)
				}
				return err
			}
			info, err := c.Info(cmd.Context())
			if err != nil {
				return err
			}
			if doc.Offer != nil && doc.Offer.Broker != info.Broker {
				return fmt.Errorf("%s names broker %s, but the broker at %s is %s: register it at the broker it names, or change its broker field", args[0], doc.Offer.Broker, c.Base, info.Broker)
			}
			env, err := offers.Seal(c.Key, doc)
			if err != nil {
				return err
			}
			if out != "" {
				if err := writeNewFile(out, env.Encode()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "signed %s into %s; register it with the console's Offers page or without --out\n", args[0], out)
				return nil
			}
			v, err := c.RegisterOffer(cmd.Context(), env.Encode())
			if err != nil {
				return reportDocumentErrors(cmd, args[0], err)
			}
			if asJSON {
				return o.write(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered %s (%s), %d instances in %s, valid until %s\n", v.Name, v.Digest, v.Quantity, v.Region, v.ValidUntil.Format(time.RFC3339))
			return nil
		},
	}
	r.register(cmd)
	o.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "sign the offer into this file, and do not register it")
	return cmd
}

func newOffersCmd() *cobra.Command {
	var r remote
	var all bool
	var o output
	cmd := &cobra.Command{
		Use:     "offers",
		Short:   "List your offers at a broker (--all for every offer in its book)",
		Example: `  cinet provider offers --key provider.key`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			who := ""
			if !all && c.Key != nil {
				who = c.Key.ID().String()
			}
			list, err := c.Offers(cmd.Context(), who)
			if err != nil {
				return err
			}
			if asJSON {
				return o.write(cmd.OutOrStdout(), map[string]any{"offers": list})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OFFER\tREGION\tFREE\tQUANTITY\tVALID UNTIL")
			for _, v := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", v.Name, v.Region, v.Free, v.Quantity, v.ValidUntil.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	r.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "every offer in the broker's book")
	o.register(cmd)
	return cmd
}

func newWithdrawCmd() *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:     "withdraw NAME",
		Short:   "Withdraw an offer by its compute identifier; placements on it run on",
		Example: `  cinet provider withdraw ci:4xud.../cn-east-1/a/cpu`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			structured, err := o.json()
			if err != nil {
				return err
			}
			if err := c.Withdraw(cmd.Context(), args[0]); err != nil {
				return err
			}
			if structured {
				return o.write(cmd.OutOrStdout(), map[string]any{"offer": args[0], "withdrawn": true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "withdrew %s\n", args[0])
			return nil
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}
