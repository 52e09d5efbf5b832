package main

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/cinet/cinet/adapters/local"
	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/client"
	"github.com/cinet/cinet/broker/match"
	"github.com/cinet/cinet/broker/offers"
	"github.com/cinet/cinet/broker/service"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement/auditlog"
)

// devRegion is the region of the broker 'cinet dev --brokers 1' runs.
const devRegion = "local"

// devRegions are the brokers of the federation 'cinet dev' runs: the
// first is the tenant's home broker; each has a local provider offering
// the examples' local offer in its region and jurisdiction, at its prices
// times factor.
var devRegions = []struct{ region, jurisdiction, factor string }{
	{"cn-north-1", "CN", "1"},
	{"cn-east-1", "CN", "0.75"},
	{"eu-west-1", "DE", "0.5"},
}

func newDevCmd() *cobra.Command {
	var dataDir, examples, listen, tofuBin string
	var demo, useTLS bool
	var brokers int
	var with []string
	var o output
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a federation of brokers with local providers on this machine, ready to use",
		Long: `Dev starts a federation of three brokers on this machine, in regions cn-north-1
(the tenant's home broker), cn-east-1 and eu-west-1, with embedded defaults:
SQLite books in a data directory (a new temporary one unless --data is
given; one subdirectory per region), and for each broker a local provider
that runs jobs as processes here, offering the examples' local offer in the
broker's region and jurisdiction (CN, CN, DE) at its prices ×1, ×0.75 and
×0.5. The brokers find each other over libp2p on loopback, gossip their
offers, forward jobs to each other, exchange clearing statements every two
seconds and witness each other's audit logs. Keys for a tenant and a
regulator, admitted at every broker, are in the data directory. It prints
the home broker's address and commands to paste, and runs until
interrupted. --brokers 1 runs one broker alone, in region "local".

With --demo it also submits the example jobs this machine can run, follows
them, prints where each ran and what it cost, the ledger's balances and a
verified audit checkpoint, and exits 0. It leaves in DATA/audit the
checkpoint, the log's verifier key, and for each usage record its log entry
(NAME.entry) beside its inclusion proof (NAME.tlog-proof), which any C2SP
verifier checks: 'cinet audit verify' for one. With several brokers the
demo also runs the hello example kept in China and by lowest latency, shows
where each job ran and which broker executed it, and waits until every pair
of brokers has countersigned its clearing statements and witnessed the
other's log, as 'cinet audit reconcile' checks.

With --with terraform the broker has a second provider, whose jobs run
through OpenTofu (or Terraform): each placement is a configuration of the
terraform adapter's built-in module, applied, run by node agents and
destroyed when it ends. The demo then also runs the hello example on it.
The tool is --tofu, else tofu or terraform in PATH, else the binary
.ci/build-tofu caches.`,
		Example: `  cinet dev
  cinet dev --demo
  cinet dev --demo --brokers 1
  cinet dev --demo -o json --data /tmp/cinet-demo
  cinet dev --demo --with terraform`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := o.json()
			if err != nil {
				return err
			}
			temporary := dataDir == "" && demo
			if dataDir == "" {
				if dataDir, err = os.MkdirTemp("", "cinet-dev-"); err != nil {
					return err
				}
				if temporary {
					// The demo's jobs have all settled when it ends: the
					// directory of its own making goes; --data keeps one.
					defer os.RemoveAll(dataDir)
				}
			}
			if dataDir, err = filepath.Abs(dataDir); err != nil {
				return err
			}
			var tf string
			for _, w := range with {
				if w != "terraform" {
					return fmt.Errorf("--with %s: the providers a dev broker can add are: terraform", w)
				}
				if tf, err = findTofu(tofuBin); err != nil {
					return err
				}
			}
			if brokers < 1 || brokers > len(devRegions) {
				return usageError{fmt.Errorf("--brokers %d: want 1 to %d", brokers, len(devRegions))}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			logOut := cmd.ErrOrStderr()
			if demo {
				logOut = io.Discard
			}
			log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
			opts := devOptions{examples: examples, listen: listen, tofu: tf}
			if useTLS {
				if opts.ca, opts.caKey, opts.caFile, err = devCA(dataDir); err != nil {
					return err
				}
			}
			d, stopBroker, err := startDev(ctx, dataDir, opts, brokers, log)
			if err != nil {
				return err
			}
			d.temporary = temporary
			if !demo {
				// The client config says the broker is ready: it is written
				// once offers are registered, and removed when it stops.
				clientFile := filepath.Join(dataDir, "client.yaml")
				conf := fmt.Sprintf("broker: %s\nkey: %s\n", d.url, d.keyFiles["tenant"])
				if opts.caFile != "" {
					conf += "ca: " + opts.caFile + "\n"
				}
				if err := writeNewFile(clientFile, []byte(conf)); err != nil {
					stopBroker()
					return err
				}
				defer os.Remove(clientFile)
				code, err := d.as(d.tenant).ConsoleCode(ctx)
				if err != nil {
					stopBroker()
					return err
				}
				d.printWelcome(cmd.OutOrStdout(), code.URL)
				<-ctx.Done()
				fmt.Fprintf(cmd.ErrOrStderr(), "stopping the broker; its data, and the jobs still running, stay in %s\n", dataDir)
				return stopBroker()
			}
			summary, err := d.runDemo(ctx, cmd.ErrOrStderr(), asJSON)
			if err != nil {
				stopBroker()
				return err
			}
			if err := stopBroker(); err != nil {
				return err
			}
			summary.Kept = !temporary
			if asJSON {
				return o.write(cmd.OutOrStdout(), summary)
			}
			printDemo(cmd.OutOrStdout(), summary, selfCommand())
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "", "the data directory (default: a new temporary directory)")
	cmd.Flags().StringVar(&examples, "examples", "examples", "the examples directory: offers/local-cpu.yaml prices the local offer; --demo runs jobs/")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "the API's address (default: a free port on loopback)")
	cmd.Flags().BoolVar(&useTLS, "tls", false, "serve each broker's API over HTTPS, with certificates from a CA of the data directory's own (DATA/ca.pem: client.yaml trusts it; other clients take --ca DATA/ca.pem)")
	cmd.Flags().BoolVar(&demo, "demo", false, "submit the example jobs, follow them, print the results and exit")
	cmd.Flags().StringSliceVar(&with, "with", nil, "more providers: terraform (jobs run through OpenTofu's apply)")
	cmd.Flags().StringVar(&tofuBin, "tofu", "", "the OpenTofu or Terraform binary --with terraform uses")
	cmd.Flags().IntVar(&brokers, "brokers", len(devRegions), "how many brokers: 1 runs one alone; 2 or 3 a federation in cn-north-1, cn-east-1 and eu-west-1")
	o.register(cmd)
	return cmd
}

// dev is a dev broker's setup.
type dev struct {
	dir, examples, url string
	temporary          bool // dir is removed when the demo ends
	// region, jurisdiction and price factor of its offers.
	region, jurisdiction, factor string
	// peers are the other brokers of the federation, when this one is
	// the home broker of one.
	peers            []*dev
	svc              *service.Service
	config           *service.Config
	broker, provider *identity.Key
	// tfProvider, when set, runs its jobs through the terraform adapter,
	// under tfOfferDoc.
	tfProvider        *identity.Key
	tfOfferDoc        *descriptor.Document
	tenant, regulator *identity.Key
	keyFiles          map[string]string
	offerDoc          *descriptor.Document
	http              *http.Client // trusts the dev CA, under --tls
	caFile            string       // the dev CA's certificate, under --tls
}

// devKey loads DIR/NAME.key, creating it on first use.
func devKey(dir, name string) (*identity.Key, string, error) {
	path := filepath.Join(dir, name+".key")
	k, err := identity.LoadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if k, err = identity.GenerateKey(rand.Reader); err != nil {
			return nil, "", err
		}
		err = identity.WriteKeyFile(path, k)
	}
	return k, path, err
}

// devOptions set up one broker of 'cinet dev'.
type devOptions struct {
	examples, listen, tofu string
	// region, jurisdiction and factor place and price its offer; region
	// "" is devRegion, with the example's jurisdiction and prices.
	region, jurisdiction, factor string
	// shared holds the tenant's and the regulator's keys (default the
	// broker's directory).
	shared string
	// members and bootstrap make it a member of a federation.
	members, bootstrap []string
	// ca, when set, signs a certificate for the broker's API, which is
	// then served over HTTPS; caFile is the CA's certificate.
	ca     *x509.Certificate
	caKey  crypto.Signer
	caFile string
}

// startDev sets up and starts 'cinet dev's brokers: one alone, or a
// federation of n whose first is the home broker returned. stop stops
// them all.
func startDev(ctx context.Context, dataDir string, o devOptions, n int, log *slog.Logger) (home *dev, stop func() error, err error) {
	var stops []func() error
	stop = func() error {
		var first error
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	start := func(d *dev) error {
		svc, err := service.New(ctx, d.config, log)
		if err != nil {
			return err
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(runCtx) }()
		stops = append(stops, func() error { cancel(); return <-done })
		d.svc, d.url = svc, svc.URL()
		return nil
	}
	fail := func(err error) (*dev, func() error, error) { stop(); return nil, nil, err }
	if n == 1 {
		if home, err = setUpDev(dataDir, o); err != nil {
			return nil, nil, err
		}
		if err := start(home); err != nil {
			return fail(err)
		}
		if err := home.registerOffers(ctx); err != nil {
			return fail(err)
		}
		return home, stop, nil
	}
	// The members' keys first: each broker's configuration lists them all.
	dirs := make([]string, n)
	for i := range n {
		dirs[i] = filepath.Join(dataDir, devRegions[i].region)
		if err := os.MkdirAll(dirs[i], 0o700); err != nil {
			return nil, nil, err
		}
		k, _, err := devKey(dirs[i], "broker")
		if err != nil {
			return nil, nil, err
		}
		o.members = append(o.members, k.ID().String())
	}
	for i := range n {
		oi := o
		oi.region, oi.jurisdiction, oi.factor, oi.shared = devRegions[i].region, devRegions[i].jurisdiction, devRegions[i].factor, dataDir
		if i > 0 {
			oi.listen, oi.tofu, oi.bootstrap = "127.0.0.1:0", "", home.svc.Federation.Addrs()
		}
		d, err := setUpDev(dirs[i], oi)
		if err != nil {
			return fail(err)
		}
		if err := start(d); err != nil {
			return fail(err)
		}
		if err := d.registerOffers(ctx); err != nil {
			return fail(err)
		}
		if i == 0 {
			home = d
		} else {
			home.peers = append(home.peers, d)
		}
	}
	// Ready once the home broker's book holds every broker's offers.
	want := 0
	for _, d := range append([]*dev{home}, home.peers...) {
		want++
		if d.tfProvider != nil {
			want++
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		list, err := home.as(home.tenant).Offers(ctx, "")
		if err == nil && len(list) >= want {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fail(fmt.Errorf("the home broker's book holds %d of the federation's %d offers after 60s (%v)", len(list), want, err))
		}
	}
	return home, stop, nil
}

func setUpDev(dir string, o devOptions) (*dev, error) {
	examples, listen, tofu := o.examples, o.listen, o.tofu
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := &dev{dir: dir, examples: examples, keyFiles: map[string]string{}, region: cmp.Or(o.region, devRegion), jurisdiction: o.jurisdiction, factor: cmp.Or(o.factor, "1")}
	shared := cmp.Or(o.shared, dir)
	for _, who := range []struct {
		name, dir string
		k         **identity.Key
	}{{"broker", dir, &d.broker}, {"provider", dir, &d.provider}, {"tenant", shared, &d.tenant}, {"regulator", shared, &d.regulator}} {
		k, path, err := devKey(who.dir, who.name)
		if err != nil {
			return nil, err
		}
		*who.k, d.keyFiles[who.name] = k, path
	}
	if tofu != "" {
		k, path, err := devKey(dir, "terraform-provider")
		if err != nil {
			return nil, err
		}
		d.tfProvider, d.keyFiles["terraform-provider"] = k, path
	}
	if err := d.makeOffer(); err != nil {
		return nil, err
	}
	localConf := map[string]any{"workdir": filepath.Join(dir, "work")}
	unisolated := false
	if exe, err := os.Executable(); err == nil {
		if err := local.CanIsolate([]string{exe, "local-shim"}); err != nil {
			fmt.Fprintf(os.Stderr, "cinet dev: WARNING: jobs run unisolated, as this user, able to read each other's files and the broker's key: %v\n", err)
			localConf["isolation"], unisolated = local.IsolationNone, true
		}
	}
	cfg := map[string]any{
		"region": d.region, "data": dir, "key": d.keyFiles["broker"], "listen": listen, "fee": "0.02", "poll": "100ms",
		"principals": []map[string]string{
			{"did": d.tenant.ID().String(), "role": "tenant"},
			{"did": d.regulator.ID().String(), "role": "regulator"},
		},
		"providers": []map[string]any{{
			"provider": d.provider.ID().String(), "adapter": "local",
			"config": localConf,
		}},
	}
	if d.tfProvider != nil {
		cfg["providers"] = append(cfg["providers"].([]map[string]any), map[string]any{
			"provider": d.tfProvider.ID().String(), "adapter": "terraform",
			"config": map[string]any{"binary": tofu, "dataDir": filepath.Join(dir, "terraform"), "cpus": 4, "memory": "4Gi"},
		})
	}
	if o.ca != nil {
		certFile, keyFile, err := devCert(dir, o.ca, o.caKey)
		if err != nil {
			return nil, err
		}
		cfg["tls"] = map[string]any{"cert": certFile, "key": keyFile}
		if d.http, err = client.HTTPWithCA(o.caFile); err != nil {
			return nil, err
		}
		d.caFile = o.caFile
	}
	if o.members != nil {
		// Short periods, so that what the federation does shows at once.
		cfg["checkpoint"] = "1s"
		cfg["federation"] = map[string]any{
			"listen": []string{"/ip4/127.0.0.1/tcp/0"}, "bootstrap": o.bootstrap, "members": o.members,
			"sync": "2s", "statementPeriod": "2s", "statementDelay": "1s",
		}
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	if d.config, err = service.LoadConfig(path); err != nil {
		return nil, err
	}
	d.config.AllowUnisolated = unisolated
	return d, nil
}

// makeOffer builds the local provider's offer from the examples' local
// CPU offer: its class and prices, the provider's own compute identifier,
// this machine's region, valid for a day.
func (d *dev) makeOffer() error {
	src := filepath.Join(d.examples, "offers", "local-cpu.yaml")
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading the example offer that prices the local provider: %w (run from the repository, or give --examples DIR)", err)
	}
	example, err := descriptor.ParseOffer(src, data)
	if err != nil {
		return err
	}
	if d.offerDoc, err = d.offer(example.Offer, d.provider, "dev-local-cpu", "z0"); err != nil {
		return err
	}
	if d.tfProvider != nil {
		d.tfOfferDoc, err = d.offer(example.Offer, d.tfProvider, "dev-terraform-cpu", "z1")
	}
	return err
}

// offer is the example's class and prices offered by a provider of the
// dev broker in one zone.
func (d *dev) offer(o *descriptor.Offer, provider *identity.Key, name, zone string) (*descriptor.Document, error) {
	cid, err := identity.NewComputeID(provider.ID(), d.region, zone, "cpu")
	if err != nil {
		return nil, err
	}
	price, err := scalePrice(o.Price, d.factor)
	if err != nil {
		return nil, err
	}
	class, err := json.Marshal(o.Class)
	if err != nil {
		return nil, err
	}
	doc := fmt.Sprintf(`{"apiVersion": "cinet/v1", "kind": "Offer", "metadata": {"name": %q},
		"computeId": %q, "provider": %q, "broker": %q, "region": %q, "zone": %q, "jurisdiction": %q,
		"class": %s, "quantity": %d, "price": %s, "validUntil": %q, "sequence": %d}`,
		name, cid, provider.ID(), d.broker.ID(), d.region, zone, cmp.Or(d.jurisdiction, o.Jurisdiction), class, max(o.Quantity, 4), price,
		time.Now().UTC().Add(24*time.Hour).Truncate(time.Second).Format(time.RFC3339), time.Now().Unix())
	return descriptor.ParseOffer(name+".json", []byte(doc))
}

// scalePrice returns a price schedule, as JSON, with every rate — the base
// rates and each tier's — multiplied by factor, exactly.
func scalePrice(p descriptor.PriceSchedule, factor string) ([]byte, error) {
	raw, err := json.Marshal(p)
	if err != nil || factor == "1" {
		return raw, err
	}
	f, _, err := apd.NewFromString(factor)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	scale := func(rates any) error {
		rs, _ := rates.(map[string]any)
		for k, v := range rs {
			x, _, err := apd.NewFromString(fmt.Sprint(v))
			if err != nil {
				return fmt.Errorf("rate %s: %w", k, err)
			}
			var out apd.Decimal
			if _, err := apd.BaseContext.WithPrecision(40).Mul(&out, x, f); err != nil {
				return err
			}
			out.Reduce(&out)
			rs[k] = out.Text('f')
		}
		return nil
	}
	if err := scale(m["rates"]); err != nil {
		return nil, err
	}
	tiers, _ := m["tiers"].([]any)
	for _, t := range tiers {
		if tm, ok := t.(map[string]any); ok {
			if err := scale(tm["rates"]); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(m)
}

func (d *dev) as(k *identity.Key) *client.Client {
	return &client.Client{Base: d.url, Key: k, HTTP: d.http}
}

func (d *dev) registerOffers(ctx context.Context) error {
	for _, o := range []struct {
		k   *identity.Key
		doc *descriptor.Document
	}{{d.provider, d.offerDoc}, {d.tfProvider, d.tfOfferDoc}} {
		if o.k == nil {
			continue
		}
		env, err := offers.Seal(o.k, o.doc)
		if err != nil {
			return err
		}
		if _, err := d.as(o.k).RegisterOffer(ctx, env.Encode()); err != nil {
			return err
		}
	}
	return nil
}

// findTofu finds the tool for --with terraform: the one named, else tofu
// or terraform in PATH, else the one .ci/build-tofu caches.
func findTofu(named string) (string, error) {
	if named != "" {
		return named, nil
	}
	for _, n := range []string{"tofu", "terraform"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	if cache, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(cache, "cinet-ci", "tofu-v1.10.6")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("--with terraform needs OpenTofu or Terraform: none in PATH, nor cached by .ci/build-tofu; run .ci/build-tofu, or give --tofu PATH")
}

func (d *dev) printWelcome(w io.Writer, console string) {
	self := selfCommand()
	if len(d.peers) > 0 {
		fmt.Fprintf(w, "cinet dev: a federation of %d brokers on loopback, each with a local provider\n", len(d.peers)+1)
		for _, p := range d.peers {
			fmt.Fprintf(w, "  %-11s %s  %s  (data %s)\n", p.region, p.url, p.broker.ID(), p.dir)
		}
		fmt.Fprintf(w, "  jobs submitted to the home broker below run on the best offer of any of them\n\n")
	}
	caEnv := ""
	if d.caFile != "" {
		caEnv = " CINET_CA=" + d.caFile
	}
	fmt.Fprintf(w, `cinet dev: the home broker, in region %s, with a local provider
  console    %s
             (signs you in as the tenant, once, within 2 minutes; '%s console login' makes another link)
  API        %s   (spec: %s/openapi.json)
  broker     %s
  data       %s

Keys in the data directory: broker.key, provider.key, tenant.key, regulator.key;
client.yaml names this broker and the tenant's key while it runs.
Paste into another shell:

  export CINET_CONFIG=%s   # or CINET_BROKER=%s CINET_KEY=%s%s
  %s job submit %s --wait
  %s job list
  %s ledger balance
  %s audit checkpoint --key %s
  %s provider offers --all --key %s

Press Ctrl-C to stop.
`, d.region, console, self, d.url, d.url, d.broker.ID(), d.dir, filepath.Join(d.dir, "client.yaml"), d.url, d.keyFiles["tenant"], caEnv,
		self, filepath.Join(d.examples, "jobs", "batch-cpu.yaml"), self, self, self, d.keyFiles["regulator"], self, d.keyFiles["provider"])
}

// writeNewFile writes a file whole, so that whoever waits for it never
// reads it half written.
func writeNewFile(path string, data []byte) error {
	tmp := path + ".cinet-tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// selfCommand is how to run this program again from the shell it was
// started in: as it was invoked when that works there, "go run ./cmd/cinet"
// under go run, else its absolute path.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/cinet"
	}
	if strings.ContainsRune(os.Args[0], filepath.Separator) {
		return os.Args[0]
	}
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		if same, _ := filepath.EvalSymlinks(p); same == exe || p == exe {
			return os.Args[0]
		}
	}
	return exe
}

// demoJob is one example job in the demo's summary.
type demoJob struct {
	File       string    `json:"file"`
	ID         string    `json:"id,omitempty"`
	Name       string    `json:"name"`
	State      v1.State  `json:"state"`
	Outcome    v1.State  `json:"outcome,omitempty"`
	HomeRegion string    `json:"home_region"`
	RanRegion  string    `json:"ran_region,omitempty"`
	Offer      string    `json:"offer,omitempty"`
	Provider   string    `json:"provider,omitempty"`
	Broker     string    `json:"broker,omitempty"` // the broker that executed it
	Cost       *v1.Money `json:"cost,omitempty"`
	Records    []string  `json:"records,omitempty"`
	Skipped    string    `json:"skipped,omitempty"` // why the job was not submitted
	// Served is what each replica of a service answered at its endpoint,
	// before the demo cancelled it.
	Served []string `json:"served,omitempty"`
}

// demoSummary is what 'cinet dev --demo' reports.
type demoSummary struct {
	Broker     string           `json:"broker"`
	Data       string           `json:"data"`
	Kept       bool             `json:"kept"` // whether Data remains after the command (--data)
	Jobs       []demoJob        `json:"jobs"`
	Balances   []map[string]any `json:"balances"`
	Checkpoint demoCheckpoint   `json:"checkpoint"`
	// Brokers are the federation's, home first; Statements how each pair
	// cleared: countersigned clearing statements found on both sides.
	Brokers    []demoBroker     `json:"brokers,omitempty"`
	Statements []reconciledPair `json:"statements,omitempty"`
	Reconciled bool             `json:"reconciled,omitempty"` // 'cinet audit reconcile' passes over them
}

type demoBroker struct {
	Broker string `json:"broker"`
	Region string `json:"region"`
	URL    string `json:"url"`
}

type demoCheckpoint struct {
	Origin      string   `json:"origin"`
	Size        int64    `json:"size"`
	Root        string   `json:"root"`
	VerifierKey string   `json:"verifierKey"`
	Verified    bool     `json:"verified"`
	Note        string   `json:"note"`
	Files       []string `json:"files"`
	Proofs      int      `json:"proofsVerified"`
}

func (d *dev) runDemo(ctx context.Context, progress io.Writer, quiet bool) (*demoSummary, error) {
	tenant, regulator := d.as(d.tenant), d.as(d.regulator)
	files, err := filepath.Glob(filepath.Join(d.examples, "jobs", "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no example jobs in %s", filepath.Join(d.examples, "jobs"))
	}
	if quiet {
		progress = io.Discard
	}
	s := &demoSummary{Broker: d.broker.ID().String(), Data: d.dir}
	if len(d.peers) > 0 {
		s.Data = filepath.Dir(d.dir) // each broker's directory is in it
	}
	dr := &demoRun{s: s, progress: progress}
	if err := d.chooseExamples(ctx, tenant, files, dr); err != nil {
		return nil, err
	}
	if err := d.demoVariants(dr); err != nil {
		return nil, err
	}
	if err := d.runExamples(ctx, tenant, dr); err != nil {
		return s, err
	}
	if err := demoBooks(ctx, regulator, s); err != nil {
		return nil, err
	}
	if err := d.verifyAudit(ctx, regulator, s); err != nil {
		return nil, err
	}
	if len(d.peers) > 0 {
		if err := d.reconcileFederation(ctx, s, progress); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// A demoRun is the demo's examples under way: the summary, and which of
// its jobs are run, with their documents.
type demoRun struct {
	s          *demoSummary
	progress   io.Writer
	runnable   []demoExample
	runnableAt []int // each runnable example's place in s.Jobs
}

type demoExample struct {
	data []byte
	doc  *descriptor.Document
}

// add puts a job in the summary, to be run when ex is given.
func (dr *demoRun) add(dj demoJob, ex *demoExample) {
	if ex != nil {
		dr.runnable, dr.runnableAt = append(dr.runnable, *ex), append(dr.runnableAt, len(dr.s.Jobs))
	}
	dr.s.Jobs = append(dr.s.Jobs, dj)
}

// chooseExamples reads the example jobs and keeps those this machine can
// run. Every example is explained before any is submitted, so that why one
// is skipped never depends on what the others hold at that moment.
func (d *dev) chooseExamples(ctx context.Context, tenant *client.Client, files []string, dr *demoRun) error {
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		doc, err := descriptor.ParseJob(f, data)
		if err != nil {
			return fmt.Errorf("an example job is invalid: %w", err)
		}
		dj := demoJob{File: f, Name: doc.Job.Metadata.Name, HomeRegion: d.region}
		// Only what this machine can run: the broker explains the rest.
		raw, err := tenant.Explain(ctx, data, f)
		if err != nil {
			return err
		}
		var x match.Explanation
		if err := json.Unmarshal(raw, &x); err != nil {
			return err
		}
		if why := localObstacle(doc); x.Feasible == 0 || why != "" {
			dj.State = "skipped"
			dj.Skipped = "the local provider cannot run it: " + cmp.Or(why, explainWhy(&x, doc))
			fmt.Fprintf(dr.progress, "%s: skipped — %s\n", dj.Name, dj.Skipped)
			dr.add(dj, nil)
			continue
		}
		dr.add(dj, &demoExample{data, doc})
	}
	return nil
}

// demoVariants adds the hello example again: on the terraform provider
// when there is one, and, in a federation, under two more rules.
func (d *dev) demoVariants(dr *demoRun) error {
	hello := filepath.Join(d.examples, "jobs", "hello.json")
	if d.tfProvider != nil {
		// The terraform adapter runs batch jobs, not services: services
		// keep off its provider. The hello example runs on it, named so.
		tfDID := d.tfProvider.ID().String()
		for k, ex := range dr.runnable {
			if ex.doc.Job.Service != nil {
				var err error
				if dr.runnable[k].data, err = withProviders(ex.data, nil, []string{tfDID}); err != nil {
					return err
				}
			}
		}
		data, err := os.ReadFile(hello)
		if err != nil {
			return fmt.Errorf("--with terraform runs the hello example on the terraform provider: %w", err)
		}
		doc, err := descriptor.ParseJob(hello, data)
		if err != nil {
			return err
		}
		if data, err = withProviders(data, []string{tfDID}, nil); err != nil {
			return err
		}
		dr.add(demoJob{File: hello, Name: doc.Job.Metadata.Name + " (on the terraform provider)", HomeRegion: d.region}, &demoExample{data, doc})
	}
	if len(d.peers) == 0 {
		return nil
	}
	// The same small job under two more rules: kept in China (the
	// cheapest offer is in Germany), and by lowest latency from home.
	data, err := os.ReadFile(hello)
	if err != nil {
		return fmt.Errorf("the federation's demo runs the hello example under more rules: %w", err)
	}
	for _, v := range []struct{ name, set string }{
		{" (kept in China)", `{"placement": {"jurisdictions": {"allow": ["CN"]}}}`},
		{" (lowest latency)", `{"objective": {"type": "latency"}}`},
	} {
		variant, err := mergeJSON(data, v.set)
		if err != nil {
			return err
		}
		doc, err := descriptor.ParseJob(hello, variant)
		if err != nil {
			return err
		}
		dr.add(demoJob{File: hello, Name: doc.Job.Metadata.Name + v.name, HomeRegion: d.region}, &demoExample{variant, doc})
	}
	return nil
}

// runExamples submits every runnable example, then follows each to its
// settlement; a service is asked through its endpoints, then cancelled.
func (d *dev) runExamples(ctx context.Context, tenant *client.Client, dr *demoRun) error {
	s, progress := dr.s, dr.progress
	var submitted []int
	services := map[string]bool{}
	for k, ex := range dr.runnable {
		dj := &s.Jobs[dr.runnableAt[k]]
		j, err := tenant.SubmitJob(ctx, ex.data, dj.File)
		if err != nil {
			return err
		}
		dj.ID = j.ID
		services[j.ID] = ex.doc.Job.Service != nil
		fmt.Fprintf(progress, "%s: submitted as %s\n", dj.Name, j.ID)
		submitted = append(submitted, dr.runnableAt[k])
	}
	for _, i := range submitted {
		dj := &s.Jobs[i]
		service := services[dj.ID]
		if service {
			// A service serves until it is cancelled: once every replica
			// is ready, ask each, then cancel it.
			var err error
			if dj.Served, err = tryService(ctx, tenant, dj.ID, progress); err != nil {
				return fmt.Errorf("example service %s: %w", dj.Name, err)
			}
			if _, err := tenant.Cancel(ctx, dj.ID); err != nil {
				return err
			}
		}
		j, err := follow(ctx, tenant, dj.ID, prefixed(progress, "  "+dj.Name+" "))
		if err != nil {
			return err
		}
		dj.State, dj.Outcome, dj.Cost = j.State, j.Outcome, j.Cost
		if n := len(j.Attempts); n > 0 {
			a := j.Attempts[n-1]
			dj.RanRegion, dj.Offer, dj.Provider, dj.Broker = a.Region, a.Offer, a.Provider, a.Broker
		}
		for _, a := range j.Attempts {
			if a.Record != "" {
				dj.Records = append(dj.Records, a.Record)
			}
		}
		if want := map[bool]v1.State{false: v1.Succeeded, true: v1.Cancelled}[service]; j.Outcome != want {
			return fmt.Errorf("example job %s ended %s: %s", dj.Name, j.Outcome, j.Detail)
		}
	}
	return nil
}

// demoBooks adds the balances to the summary, and checks that the books
// balance in every currency.
func demoBooks(ctx context.Context, regulator *client.Client, s *demoSummary) error {
	b, err := regulator.Balances(ctx, "")
	if err != nil {
		return err
	}
	for _, x := range b.Balances {
		s.Balances = append(s.Balances, map[string]any{"account": x.Account, "currency": x.Currency, "amount": x.Amount.Decimal()})
	}
	for cur, n := range b.TrialBalance {
		if n != 0 {
			return fmt.Errorf("the trial balance in %s is %s, not zero", cur, n)
		}
	}
	return nil
}

// reconcileFederation waits until every pair of brokers has countersigned
// its clearing statements and each log is witnessed — what 'cinet audit
// reconcile' checks — and adds the brokers and the pairs to the summary.
func (d *dev) reconcileFederation(ctx context.Context, s *demoSummary, progress io.Writer) error {
	var clients []*client.Client
	for _, x := range append([]*dev{d}, d.peers...) {
		clients = append(clients, x.as(x.regulator))
		s.Brokers = append(s.Brokers, demoBroker{Broker: x.broker.ID().String(), Region: x.region, URL: x.url})
		b, err := x.as(x.regulator).Balances(ctx, "")
		if err != nil {
			return err
		}
		for cur, n := range b.TrialBalance {
			if n != 0 {
				return fmt.Errorf("broker %s's trial balance in %s is %s, not zero", x.region, cur, n)
			}
		}
	}
	fmt.Fprintf(progress, "waiting for the brokers to countersign their clearing statements and witness each other's logs\n")
	var rec *reconciliation
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		var err error
		if rec, err = reconcile(ctx, clients); err != nil {
			return err
		}
		settled := len(rec.Problems) == 0
		for _, p := range rec.Pairs {
			// Every record that crossed between the two is covered.
			settled = settled && p.Records >= crossed(s, p.A, p.B)
		}
		if settled {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the brokers did not reconcile within 90s: %s", strings.Join(rec.Problems, "; "))
		}
	}
	s.Statements, s.Reconciled = rec.Pairs, true
	return nil
}

// crossed counts the records of jobs the demo ran between two brokers:
// each is in a statement of each side.
func crossed(s *demoSummary, a, b string) int64 {
	var n int64
	for _, j := range s.Jobs {
		if (s.Broker == a && j.Broker == b) || (s.Broker == b && j.Broker == a) {
			n += 2 * int64(len(j.Records)) // one statement each way
		}
	}
	return n
}

// mergeJSON sets fields of a JSON document from another.
func mergeJSON(doc []byte, set string) ([]byte, error) {
	var m, add map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(set), &add); err != nil {
		return nil, err
	}
	for k, v := range add {
		m[k] = v
	}
	return json.Marshal(m)
}

// withProviders returns a job file (YAML or JSON) as JSON, with the
// providers it may and may not be placed on added to its placement.
func withProviders(data []byte, allow, deny []string) ([]byte, error) {
	var job map[string]any
	if err := yaml.Unmarshal(data, &job); err != nil {
		return nil, err
	}
	placement, _ := job["placement"].(map[string]any)
	if placement == nil {
		placement = map[string]any{}
	}
	providers, _ := placement["providers"].(map[string]any)
	if providers == nil {
		providers = map[string]any{}
	}
	for key, add := range map[string][]string{"allow": allow, "deny": deny} {
		if len(add) == 0 {
			continue
		}
		list, _ := providers[key].([]any)
		for _, a := range add {
			list = append(list, a)
		}
		providers[key] = list
	}
	placement["providers"], job["placement"] = providers, placement
	return json.Marshal(job)
}

// tryService waits until every replica of a service job is ready, then
// asks each of its endpoints (a GET of /, or a TCP connection), and says
// what they answered.
func tryService(ctx context.Context, c *client.Client, id string, progress io.Writer) ([]string, error) {
	var eps []v1.Endpoint
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		eps = currentEndpoints(j)
		if len(eps) > 0 && !slices.ContainsFunc(eps, func(ep v1.Endpoint) bool { return !ep.Ready }) {
			break
		}
		if j.State.Ended() {
			return nil, fmt.Errorf("it ended (%s) before it was ready: %s", j.State, j.Detail)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	var served []string
	for _, ep := range eps {
		var answer string
		if ep.URL != "" {
			resp, err := hc.Get(ep.URL + "/")
			if err != nil {
				return nil, err
			}
			body, err := io.ReadAll(io.LimitReader(resp.Body, 200))
			resp.Body.Close()
			if err != nil {
				return nil, err
			}
			answer = fmt.Sprintf("%s: %s %q", ep.URL, resp.Status, strings.TrimSpace(string(body)))
		} else {
			conn, err := net.DialTimeout("tcp", ep.Address, 10*time.Second)
			if err != nil {
				return nil, err
			}
			conn.Close()
			answer = ep.Address + ": accepts connections"
		}
		fmt.Fprintf(progress, "  replica %d %s\n", ep.Replica, answer)
		served = append(served, answer)
	}
	return served, nil
}

// localObstacle says why the local provider cannot run a job that an
// offer could serve, or "" when it can: it runs commands, not images, and
// only programs this machine has.
func localObstacle(doc *descriptor.Document) string {
	for _, t := range doc.Job.Tasks {
		if len(t.Command) == 0 {
			return "its tasks are container images, and the local provider runs commands"
		}
		if prog := t.Command[0]; filepath.IsAbs(prog) {
			if _, err := os.Stat(prog); err != nil {
				return fmt.Sprintf("task %s runs %s, which this machine does not have", t.Name, prog)
			}
		}
	}
	return ""
}

func explainWhy(x *match.Explanation, doc *descriptor.Document) string {
	// Each reason once, in words with the numbers, as job explain gives it.
	var parts []string
	seen := map[match.Reason]bool{}
	for _, f := range x.Fates {
		if f.Reason == "" || seen[f.Reason] {
			continue
		}
		seen[f.Reason] = true
		part := string(f.Reason)
		if f.Detail != "" {
			part += " (" + f.Detail + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}

// verifyAudit fetches the checkpoint and every record's proof as the
// regulator, verifies them offline, and leaves them in DATA/audit.
func (d *dev) verifyAudit(ctx context.Context, regulator *client.Client, s *demoSummary) error {
	info, err := regulator.Info(ctx)
	if err != nil {
		return err
	}
	note, err := regulator.Checkpoint(ctx)
	if err != nil {
		return err
	}
	cp, err := auditlog.OpenCheckpoint(note, info.VerifierKey)
	if err != nil {
		return fmt.Errorf("the broker's checkpoint does not verify: %w", err)
	}
	dir := filepath.Join(d.dir, "audit")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, data []byte) error {
		path := filepath.Join(dir, name)
		s.Checkpoint.Files = append(s.Checkpoint.Files, path)
		return os.WriteFile(path, data, 0o644)
	}
	if err := write("checkpoint", note); err != nil {
		return err
	}
	if err := write("vkey", []byte(info.VerifierKey+"\n")); err != nil {
		return err
	}
	s.Checkpoint = demoCheckpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash.String(), VerifierKey: info.VerifierKey, Note: string(note), Files: s.Checkpoint.Files}
	for _, j := range s.Jobs {
		for _, rec := range j.Records {
			p, err := regulator.Proof(ctx, rec)
			if err != nil {
				return err
			}
			if _, _, err := auditlog.VerifyReceipt([]byte(p.Proof), p.Entry, info.VerifierKey, nil); err != nil {
				return fmt.Errorf("the proof of record %s does not verify: %w", rec, err)
			}
			name := recordFileName(rec)
			if err := write(name+".entry", p.Entry); err != nil {
				return err
			}
			if err := write(name+".tlog-proof", []byte(p.Proof)); err != nil {
				return err
			}
			s.Checkpoint.Proofs++
		}
	}
	s.Checkpoint.Verified = true
	return nil
}

func printDemo(w io.Writer, s *demoSummary, self string) {
	fmt.Fprintf(w, "\ncinet dev --demo: broker %s\n", s.Broker)
	regionOf := map[string]string{}
	for i, b := range s.Brokers {
		regionOf[b.Broker] = b.Region
		role := ""
		if i == 0 {
			role = " (home: the jobs are submitted here)"
		}
		fmt.Fprintf(w, "  %-11s %s  %s%s\n", b.Region, b.Broker, b.URL, role)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tID\tSTATE\tHOME\tRAN IN\tON\tCOST")
	for _, j := range s.Jobs {
		state := string(j.State)
		if j.Outcome != "" {
			state += " (" + string(j.Outcome) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, dash(j.ID), state, j.HomeRegion, dash(j.RanRegion), dash(j.Offer), money(j.Cost))
	}
	tw.Flush()
	fmt.Fprintln(w, "  HOME: the region of the broker the job was submitted to; RAN IN: the region of the offer it ran on;")
	fmt.Fprintln(w, "  ON: that offer's compute identifier; COST: what the tenant was charged, fees included.")
	for _, j := range s.Jobs {
		if j.Skipped != "" {
			fmt.Fprintf(w, "  %s was not submitted: %s\n", j.Name, j.Skipped)
		}
		if len(j.Served) > 0 {
			fmt.Fprintf(w, "  %s is a service; it was cancelled once each replica had answered:\n", j.Name)
			for _, a := range j.Served {
				fmt.Fprintf(w, "    %s\n", a)
			}
		}
	}
	fmt.Fprintln(w, "\nledger balances (credit-positive: owed by the broker to the holder)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, b := range s.Balances {
		fmt.Fprintf(tw, "  %v\t%v\t%v\n", b["account"], b["currency"], b["amount"])
	}
	tw.Flush()
	if len(s.Statements) > 0 {
		fmt.Fprintln(w, "\nclearing between brokers: statements each side signed and the other countersigned")
		for _, p := range s.Statements {
			if p.Statements == 0 {
				fmt.Fprintf(w, "  %s ↔ %s: nothing to clear (no job crossed between them)\n", cmp.Or(regionOf[p.A], p.A), cmp.Or(regionOf[p.B], p.B))
				continue
			}
			fmt.Fprintf(w, "  %s ↔ %s: %d statement(s) on both sides, covering %d record(s), both signatures verified\n",
				cmp.Or(regionOf[p.A], p.A), cmp.Or(regionOf[p.B], p.B), p.Statements, p.Records)
		}
		if s.Reconciled {
			fmt.Fprintln(w, "  every log is witnessed by another broker; 'cinet audit reconcile' passes over the federation")
		}
	}
	c := s.Checkpoint
	fmt.Fprintf(w, "\naudit log %s: %d entries, root %s\n", c.Origin, c.Size, c.Root)
	fmt.Fprintf(w, "checkpoint verified with %s; %d record proofs verified\n", c.VerifierKey, c.Proofs)
	if s.Kept && len(c.Files) > 0 {
		fmt.Fprintf(w, "files for any C2SP verifier in %s\n", filepath.Dir(c.Files[0]))
	} else {
		fmt.Fprintf(w, "the data directory %s was removed; run with --data DIR to keep the checkpoint, proofs and keys\n", s.Data)
	}
	fmt.Fprintf(w, "\nnext:\n")
	fmt.Fprintf(w, "  %s dev                                   # keep the brokers running and submit your own jobs\n", self)
	fmt.Fprintf(w, "  %s job explain %s --offers %s   # where a job would run, and why, with the numbers\n", self, filepath.Join("examples", "jobs", "train-llama.yaml"), filepath.Join("examples", "offers"))
	fmt.Fprintf(w, "  %s descriptor convert --from skypilot task.yaml   # bring a SkyPilot task (or --from slurm)\n", self)
}

// prefixed writes each line with a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func prefixed(w io.Writer, prefix string) io.Writer { return &prefixWriter{w, prefix} }

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(p.w, p.prefix+strings.TrimLeft(line, " ")); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
