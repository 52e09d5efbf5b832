package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newFederationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "federation",
		Short: "See a broker's federation: its peers, the brokers announced, the offers it knows",
		Long: `The federation commands show what a broker knows of its federation
(spec/protocol.md). peers and brokers need the regulator or operator role;
offers lists the broker's whole book, its own offers and its peers'.`,
	}
	cmd.AddCommand(newFederationPeersCmd(), newFederationBrokersCmd(), newFederationOffersCmd())
	return cmd
}

func newFederationPeersCmd() *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:     "peers",
		Short:   "The peers a broker is connected to",
		Example: `  cinet federation peers --broker http://127.0.0.1:8420 --key operator.key`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			c, err := r.client("")
			if err != nil {
				return err
			}
			st, err := c.Federation(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broker %s, listening on %s\n", st.Broker, strings.Join(st.Addrs, " "))
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BROKER\tMESHED\tADDRESS")
			for _, p := range st.Peers {
				fmt.Fprintf(tw, "%s\t%v\t%s\n", p.Broker, p.Meshed, strings.Join(p.Addrs, " "))
			}
			return tw.Flush()
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}

func newFederationBrokersCmd() *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:     "brokers",
		Short:   "The brokers whose signed announcements a broker holds",
		Example: `  cinet federation brokers --key regulator.key`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			c, err := r.client("")
			if err != nil {
				return err
			}
			st, err := c.Federation(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"brokers": st.Brokers})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BROKER\tREGION\tFEE\tAPI\tANNOUNCED UNTIL")
			for _, b := range st.Brokers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Broker, b.Region, b.Fee, b.API, b.Expires.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}

func newFederationOffersCmd() *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:     "offers",
		Short:   "Every offer in a broker's book, with the broker that owns it",
		Example: `  cinet federation offers --key tenant.key`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			c, err := r.client("")
			if err != nil {
				return err
			}
			list, err := c.Offers(cmd.Context(), "")
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"offers": list})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OFFER\tREGION\tFREE\tOWNER\tSEQUENCE\tVALID UNTIL")
			for _, v := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%d\t%s\n", v.Name, v.Region, v.Free, v.Quantity, v.Broker, v.Sequence, v.ValidUntil.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}
