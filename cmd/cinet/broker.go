package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cinet/cinet/adapters/local"
	"github.com/cinet/cinet/adapters/slurm"
	"github.com/cinet/cinet/adapters/terraform"
	"github.com/cinet/cinet/broker/service"
)

func newBrokerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a broker, and issue API tokens",
	}
	cmd.AddCommand(newBrokerRunCmd())
	return cmd
}

func newBrokerRunCmd() *cobra.Command {
	var config, listen string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run a broker until SIGINT or SIGTERM",
		Long: `Run starts a broker from its configuration file: its key, region, data
directory (SQLite files by default; a postgres:// or cockroachdb:// store),
fee rate, the principals it admits with their roles, and its providers'
adapters. It serves the HTTP API (spec/api/openapi.json) and drives every job
to settlement. On SIGINT or SIGTERM it stops taking requests, finishes those
in flight and exits; placements keep running, and the next run resumes every
job and settlement where it stood. Logs are JSON lines on standard error.

The configuration (YAML; relative paths from the file's directory):

  region: cn-east-1              # required
  data: /var/lib/cinet           # required
  key: broker.key                # default DATA/broker.key
  store: postgres://…            # default SQLite files in DATA
  listen: 127.0.0.1:8420
  publicNames: [broker.example:8420]  # the names signed requests may name; default: listen
  metricsListen: 127.0.0.1:9420  # /metrics for anyone who reaches it; default: operator only, on the API
  checkpoint: 10s                # how often the audit log is checkpointed when it grew
  tls:                           # HTTPS for the API and console (spec/api/README.md, "TLS")
    cert: /etc/cinet/tls.crt     # PEM files, read again when they change; or
    key: /etc/cinet/tls.key
    # acme: {domains: [broker.example], email: ops@broker.example, httpListen: ":80"}
  tokenMaxTTL: 720h              # the longest an API token may be valid (at most 2160h)
  limits:                        # what one client may take (spec/api/README.md, "Limits"); defaults:
    connections: 4096            # connections in all, and from one address (an IPv6 /64)
    connectionsPerAddress: 256
    readHeaderTimeout: 10s       # headers, whole request, each write, and idle keep-alive
    readTimeout: 30s
    writeTimeout: 60s
    idleTimeout: 60s
    anonymousRate: 20            # requests/s without credentials, per address (-1: no limit)
    anonymousBurst: 200
    principalRate: 50            # requests/s of one principal
    principalBurst: 200
  fee: "0.02"
  principals:
    - {did: did:key:z6Mk…, role: tenant}      # tenant, provider, regulator, operator
  providers:
    - provider: did:key:z6Mk…
      adapter: local
      # Each task runs as its own user in namespaces and a cgroup limited
      # to the offer's class; the broker must run as root. Options:
      # network: none|host, pids: 1024, uids: 1000000-1065535,
      # expose: [/usr, /etc, …], hide: [paths no task may see],
      # logLimit: 64Mi (per stream of a task), retention: 168h (how long
      # a settled placement's directory is kept), defaultDisk: 10Gi (each
      # node's /work is a file system of the class's disk, or of this
      # when the class names none; spec/jobs.md §8).
      config: {workdir: /var/lib/cinet/work}
    # Other adapters (spec/adapters.md has each one's configuration):
    #   terraform  an OpenTofu/Terraform module per provider; nodes run the
    #              node agent: {binary, module, dataDir, cpus, memory, …}
    #   aws, alibaba  the terraform executor with each placement's module
    #              made from its offer: {terraform: {…, reportListen,
    #              reportURL}, module: {subnetId|vswitchId, securityGroupIds}}
    #   slurm      batch jobs on a Slurm cluster: {dataDir, partition,
    #              slurmConf}
  federation:                    # optional: join other brokers (spec/protocol.md)
    listen: [/ip4/0.0.0.0/tcp/9421, /ip4/0.0.0.0/udp/9421/quic-v1]
    bootstrap: [/ip4/10.0.0.7/tcp/9421/p2p/12D3KooW…]
    members: [did:key:z6Mk…, …]  # the brokers admitted; or open: true, for tests only
    api: https://broker.example  # announced to peers; default the listen address
    sync: 30s                    # how often a peer is asked for what gossip missed
    grace: 2m                    # how long an executing broker may be out of reach before its placement is lost
    statementPeriod: 1h          # the period of the clearing statements exchanged with each broker traded with
    statementDelay: 5m           # how long after a period's end its statement waits for late records
    requireSignedSubmissions: false  # refuse forwarded jobs without the tenant's signed request`,
		Example: `  cinet broker run --config /etc/cinet/broker.yaml`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if config == "" {
				return usageError{errors.New("--config FILE is required")}
			}
			c, err := service.LoadConfig(config)
			if err != nil {
				return err
			}
			if listen != "" {
				c.Listen = listen
			}
			log, err := service.NewLogger(c.LogLevel, os.Stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			svc, err := service.New(ctx, c, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broker %s serving %s\n", svc.Key.ID(), svc.URL())
			return svc.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "the broker's configuration file")
	cmd.Flags().StringVar(&listen, "listen", "", "override the configuration's listen address")
	return cmd
}

func newTerraformAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "terraform-agent run|stop DIR RANK",
		Short:  "Run or stop one node of a terraform adapter's placement (started by its infrastructure)",
		Hidden: true,
		Args:   exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := terraform.Agent(args); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}

// newSlurmNodeCmd is the slurm adapter's node wrapper: what each job step
// runs on each node (spec/adapters.md §6).
func newSlurmNodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "slurm-node DIR TASK",
		Short:  "Run one task of a slurm adapter's placement on this node (started by srun)",
		Hidden: true,
		Args:   exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := slurm.Node(args); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}

// newShimCmd is the local adapter's supervisor of one placement; the
// adapter starts it, people do not.
func newShimCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "local-shim DIR",
		Short:  "Supervise one placement of the local adapter (started by the broker)",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := local.Shim(args[0]); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}
