package main

import (
	"crypto/rand"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/identity/peerid"
)

func newKeygenCmd() *cobra.Command {
	var out string
	var o output
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Create an Ed25519 key for a broker, provider, tenant or regulator",
		Long: `Create an Ed25519 key and write it to FILE (PKCS#8 PEM, mode 0600).
The key is the principal's identity: its did:key, its libp2p peer ID and
the verifier key of the audit logs it signs. keygen never overwrites a file.`,
		Example: `  cinet keygen --out broker.key
  cinet id --key broker.key`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			if out == "" {
				return usageError{fmt.Errorf("--out FILE is required")}
			}
			k, err := identity.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			if err := identity.WriteKeyFile(out, k); err != nil {
				return err
			}
			if structured {
				return o.write(cmd.OutOrStdout(), map[string]string{"did": k.ID().String(), "file": out})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", k.ID())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the new key to (must not exist)")
	o.register(cmd)
	return cmd
}

func newIDCmd() *cobra.Command {
	var keyFile, name string
	var o output
	cmd := &cobra.Command{
		Use:   "id --key FILE",
		Short: "Print the identities derived from a key",
		Long: `Print the identities one key stands for: the principal ID (did:key), the
libp2p peer ID, the C2SP signed-note verifier key (vkey) that checks the
audit-log checkpoints a broker with this key signs — the one 'cinet audit
verify --vkey' takes — and the provider fingerprint that begins its compute
identifiers (ci:<fingerprint>/<region>/<zone>/<pool>). A broker's log is
named cinet.broker/<fingerprint>; --name gives the vkey another key name.`,
		Example: `  cinet id --key broker.key
  cinet id --key broker.key -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			if keyFile == "" {
				return usageError{fmt.Errorf("--key FILE is required")}
			}
			k, err := identity.LoadKeyFile(keyFile)
			if err != nil {
				return err
			}
			if name == "" {
				name = LogOrigin(k.ID())
			}
			vkey, err := k.ID().VerifierKey(name)
			if err != nil {
				return err
			}
			info := struct {
				DID         string `json:"did"`
				PeerID      string `json:"peerId"`
				VKey        string `json:"vkey"`
				Fingerprint string `json:"fingerprint"`
			}{k.ID().String(), peerid.Of(k.ID()).String(), vkey, identity.ProviderFingerprint(k.ID())}
			w := cmd.OutOrStdout()
			if asJSON {
				return o.write(w, info)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "did:\t%s\n", info.DID)
			fmt.Fprintf(tw, "peer id:\t%s\n", info.PeerID)
			fmt.Fprintf(tw, "vkey:\t%s\n", info.VKey)
			fmt.Fprintf(tw, "\t(checks the audit-log checkpoints of a broker with this key: cinet audit verify --vkey …)\n")
			fmt.Fprintf(tw, "fingerprint:\t%s\n", info.Fingerprint)
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "key file written by cinet keygen")
	cmd.Flags().StringVar(&name, "name", "", "key name in the verifier key (default: the audit log's origin, cinet.broker/<fingerprint>)")
	o.register(cmd)
	return cmd
}
