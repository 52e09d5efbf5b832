package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/client"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, list and revoke API tokens (the operator's)",
		Long: `A token lets a principal call a broker's API in a role without its key:
whoever holds it acts as that principal until it expires or the operator
revokes it. Only a request signed with the operator's key (the broker's own)
issues one; the broker records each, checks the record on every request,
and refuses a revoked token from then on (spec/api/README.md, "Tokens").`,
	}
	cmd.AddCommand(newTokenIssueCmd(), newTokenListCmd(), newTokenRevokeCmd())
	return cmd
}

func newTokenIssueCmd() *cobra.Command {
	var r remote
	var o output
	var principal, role string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "issue --principal DID --role ROLE [--ttl DURATION]",
		Short: "Issue a token, signed with the broker's key",
		Example: `  cinet token issue --key /var/lib/cinet/broker.key --principal did:key:z6Mk... --role regulator --ttl 24h
  cinet token issue --principal did:key:z6Mk... --role tenant -o template='{{.token}}'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			if principal == "" || role == "" {
				return usageError{errors.New("--principal and --role are required")}
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			if c.Key == nil {
				return usageError{errors.New("a token is issued only to a request signed with the operator's key: give --key, not a token")}
			}
			tok, err := c.IssueToken(cmd.Context(), principal, role, ttl.String())
			if err != nil {
				return err
			}
			if asJSON {
				return o.write(cmd.OutOrStdout(), tok)
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s: %s for %s, valid until %s (revoke it with 'cinet token revoke %s')\n",
				tok.ID, tok.Role, tok.Principal, tok.Expires.Format(time.RFC3339), tok.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&principal, "principal", "", "the principal's DID")
	cmd.Flags().StringVar(&role, "role", "", "tenant, provider, regulator or operator")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid (the broker's tokenMaxTTL at most)")
	r.register(cmd)
	o.register(cmd)
	return cmd
}

func newTokenListCmd() *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the tokens the broker issued that have not expired",
		Example: `  cinet token list -o json`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return answer(cmd, &r, &o, (*client.Client).Tokens, printTokens)
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}

// printTokens writes a table of tokens.
func printTokens(w io.Writer, toks []*v1.TokenRecord) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRINCIPAL\tROLE\tISSUED\tEXPIRES\tREVOKED")
	for _, t := range toks {
		revoked := "-"
		if !t.Revoked.IsZero() {
			revoked = t.Revoked.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Principal, t.Role, t.Issued.Format(time.RFC3339), t.Expires.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

func newTokenRevokeCmd() *cobra.Command {
	var r remote
	var o output
	cmd := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a token: the broker refuses it from now on, and ends its principal's console sessions",
		Example: `  cinet token revoke tok-abc123...`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return answer(cmd, &r, &o, func(c *client.Client, ctx context.Context) (*v1.TokenRecord, error) {
				return c.RevokeToken(ctx, args[0])
			},
				func(w io.Writer, t *v1.TokenRecord) error {
					_, err := fmt.Fprintf(w, "token %s (%s for %s) revoked at %s\n", t.ID, t.Role, t.Principal, t.Revoked.Format(time.RFC3339))
					return err
				})
		},
	}
	r.register(cmd)
	o.register(cmd)
	return cmd
}
