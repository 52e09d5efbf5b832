package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/broker/client"
)

func newFederationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "federation",
		Short: "See a broker's federation: its peers, the brokers announced, the offers it knows",
		Long: `The federation commands show what a broker knows of its federation
(spec/protocol.md). peers and brokers need the regulator or operator role;
offers lists the broker's whole book, its own offers and its peers'.`,
	}
	cmd.AddCommand(
		federationCmd("peers", "The peers a broker is connected to", "operator.key", printPeers),
		federationCmd("brokers", "The brokers whose signed announcements a broker holds", "regulator.key", printBrokers),
		federationCmd("offers", "Every offer in a broker's book, with the broker that owns it", "tenant.key", printFederationOffers),
	)
	return cmd
}

// federationCmd builds one read-only federation command: show asks the
// broker and prints a table, or returns what -o json prints.
func federationCmd(use, short, key string, show func(cmd *cobra.Command, c *client.Client, w io.Writer) (any, error)) *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: fmt.Sprintf("  cinet federation %s --broker http://127.0.0.1:8420 --key %s", use, key),
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
			w := cmd.OutOrStdout()
			if asJSON {
				w = io.Discard
			}
			v, err := show(cmd, c, w)
			if err != nil || !asJSON {
				return err
			}
			return o.write(cmd.OutOrStdout(), v)
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}

func printPeers(cmd *cobra.Command, c *client.Client, w io.Writer) (any, error) {
	st, err := c.Federation(cmd.Context())
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "broker %s, listening on %s\n", st.Broker, strings.Join(st.Addrs, " "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BROKER\tMESHED\tADDRESS")
	for _, p := range st.Peers {
		fmt.Fprintf(tw, "%s\t%v\t%s\n", p.Broker, p.Meshed, strings.Join(p.Addrs, " "))
	}
	return st, tw.Flush()
}

func printBrokers(cmd *cobra.Command, c *client.Client, w io.Writer) (any, error) {
	st, err := c.Federation(cmd.Context())
	if err != nil {
		return nil, err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BROKER\tREGION\tFEE\tAPI\tANNOUNCED UNTIL")
	for _, b := range st.Brokers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Broker, b.Region, b.Fee, b.API, b.Expires.Format(time.RFC3339))
	}
	return map[string]any{"brokers": st.Brokers}, tw.Flush()
}

func printFederationOffers(cmd *cobra.Command, c *client.Client, w io.Writer) (any, error) {
	list, err := c.Offers(cmd.Context(), "")
	if err != nil {
		return nil, err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFER\tREGION\tFREE\tOWNER\tSEQUENCE\tVALID UNTIL")
	for _, v := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%d\t%s\n", v.Name, v.Region, v.Free, v.Quantity, v.Broker, v.Sequence, v.ValidUntil.Format(time.RFC3339))
	}
	return map[string]any{"offers": list}, tw.Flush()
}
