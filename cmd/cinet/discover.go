package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/cinet/cinet/adapters/alibaba"
	"github.com/cinet/cinet/adapters/aws"
	"github.com/cinet/cinet/adapters/slurm"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

func newDiscoverCmd() *cobra.Command {
	var r remote
	var o output
	var adapter, configFile, owner, out string
	cmd := &cobra.Command{
		Use:   "discover --adapter aws|alibaba|slurm --config FILE",
		Short: "Turn a cloud account's capacity and prices into offers, ready to register",
		Long: `Discover asks a provider's infrastructure what it can run and at what price,
and prints the offers it would register: compute classes in the standard
vocabulary, prices as the cloud publishes them, one offer per instance type,
zone and market. Nothing is registered: review them, then register each
with 'cinet provider register'.

--adapter aws reads the configuration file's region and instance types
(spec/adapters.md §4 lists its fields) and calls EC2's
DescribeInstanceTypes, DescribeInstanceTypeOfferings and
DescribeSpotPriceHistory and the Pricing API's GetProducts, with the
credentials the AWS SDK finds (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
AWS_PROFILE, an instance role).

--adapter alibaba does the same with ECS's DescribeInstanceTypes,
DescribeAvailableResource, DescribePrice and DescribeSpotPriceHistory (§5),
with the AccessKey in ALIBABA_CLOUD_ACCESS_KEY_ID and
ALIBABA_CLOUD_ACCESS_KEY_SECRET.

--adapter slurm reads the partition, where the cluster is, its price
schedule and the accelerator of each GPU GRES (spec/adapters.md §6.4), and
offers each shape of node in the partition that can run jobs, as many as
there are (scontrol show node).

The offers name you (your --key) as their provider and the broker they are
for as their owner: --owner DID, else the broker at --broker is asked.`,
		Example: `  cinet provider discover --adapter aws --config aws.yaml --key provider.key --broker http://127.0.0.1:8420
  cinet provider discover --adapter aws --config aws.yaml --key provider.key --owner did:key:z6Mk… --out offers/
  for f in offers/*.yaml; do cinet provider register "$f" --key provider.key; done`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			structured, err := o.json()
			if err != nil {
				return err
			}
			if adapter != "aws" && adapter != "alibaba" && adapter != "slurm" {
				return usageError{fmt.Errorf("--adapter %q: want aws, alibaba or slurm", adapter)}
			}
			if configFile == "" {
				return usageError{errors.New("give --config: the adapter's configuration (YAML or JSON)")}
			}
			raw, err := os.ReadFile(configFile)
			if err != nil {
				return err
			}
			var v any
			if err := yaml.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("%s: %w", configFile, err)
			}
			js, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if err := r.resolve(); err != nil {
				return err
			}
			if r.key == "" {
				return usageError{errors.New("give --key: the provider's key, whose identity the offers carry")}
			}
			key, err := identity.LoadKeyFile(r.key)
			if err != nil {
				return err
			}
			ownerID, err := discoverOwner(cmd.Context(), &r, owner)
			if err != nil {
				return err
			}
			var d struct {
				Offers  []*descriptor.Document
				Skipped []string
			}
			switch adapter {
			case "aws":
				cfg, err := aws.ParseConfig(js)
				if err != nil {
					return fmt.Errorf("%s: %w", configFile, err)
				}
				cl, err := aws.NewClients(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				found, err := aws.Discover(cmd.Context(), cl, cfg, key.ID(), ownerID, time.Now().UTC())
				if err != nil {
					return err
				}
				d.Offers, d.Skipped = found.Offers, found.Skipped
			case "alibaba":
				cfg, err := alibaba.ParseConfig(js)
				if err != nil {
					return fmt.Errorf("%s: %w", configFile, err)
				}
				cl, err := alibaba.NewClient(cfg, os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"))
				if err != nil {
					return err
				}
				found, err := alibaba.Discover(cl, cfg, key.ID(), ownerID, time.Now().UTC())
				if err != nil {
					return err
				}
				d.Offers, d.Skipped = found.Offers, found.Skipped
			case "slurm":
				cfg, err := slurm.ParseOfferConfig(js)
				if err != nil {
					return fmt.Errorf("%s: %w", configFile, err)
				}
				found, err := slurm.DiscoverOffers(cmd.Context(), cfg, key.ID(), ownerID, time.Now().UTC())
				if err != nil {
					return err
				}
				d.Offers, d.Skipped = found.Offers, found.Skipped
			}
			for _, s := range d.Skipped {
				fmt.Fprintln(cmd.ErrOrStderr(), "not offered:", s)
			}
			if out != "" {
				return writeOffers(cmd, d.Offers, out)
			}
			if structured {
				var offers []*descriptor.Offer
				for _, doc := range d.Offers {
					offers = append(offers, doc.Offer)
				}
				if o.format == "yaml" {
					return writeYAMLStream(cmd, offers)
				}
				return o.write(cmd.OutOrStdout(), offers)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "COMPUTE ID\tQUANTITY\tMARKET\tCLASS\tPRICE")
			for _, doc := range d.Offers {
				of := doc.Offer
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", of.ComputeID, of.Quantity, of.Price.Market, classSummary(&of.Class), rateSummary(&of.Price))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&adapter, "adapter", "aws", "where the capacity is: aws, alibaba or slurm")
	cmd.Flags().StringVar(&configFile, "config", "", "the adapter's configuration file (YAML or JSON)")
	cmd.Flags().StringVar(&owner, "owner", "", "the DID of the broker the offers are for (default: the one at --broker)")
	cmd.Flags().StringVar(&out, "out", "", "write each offer to DIR/NAME.yaml, for 'cinet provider register'")
	r.register(cmd)
	o.register(cmd)
	return cmd
}

// discoverOwner is the broker the offers are for: --owner, else the
// broker --broker names.
func discoverOwner(ctx context.Context, r *remote, owner string) (identity.PrincipalID, error) {
	if owner != "" {
		return identity.ParsePrincipalID(owner)
	}
	if r.broker == "" {
		return identity.PrincipalID{}, usageError{errors.New("give --owner DID or --broker URL: an offer names the broker it is registered at")}
	}
	c, err := r.client()
	if err != nil {
		return identity.PrincipalID{}, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return identity.PrincipalID{}, err
	}
	return info.Broker, nil
}

// rateSummary lists a price schedule's rates: "98.32 USD/instance-hour".
func rateSummary(p *descriptor.PriceSchedule) string {
	var parts []string
	for _, r := range []struct {
		name string
		v    descriptor.Decimal
	}{{"instance-hour", p.Rates.InstanceHour}, {"vCPU-hour", p.Rates.VCPUHour}, {"GiB-hour", p.Rates.GiBHour}, {"accelerator-hour", p.Rates.AcceleratorHour}} {
		if !r.v.IsZero() {
			parts = append(parts, fmt.Sprintf("%s %s/%s", r.v, p.Currency, r.name))
		}
	}
	return strings.Join(parts, ", ")
}

func classSummary(c *descriptor.ComputeClass) string {
	s := fmt.Sprintf("%d vCPU %s, %s", c.CPU.Count, c.CPU.Arch, c.Memory)
	for _, a := range c.Accelerators {
		s += fmt.Sprintf(", %s:%d", a.Model, a.Count)
	}
	return s
}

// writeYAMLStream prints the offers as YAML documents.
func writeYAMLStream(cmd *cobra.Command, offers []*descriptor.Offer) error {
	for i, of := range offers {
		data, err := offerYAML(of)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(cmd.OutOrStdout(), "---")
		}
		cmd.OutOrStdout().Write(data)
	}
	return nil
}

// offerYAML is an offer as YAML, through its JSON form.
func offerYAML(of *descriptor.Offer) ([]byte, error) {
	js, err := json.Marshal(of)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(js)
}

func writeOffers(cmd *cobra.Command, docs []*descriptor.Document, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, doc := range docs {
		data, err := offerYAML(doc.Offer)
		if err != nil {
			return err
		}
		name := filepath.Join(dir, strings.ReplaceAll(doc.Offer.Metadata.Name, "/", "-")+".yaml")
		if err := writeNewFile(name, data); err != nil {
			return err
		}
		fmt.Fprintln(&b, name)
	}
	_, err := cmd.OutOrStdout().Write(b.Bytes())
	return err
}
