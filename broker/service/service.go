// Package service assembles a running broker from its configuration: its
// key and stores, the offer book and matcher, settlement, the adapters of
// its providers, the job runner and the HTTP API, with metrics and
// graceful shutdown.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/cinet/cinet/adapters" // registers "local"
	"github.com/cinet/cinet/broker/api"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/connlimit"
	"github.com/cinet/cinet/broker/console"
	"github.com/cinet/cinet/broker/federation"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/broker/match"
	"github.com/cinet/cinet/broker/offers"
	"github.com/cinet/cinet/broker/store"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/sqlstore"
	"github.com/cinet/cinet/spec"
)

// Config is a broker's configuration file (YAML; spec/api/README.md).
// Relative paths are relative to the file's directory.
type Config struct {
	Key    string `yaml:"key"`    // the broker's key file; default DATA/broker.key
	Region string `yaml:"region"` // required
	Data   string `yaml:"data"`   // the data directory; required
	// Store selects the databases: empty for SQLite files in the data
	// directory, or a postgres:// or cockroachdb:// URL for both the
	// ledger and the broker's own tables.
	Store  string `yaml:"store"`
	Listen string `yaml:"listen"` // default 127.0.0.1:8420
	// PublicNames are the host[:port] names callers reach the API by; a
	// request signed for another name is refused. Default: the listen
	// address, and localhost:PORT when it is a loopback address.
	PublicNames []string `yaml:"publicNames"`
	// Fee is this broker's fee rate on providers' charges ("0.02").
	Fee         string         `yaml:"fee"`
	Currency    string         `yaml:"currency"` // ranks jobs without a budget; default USD
	Latency     string         `yaml:"latency"`  // a latency table file (broker/match)
	OpenTenancy bool           `yaml:"openTenancy"`
	Principals  []Principal    `yaml:"principals"`
	Providers   []ProviderConf `yaml:"providers"`
	LogLevel    string         `yaml:"logLevel"` // debug, info (default), warn, error
	// Poll is how often running placements are checked (default 250ms).
	Poll Duration `yaml:"poll"`
	// MetricsListen, when set, serves /metrics to anyone who can reach
	// that address (keep it on loopback or a private network); the API
	// serves /metrics to the operator alone either way.
	MetricsListen string `yaml:"metricsListen"`
	// Checkpoint is how often the audit log is checkpointed when it has
	// grown (default 10s): what /checkpoint serves to anyone.
	Checkpoint Duration `yaml:"checkpoint"`
	// TLS serves the API over HTTPS (spec/api/README.md, "TLS"); without
	// it the API is plain HTTP, for loopback or behind a proxy.
	TLS *TLSConf `yaml:"tls"`
	// TokenMaxTTL bounds how long the API tokens the broker issues are
	// valid (default and at most 2160h, 90 days).
	TokenMaxTTL Duration `yaml:"tokenMaxTTL"`
	// Limits bound the API's connections, how long a client may take,
	// and how often one caller is served (spec/api/README.md, "Limits").
	Limits LimitsConf `yaml:"limits"`
	// Federation joins this broker to others over libp2p
	// (spec/protocol.md); without it the broker runs alone.
	Federation *FederationConf `yaml:"federation"`
	// AllowUnisolated lets a local provider run with isolation: none.
	// Only `cinet dev` sets it, on a host that cannot isolate tasks.
	AllowUnisolated bool `yaml:"-"`

	dir string // of the file
}

// FederationConf is the federation section of a broker's configuration.
type FederationConf struct {
	// Listen are libp2p multiaddresses; default loopback TCP and QUIC on
	// ports the system picks.
	Listen []string `yaml:"listen"`
	// Bootstrap are peers' multiaddresses, each ending in /p2p/<peer ID>.
	Bootstrap []string `yaml:"bootstrap"`
	// Members are the did:keys of the brokers admitted to the federation;
	// this broker is one whether listed or not.
	Members []string `yaml:"members"`
	// Open admits any broker: for tests and demonstrations only.
	Open bool `yaml:"open"`
	// API is the URL this broker's API is reached at, announced to peers;
	// default the listen address's.
	API string `yaml:"api"`
	// MaxPeers caps connections (default 200).
	MaxPeers int `yaml:"maxPeers"`
	// Sync is how often offers are pulled from a peer in turn (default 30s).
	Sync Duration `yaml:"sync"`
	// StatementPeriod is the period of the clearing statements exchanged
	// with each broker settled with (default 1h; UTC periods from the
	// epoch), and StatementDelay how long after a period's end its
	// statement waits for late usage records (default 5m).
	StatementPeriod Duration `yaml:"statementPeriod"`
	StatementDelay  Duration `yaml:"statementDelay"`
	// Grace is how long an executing broker may be out of reach before
	// its placement is deemed lost (default 2m).
	Grace Duration `yaml:"grace"`
	// RequireSignedSubmissions refuses jobs other brokers forward without
	// the tenant's signed request (those sent with a token or from a
	// console session).
	RequireSignedSubmissions bool `yaml:"requireSignedSubmissions"`
}

// LimitsConf is the limits section of a broker's configuration; a value
// left out takes its default.
type LimitsConf struct {
	// Connections caps the API's connections in all (default 4096), and
	// ConnectionsPerAddress those from one client address, an IPv6 client
	// by its /64 (default 256). Connections beyond them are closed at once.
	Connections           int `yaml:"connections"`
	ConnectionsPerAddress int `yaml:"connectionsPerAddress"`
	// ReadHeaderTimeout bounds reading a request's headers (default 10s),
	// ReadTimeout the whole request with its body (default 30s),
	// WriteTimeout writing a response (default 60s; a stream of logs or
	// events is given that long for each write, however long it lasts),
	// and IdleTimeout how long a kept-alive connection waits for its next
	// request (default 60s).
	ReadHeaderTimeout Duration `yaml:"readHeaderTimeout"`
	ReadTimeout       Duration `yaml:"readTimeout"`
	WriteTimeout      Duration `yaml:"writeTimeout"`
	IdleTimeout       Duration `yaml:"idleTimeout"`
	// AnonymousRate and AnonymousBurst bound, per client address, the
	// requests that are not authenticated (default 20/s, bursts of 200);
	// PrincipalRate and PrincipalBurst one principal's (default 50/s,
	// bursts of 200). A negative rate is no limit.
	AnonymousRate  float64 `yaml:"anonymousRate"`
	AnonymousBurst int     `yaml:"anonymousBurst"`
	PrincipalRate  float64 `yaml:"principalRate"`
	PrincipalBurst int     `yaml:"principalBurst"`
}

// limits are LimitsConf read, with defaults.
type limits struct {
	conns                   connlimit.Limits
	readHeader, read, write time.Duration
	idle                    time.Duration
	api                     api.Limits
}

func (c LimitsConf) parse() (limits, error) {
	l := limits{
		conns:      connlimit.Limits{Total: c.Connections, PerAddress: c.ConnectionsPerAddress},
		readHeader: 10 * time.Second, read: 30 * time.Second, write: 60 * time.Second, idle: 60 * time.Second,
		api: api.Limits{AnonymousRate: rate.Limit(c.AnonymousRate), AnonymousBurst: c.AnonymousBurst,
			PrincipalRate: rate.Limit(c.PrincipalRate), PrincipalBurst: c.PrincipalBurst},
	}
	if l.conns.Total == 0 {
		l.conns.Total = 4096
	}
	if l.conns.PerAddress == 0 {
		l.conns.PerAddress = 256
	}
	if l.conns.Total < 0 || l.conns.PerAddress < 0 {
		return l, errors.New("service: limits: connections and connectionsPerAddress are counts above 0")
	}
	for name, v := range map[string]struct {
		d   Duration
		out *time.Duration
	}{"readHeaderTimeout": {c.ReadHeaderTimeout, &l.readHeader}, "readTimeout": {c.ReadTimeout, &l.read},
		"writeTimeout": {c.WriteTimeout, &l.write}, "idleTimeout": {c.IdleTimeout, &l.idle}} {
		if err := v.d.positive("limits: "+name, v.out); err != nil {
			return l, err
		}
	}
	if l.read < l.readHeader {
		return l, fmt.Errorf("service: limits: readTimeout %s is shorter than readHeaderTimeout %s, which it includes", l.read, l.readHeader)
	}
	return l, nil
}

// A Principal is a caller the operator admits, with its role.
type Principal struct {
	DID  string `yaml:"did"`
	Role string `yaml:"role"`
}

// A ProviderConf says which adapter runs a provider's placements.
type ProviderConf struct {
	Provider string         `yaml:"provider"`
	Adapter  string         `yaml:"adapter"`
	Config   map[string]any `yaml:"config"`
}

// LoadConfig reads a configuration file strictly: unknown fields are
// errors.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := yaml.UnmarshalWithOptions(data, &c, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%s: %s", path, yaml.FormatError(err, false, true))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c.dir = filepath.Dir(abs)
	return &c, nil
}

// path resolves p against the configuration file's directory.
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// A Duration is a configured span of time, written as Go writes one
// ("250ms", "1h30m"); zero when the file leaves it out.
type Duration time.Duration

// UnmarshalText reads a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 250ms, 30s or 1h", b)
	}
	*d = Duration(v)
	return nil
}

// positive sets *out to d when the file gives it, refusing one not above
// zero.
func (d Duration) positive(name string, out *time.Duration) error {
	if d == 0 {
		return nil
	}
	if d < 0 {
		return fmt.Errorf("service: %s %s: want a positive duration", name, time.Duration(d))
	}
	*out = time.Duration(d)
	return nil
}

// seconds is positive for a duration that must be a whole number of
// seconds.
func (d Duration) seconds(name string, out *time.Duration) error {
	if d != 0 && time.Duration(d)%time.Second != 0 {
		return fmt.Errorf("service: %s %s: want a whole number of seconds such as 1h or 30s", name, time.Duration(d))
	}
	return d.positive(name, out)
}

// A Service is a broker.
type Service struct {
	Key     *identity.Key
	Region  string
	Settler *settlement.Settler
	Jobs    *store.Store
	Book    *book.Book
	Runner  *jobs.Runner
	// Federation is the broker's libp2p node; nil when it runs alone.
	Federation *federation.Node
	Offers     *offers.Registry
	API        *api.Server
	Adapters   map[identity.PrincipalID]adapters.Adapter
	Log        *slog.Logger

	ledger          *sqlstore.Store
	listener        net.Listener
	metricsListener net.Listener
	metrics         *metrics
	checkpointEvery time.Duration
	limits          limits
	tls             *serverTLS // nil for plain HTTP
}

// New opens a broker's stores and wires its parts; Run runs it.
func New(ctx context.Context, c *Config, log *slog.Logger) (*Service, error) {
	if c.Region == "" || c.Data == "" {
		return nil, errors.New("service: the configuration needs a region and a data directory")
	}
	data := c.path(c.Data)
	// The data directory holds the broker's key and databases: its owner's
	// alone, whatever it was made with.
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(data, 0o700); err != nil {
		return nil, fmt.Errorf("service: the data directory: %w", err)
	}
	keyFile := c.path(c.Key)
	if keyFile == "" {
		keyFile = filepath.Join(data, "broker.key")
	}
	key, err := identity.LoadKeyFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("service: the broker's key: %w", err)
	}
	set, err := c.settings()
	if err != nil {
		return nil, err
	}
	ads, err := c.openAdapters(set.principals, adapters.Host{
		Private:          []string{data, keyFile},
		Reserved:         consoleHosts(listenAddr(c), c.PublicNames),
		RequireIsolation: !c.AllowUnisolated,
	})
	if err != nil {
		return nil, err
	}
	var latency *match.LatencyTable
	if c.Latency != "" {
		if latency, err = match.LoadLatencyTable(c.path(c.Latency)); err != nil {
			closeAdapters(ads)
			return nil, err
		}
	}
	ledgerAt, brokerAt := filepath.Join(data, "ledger.db"), filepath.Join(data, "broker.db")
	if c.Store != "" {
		ledgerAt, brokerAt = c.Store, c.Store
	}
	ledger, err := sqlstore.Open(ctx, ledgerAt)
	if err != nil {
		closeAdapters(ads)
		return nil, err
	}
	js, err := store.Open(ctx, brokerAt)
	if err != nil {
		ledger.Close()
		closeAdapters(ads)
		return nil, err
	}
	lim := set.limits
	s := &Service{Key: key, Region: c.Region, Jobs: js, ledger: ledger, Adapters: ads, Log: log, checkpointEvery: set.checkpoint, limits: lim}
	var brokers []identity.PrincipalID // brokers settled with besides the federation's members: none
	// The brokers whose records are accepted: the federation's members,
	// as the node admits them.
	members := identity.SignerFunc(func(id identity.PrincipalID) bool { return s.Federation != nil && s.Federation.IsMember(id) })
	if s.Settler, err = settlement.New(settlement.Config{Store: ledger, Key: key, Origin: LogOrigin(key.ID()), Brokers: brokers, Members: members}); err != nil {
		s.close()
		return nil, err
	}
	s.Book = book.New(time.Now)
	matcher := match.New(s.Book, match.Config{HomeRegion: c.Region, Latency: latency, Currency: c.Currency})
	s.Offers = &offers.Registry{Store: js, Book: s.Book, Settler: s.Settler, Owner: key.ID(), Now: time.Now,
		CanRun: admitter(ads)}
	n, err := s.Offers.Load(ctx)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("service: loading registered offers: %w", err)
	}
	s.metrics = newMetrics(s)
	runnerConf := jobs.Config{
		Store: js, Book: s.Book, Matcher: matcher, Settler: s.Settler, Key: key, Region: c.Region, Fee: set.fee,
		Adapters: ads, Offers: s.Offers.Get, Log: log, Poll: set.poll, Observe: s.metrics,
	}
	if f := c.Federation; f != nil {
		runnerConf.Grace, runnerConf.RequireSigned = set.grace, f.RequireSignedSubmissions
	}
	s.Runner = jobs.NewRunner(runnerConf)
	listen := listenAddr(c)
	if c.TLS != nil {
		if s.tls, err = c.newServerTLS(data, log); err != nil {
			s.close()
			return nil, err
		}
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("service: listening on %s: %w", listen, err)
	}
	s.listener = connlimit.Listen(l, lim.conns, s.metrics.Refused)
	if c.MetricsListen != "" {
		if s.metricsListener, err = net.Listen("tcp", c.MetricsListen); err != nil {
			s.close()
			return nil, fmt.Errorf("service: listening for metrics on %s: %w", c.MetricsListen, err)
		}
	}
	if c.Federation != nil {
		if s.Federation, err = startFederation(ctx, c, set, key, s, log); err != nil {
			s.close()
			return nil, err
		}
		s.Offers.Gossip = s.Federation
		s.Runner.SetRemote(s.Federation.Remote())
	}
	s.API = api.New(api.Config{
		Federation: s.Federation,
		Key:        key, Region: c.Region, Runner: s.Runner, Jobs: js, Store: js, Book: s.Book, Matcher: matcher,
		Offers: s.Offers, Settler: s.Settler, Adapters: ads, Principals: set.principals, OpenTenancy: c.OpenTenancy, Authorities: authorities(c.PublicNames, s.Addr()),
		OpenAPI: spec.OpenAPI, Console: console.Handler(), Metrics: s.metrics.handler(), Ready: s.ready, Log: log,
		Limits: lim.api, Refused: s.metrics.Refused, StreamWriteTimeout: lim.write, TokenMaxTTL: set.tokenMaxTTL,
	})
	log.Info("broker ready", "broker", key.ID(), "region", c.Region, "listen", s.Addr(), "offers", n, "providers", len(ads))
	return s, nil
}

// settings are the configuration's values read and checked, with their
// defaults.
type settings struct {
	fee                 descriptor.Decimal
	poll, checkpoint    time.Duration
	tokenMaxTTL         time.Duration
	limits              limits
	principals          map[identity.PrincipalID]api.Role
	members             []identity.PrincipalID
	sync, period, delay time.Duration
	grace               time.Duration
}

// settings reads and checks the configuration's values: every mistake is
// found before anything is opened.
func (c *Config) settings() (*settings, error) {
	set := &settings{fee: descriptor.MustDecimal("0"), poll: 250 * time.Millisecond, checkpoint: 10 * time.Second}
	var err error
	if c.Fee != "" {
		if set.fee, err = descriptor.ParseDecimal(c.Fee); err != nil || set.fee.Apd().Cmp(descriptor.MustDecimal("1").Apd()) > 0 {
			return nil, fmt.Errorf("service: fee %q: want a fraction between 0 and 1", c.Fee)
		}
	}
	if err := errors.Join(c.Poll.positive("poll", &set.poll), c.Checkpoint.positive("checkpoint", &set.checkpoint),
		c.TokenMaxTTL.positive("tokenMaxTTL", &set.tokenMaxTTL)); err != nil {
		return nil, err
	}
	if set.tokenMaxTTL > api.MaxTokenTTL {
		return nil, fmt.Errorf("service: tokenMaxTTL %s: want a duration up to %s, such as 24h", set.tokenMaxTTL, api.MaxTokenTTL)
	}
	if set.limits, err = c.Limits.parse(); err != nil {
		return nil, err
	}
	set.principals = map[identity.PrincipalID]api.Role{}
	for _, p := range c.Principals {
		id, err := identity.ParsePrincipalID(p.DID)
		if err != nil {
			return nil, fmt.Errorf("service: principal %q: %w", p.DID, err)
		}
		role, err := api.ParseRole(p.Role)
		if err != nil {
			return nil, fmt.Errorf("service: principal %s: %w", p.DID, err)
		}
		set.principals[id] = role
	}
	if f := c.Federation; f != nil {
		for _, m := range f.Members {
			id, err := identity.ParsePrincipalID(m)
			if err != nil {
				return nil, fmt.Errorf("service: federation member %q: %w", m, err)
			}
			set.members = append(set.members, id)
		}
		if !f.Open && len(set.members) == 0 {
			return nil, errors.New("service: federation: list its members (the did:keys of the brokers admitted), or set open: true for a test")
		}
		if err := errors.Join(f.Sync.positive("federation: sync", &set.sync),
			f.StatementPeriod.seconds("federation: statementPeriod", &set.period), f.StatementDelay.seconds("federation: statementDelay", &set.delay),
			f.Grace.seconds("federation: grace", &set.grace)); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// openAdapters makes each provider's adapter for this broker (host); a
// provider not named among the principals is one, as a provider.
func (c *Config) openAdapters(principals map[identity.PrincipalID]api.Role, host adapters.Host) (map[identity.PrincipalID]adapters.Adapter, error) {
	ads := map[identity.PrincipalID]adapters.Adapter{}
	fail := func(err error) (map[identity.PrincipalID]adapters.Adapter, error) {
		closeAdapters(ads)
		return nil, err
	}
	for _, p := range c.Providers {
		id, err := identity.ParsePrincipalID(p.Provider)
		if err != nil {
			return fail(fmt.Errorf("service: provider %q: %w", p.Provider, err))
		}
		var raw []byte
		if p.Config != nil {
			if raw, err = json.Marshal(p.Config); err != nil {
				return fail(err)
			}
		}
		a, err := adapters.Open(p.Adapter, raw, host)
		if err != nil {
			return fail(fmt.Errorf("service: provider %s: %w", p.Provider, err))
		}
		ads[id] = a
		if _, ok := principals[id]; !ok {
			principals[id] = api.Provider
		}
	}
	return ads, nil
}

// closeAdapters closes the adapters that hold something open.
func closeAdapters(ads map[identity.PrincipalID]adapters.Adapter) {
	for _, a := range ads {
		if c, ok := a.(io.Closer); ok {
			c.Close()
		}
	}
}

// startFederation starts the broker's libp2p node from its configuration.
func startFederation(ctx context.Context, c *Config, set *settings, key *identity.Key, s *Service, log *slog.Logger) (*federation.Node, error) {
	f := c.Federation
	members := set.members
	apiURL := f.API
	if apiURL == "" {
		apiURL = s.URL()
	}
	node, err := federation.New(ctx, federation.Config{
		Key: key, Listen: f.Listen, Bootstrap: f.Bootstrap, Members: members, Open: f.Open,
		PeersFile: filepath.Join(c.path(c.Data), "peers.json"), MaxPeers: f.MaxPeers, SyncEvery: set.sync,
		Self: federation.Announcement{Region: c.Region, API: apiURL, Fee: set.fee.String(), VerifierKey: s.Settler.VerifierKey()},
		Book: s.Book, Offers: s.Offers, Executing: s.Runner, Leases: s.Jobs, Clearing: s.Settler, AuditLog: s.Settler, StatementPeriod: set.period, StatementDelay: set.delay,
		Log: log.With("part", "federation"), Metrics: s.metrics.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	log.Info("federation node ready", "addrs", node.Addrs(), "members", len(members), "open", f.Open)
	return node, nil
}

// admitter is what an offer registered here must pass: the broker runs
// its provider through an adapter, and the adapter, when it can tell,
// can provide what the offer sells.
func admitter(ads map[identity.PrincipalID]adapters.Adapter) func(context.Context, identity.PrincipalID, *descriptor.Offer) error {
	return func(ctx context.Context, p identity.PrincipalID, o *descriptor.Offer) error {
		a := ads[p]
		if a == nil {
			return fmt.Errorf("this broker has no adapter for provider %s, so it cannot run what the offer sells", p)
		}
		if c, ok := a.(interface {
			CheckOffer(context.Context, *descriptor.Offer) error
		}); ok {
			if err := c.CheckOffer(ctx, o); err != nil {
				return fmt.Errorf("the provider's machine cannot provide what the offer sells: %w", err)
			}
		}
		return nil
	}
}

// listenAddr is the API's listen address.
func listenAddr(c *Config) string {
	if c.Listen == "" {
		return "127.0.0.1:8420"
	}
	return c.Listen
}

// consoleHosts are the hosts a browser may reach the console by: those of
// the API's public names, and of its listen address. A cookie is sent to
// every port of the host it was set by, so a tenant's service on one of
// these hosts would receive the console's session cookies.
func consoleHosts(listen string, publicNames []string) []string {
	var out []string
	for _, a := range append([]string{listen}, publicNames...) {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		out = append(out, strings.ToLower(host))
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			out = append(out, "localhost")
		}
	}
	return out
}

// authorities are the names a broker answers signed requests by.
func authorities(names []string, addr string) []string {
	if len(names) > 0 {
		return names
	}
	out := []string{addr}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			out = append(out, net.JoinHostPort("localhost", port))
		}
	}
	return out
}

// LogOrigin is the audit log origin of a broker (spec/audit-log.md).
func LogOrigin(id identity.PrincipalID) string { return settlement.LogOrigin(id) }

// Addr is the API's address.
func (s *Service) Addr() string { return s.listener.Addr().String() }

// URL is the API's base URL.
func (s *Service) URL() string {
	if s.tls != nil {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

func (s *Service) ready(ctx context.Context) error {
	if err := s.Jobs.Ping(ctx); err != nil {
		return fmt.Errorf("broker store: %w", err)
	}
	if _, err := s.Settler.LogSize(ctx); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// Run serves the API and drives jobs until ctx ends, then shuts down: it
// stops taking requests, lets those in flight finish (up to 10s), stops
// the runner and closes the stores. Placements keep running; the next Run
// picks them up.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	srv := &http.Server{Handler: s.API, ReadHeaderTimeout: s.limits.readHeader, ReadTimeout: s.limits.read,
		WriteTimeout: s.limits.write, IdleTimeout: s.limits.idle, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn)}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Runner.Run(gctx) })
	g.Go(func() error {
		serve := func() error { return srv.Serve(s.listener) }
		if s.tls != nil {
			srv.TLSConfig = s.tls.config
			serve = func() error { return srv.ServeTLS(s.listener, "", "") }
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if s.tls != nil && s.tls.acmeHTTP != nil {
		// The ACME authority's HTTP-01 challenges; anything else there is
		// sent to HTTPS.
		asrv := &http.Server{Addr: s.tls.httpListen, Handler: s.tls.acmeHTTP.HTTPHandler(nil), ReadHeaderTimeout: s.limits.readHeader,
			ReadTimeout: s.limits.read, WriteTimeout: s.limits.write, IdleTimeout: s.limits.idle}
		g.Go(func() error {
			if err := asrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("service: serving ACME challenges on %s: %w", s.tls.httpListen, err)
			}
			return nil
		})
		g.Go(func() error { <-gctx.Done(); return asrv.Close() })
	}
	g.Go(func() error {
		<-gctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shut)
	})
	if s.metricsListener != nil {
		msrv := &http.Server{Handler: s.metrics.handler(), ReadHeaderTimeout: s.limits.readHeader, ReadTimeout: s.limits.read,
			WriteTimeout: s.limits.write, IdleTimeout: s.limits.idle}
		g.Go(func() error {
			if err := msrv.Serve(s.metricsListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error { <-gctx.Done(); return msrv.Close() })
	}
	if s.Federation != nil {
		g.Go(func() error { return s.Federation.Run(gctx) })
		g.Go(func() error {
			// Peers learn of the offers registered while this broker was away.
			if err := s.Federation.PublishOwn(gctx); err != nil && gctx.Err() == nil {
				s.Log.Warn("gossiping this broker's offers", "err", err)
			}
			return nil
		})
	}
	g.Go(func() error { s.sweepNonces(gctx); return nil })
	g.Go(func() error { s.checkpoints(gctx); return nil })
	err := g.Wait()
	s.Log.Info("broker stopped")
	return err
}

func (s *Service) sweepNonces(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := s.Jobs.ForgetNonces(ctx, now); err != nil && ctx.Err() == nil {
				s.Log.Warn("forgetting expired request nonces", "err", err)
			}
			if err := s.Jobs.ForgetTokens(ctx, now); err != nil && ctx.Err() == nil {
				s.Log.Warn("forgetting expired API tokens", "err", err)
			}
		}
	}
}

// checkpoints signs a checkpoint of the audit log whenever it has grown,
// so that the public /checkpoint follows the log.
func (s *Service) checkpoints(ctx context.Context) {
	t := time.NewTicker(s.checkpointEvery)
	defer t.Stop()
	for {
		if _, err := s.Settler.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn("checkpointing the audit log", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// MetricsAddr is the metrics address, or "" when there is none.
func (s *Service) MetricsAddr() string {
	if s.metricsListener == nil {
		return ""
	}
	return s.metricsListener.Addr().String()
}

func (s *Service) close() {
	if s.Federation != nil {
		s.Federation.Close()
	}
	if s.listener != nil {
		s.listener.Close()
	}
	if s.metricsListener != nil {
		s.metricsListener.Close()
	}
	if s.Jobs != nil {
		s.Jobs.Close()
	}
	if s.ledger != nil {
		s.ledger.Close()
	}
	closeAdapters(s.Adapters)
}

// NewLogger returns the broker's structured logger at a level.
func NewLogger(level string, w *os.File) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(orDefault(level, "info")))); err != nil {
		return nil, fmt.Errorf("logLevel %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
