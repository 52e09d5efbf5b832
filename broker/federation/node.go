package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/cinet/cinet/broker/api/v1"
	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/identity/peerid"
)

// Protocol and topic IDs (spec/protocol.md). A new major version is a new
// ID; a broker speaks the versions it lists in its announcement.
const (
	TopicOffers     = "/cinet/offers/1.0.0"
	TopicBrokers    = "/cinet/brokers/1.0.0"
	ProtocolSync    = "/cinet/sync/1.0.0"
	ProtocolReserve = "/cinet/reserve/1.0.0"
	DHTPrefix       = "/cinet"
)

// Size bounds (spec/protocol.md).
const (
	MaxGossip       = 64 << 10 // one gossiped offer, withdrawal or announcement
	MaxSyncRequest  = 16 << 20 // a summary of up to ~150,000 offers
	MaxSyncResponse = 16 << 20 // one page of offers and announcements
	MaxReserve      = 4 << 10  // a reservation request or reply
	SyncPage        = 2000     // offers per sync reply at most
)

// A Registry verifies and keeps offers that peers publish. broker/offers
// implements it.
type Registry interface {
	// Check verifies an offer envelope published by owner without keeping
	// it; book.ErrStale and book.ErrExpired mean it is not worth having,
	// any other error that it is bad.
	Check(envelope []byte, owner identity.PrincipalID) (*descriptor.Document, *identity.Envelope, error)
	// Admit checks and keeps an offer published by owner.
	Admit(ctx context.Context, envelope []byte, owner identity.PrincipalID) (*descriptor.Document, error)
	// WithdrawFor removes a pool's offer when owner owns it.
	WithdrawFor(ctx context.Context, name string, owner identity.PrincipalID) error
	// WithdrawnOwn returns the pools this broker owned and withdrew, by
	// the sequence withdrawn.
	WithdrawnOwn(ctx context.Context) (map[string]uint64, error)
}

// Config wires a Node.
type Config struct {
	Key *identity.Key
	// Listen are multiaddresses to listen on; default loopback TCP and
	// QUIC on ports the system picks.
	Listen []string
	// Bootstrap are multiaddresses of peers to connect to first, each
	// ending in /p2p/<peer ID>.
	Bootstrap []string
	// Members are the brokers admitted to the federation: streams and
	// messages from any other peer are refused. Open admits every peer,
	// for tests and demonstrations only.
	Members []identity.PrincipalID
	Open    bool
	// PeersFile keeps the addresses of peers met, so that a restart
	// reconnects without the bootstrap list. Optional.
	PeersFile string
	// Self is what this broker announces of itself; Broker and Protocols
	// are filled in.
	Self Announcement
	// AnnounceTTL is how long an announcement is valid (default 10m); it
	// is renewed after a third of it.
	AnnounceTTL time.Duration
	// SyncEvery is how often the node pulls from a peer what gossip may
	// have missed (default 30s).
	SyncEvery time.Duration
	// MaxPeers is the connection manager's high-water mark (default 200).
	MaxPeers int
	Book     *book.Book
	Offers   Registry
	// Executing runs the placements other brokers forward to this one;
	// nil refuses them.
	Executing Executing
	// Leases, when set, keeps the leases granted to peers, so that a
	// restart keeps them until they are confirmed, released or run out.
	Leases Leases
	// Clearing, when set, exchanges clearing statements with the members
	// this broker settled with, every StatementPeriod once
	// StatementDelay has passed after the period's end (defaults 1h and
	// 5m).
	Clearing Clearing
	// AuditLog, when set, is this broker's audit log: its checkpoints
	// are gossiped for members to witness.
	AuditLog        Log
	StatementPeriod time.Duration
	StatementDelay  time.Duration
	Now             func() time.Time
	Log             *slog.Logger
	// Metrics, when set, registers the federation's metrics.
	Metrics prometheus.Registerer
}

// A Node is a broker's place in the federation.
type Node struct {
	cfg         Config
	self        identity.PrincipalID
	host        host.Host
	dht         *dht.IpfsDHT
	ps          *pubsub.PubSub
	offers      *pubsub.Topic
	brokers     *pubsub.Topic
	checkpoints *pubsub.Topic
	subs        []*pubsub.Subscription
	m           *metrics
	mesh        meshTracer

	members map[peer.ID]identity.PrincipalID // nil when open

	mu        sync.Mutex
	announced map[identity.PrincipalID]*Announcement // the newest valid announcement of each member
	cleared   []ClearingResult                       // the latest clearing results
	w         witness
}

// New starts a broker's libp2p host, DHT and gossip. Run drives it; Close
// stops it.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Key == nil || cfg.Book == nil || cfg.Offers == nil {
		return nil, errors.New("federation: a node needs a key, a book and a registry")
	}
	if !cfg.Open && len(cfg.Members) == 0 {
		return nil, errors.New("federation: a closed federation needs its members (or open mode, for tests)")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.AnnounceTTL <= 0 {
		cfg.AnnounceTTL = 10 * time.Minute
	}
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = 30 * time.Second
	}
	if cfg.MaxPeers <= 0 {
		cfg.MaxPeers = 200
	}
	if cfg.StatementPeriod <= 0 {
		cfg.StatementPeriod = time.Hour
	}
	if cfg.StatementDelay <= 0 {
		cfg.StatementDelay = 5 * time.Minute
	}
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	n := &Node{cfg: cfg, self: cfg.Key.ID(), announced: map[identity.PrincipalID]*Announcement{}, m: newMetrics(cfg.Metrics)}
	n.mesh.m = n.m
	if !cfg.Open {
		n.members = map[peer.ID]identity.PrincipalID{}
		for _, id := range cfg.Members {
			n.members[peerid.Of(id)] = id
		}
		n.members[peerid.Of(n.self)] = n.self
	}
	priv, err := crypto.UnmarshalEd25519PrivateKey(cfg.Key.Ed25519())
	if err != nil {
		return nil, fmt.Errorf("federation: the broker's key: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.MaxPeers*3/4, cfg.MaxPeers, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, err
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale()))
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionGater((*gater)(n)),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.UserAgent("cinet"),
	)
	if err != nil {
		return nil, fmt.Errorf("federation: starting the libp2p host: %w", err)
	}
	n.host = h
	n.loadWitness()
	if err := n.restoreLeases(ctx); err != nil {
		n.Close()
		return nil, err
	}
	fail := func(err error) (*Node, error) { n.Close(); return nil, err }

	bootstrap, err := addrInfos(cfg.Bootstrap)
	if err != nil {
		return fail(err)
	}
	n.dht, err = dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix(DHTPrefix), dht.BootstrapPeers(bootstrap...))
	if err != nil {
		return fail(fmt.Errorf("federation: starting the DHT: %w", err))
	}
	if n.ps, err = newGossip(ctx, h, n); err != nil {
		return fail(err)
	}
	if err := n.joinTopics(); err != nil {
		return fail(err)
	}
	h.SetStreamHandler(ProtocolSync, n.serveSync)
	h.SetStreamHandler(ProtocolReserve, n.serveReserve)
	h.SetStreamHandler(ProtocolExec, n.serveExec)
	h.SetStreamHandler(ProtocolStatements, n.serveStatement)
	h.SetStreamHandler(ProtocolWitness, n.serveWitness)
	for _, ai := range append(bootstrap, n.loadPeers()...) {
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
	}
	return n, nil
}

// ID is the broker's principal ID, whose key is its peer ID's.
func (n *Node) ID() identity.PrincipalID { return n.self }

// Addrs returns the addresses peers can dial this broker at, each ending in
// /p2p/<peer ID>.
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.host.ID().String())
	}
	return out
}

// Host is the libp2p host, for tests and diagnostics.
func (n *Node) Host() host.Host { return n.host }

// Close stops the node and keeps its peers' addresses.
func (n *Node) Close() error {
	n.savePeers()
	for _, s := range n.subs {
		s.Cancel()
	}
	if n.dht != nil {
		n.dht.Close()
	}
	if n.host != nil {
		return n.host.Close()
	}
	return nil
}

// member returns the principal of an admitted peer.
func (n *Node) member(p peer.ID) (identity.PrincipalID, bool) {
	if n.members != nil {
		id, ok := n.members[p]
		return id, ok
	}
	id, err := peerid.Principal(p)
	return id, err == nil
}

// Members returns the brokers of the federation this node admits, itself
// included; nil in open mode.
func (n *Node) Members() []identity.PrincipalID {
	if n.members == nil {
		return nil
	}
	var out []identity.PrincipalID
	for _, id := range n.members {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b identity.PrincipalID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// IsMember reports whether a broker belongs to the federation.
func (n *Node) IsMember(id identity.PrincipalID) bool {
	_, ok := n.member(peerid.Of(id))
	return ok
}

// Connect dials a peer by its multiaddress (ending in /p2p/<peer ID>).
func (n *Node) Connect(ctx context.Context, addr string) error {
	ais, err := addrInfos([]string{addr})
	if err != nil {
		return err
	}
	return n.host.Connect(ctx, ais[0])
}

// staleConn: a connection to a peer this much older than a new one is
// taken to be dead.
const staleConn = 2 * time.Second

// unstick closes the connections of members connected for a while whose
// gossip this node does not hear: GossipSub loses a peer that restarts
// and reconnects while its old connection is being torn down (it drops
// the peer's subscriptions after taking the new ones), and never asks
// again. Reconnected, the two exchange subscriptions afresh.
func (n *Node) unstick() {
	subscribed := map[peer.ID]bool{}
	for _, p := range n.offers.ListPeers() {
		subscribed[p] = true
	}
	for _, p := range n.host.Network().Peers() {
		if _, ok := n.member(p); !ok || subscribed[p] {
			continue
		}
		conns := n.host.Network().ConnsToPeer(p)
		settled := len(conns) > 0
		for _, c := range conns {
			settled = settled && time.Since(c.Stat().Opened) > 10*time.Second
		}
		if settled {
			n.m.reconnects.Inc()
			n.cfg.Log.Info("reconnecting a member whose gossip is not heard", "peer", p)
			for _, c := range conns {
				c.Close()
			}
		}
	}
}

// Run keeps the node in the federation until ctx ends: it announces the
// broker and renews the announcement, connects to members it is not
// connected to, and pulls what it lacks from every newly connected peer.
func (n *Node) Run(ctx context.Context) error {
	for _, s := range n.subs {
		go n.consume(ctx, s)
	}
	connected := make(chan peer.ID, 64)
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(nw network.Network, c network.Conn) {
			// A peer that connects again while an older connection stands
			// has most often restarted: the old connection is dead, and
			// streams opened on it (gossip's among them) would hang until
			// it times out. Close it, so that they move to the new one.
			for _, old := range nw.ConnsToPeer(c.RemotePeer()) {
				if old != c && old.Stat().Opened.Before(c.Stat().Opened.Add(-staleConn)) {
					go old.Close()
				}
			}
			select {
			case connected <- c.RemotePeer():
			default:
				n.m.dropped.WithLabelValues("connected").Inc()
			}
		},
	})
	// A peer's listen addresses are known once identify completes: keep
	// them then, so that a broker killed a moment later still reconnects.
	identified, err := n.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return fmt.Errorf("federation: %w", err)
	}
	defer identified.Close()
	if err := n.dht.Bootstrap(ctx); err != nil {
		return fmt.Errorf("federation: bootstrapping the DHT: %w", err)
	}
	n.reconnect(ctx)
	if n.cfg.Clearing != nil {
		go n.clearing(ctx)
	}
	if n.cfg.AuditLog != nil {
		go n.publishCheckpoints(ctx)
	}
	go n.witnessLoop(ctx)
	for _, p := range n.host.Network().Peers() {
		go n.syncWith(ctx, p)
	}
	if err := n.announce(ctx); err != nil {
		n.cfg.Log.Warn("announcing this broker", "err", err)
	}
	renew := time.NewTicker(n.cfg.AnnounceTTL / 3)
	defer renew.Stop()
	dial := time.NewTicker(10 * time.Second)
	defer dial.Stop()
	// Gossip can miss a peer (a message sent before a subscription was
	// known, a partition): pull from one peer in turn every SyncEvery.
	resync := time.NewTicker(n.cfg.SyncEvery)
	defer resync.Stop()
	turn := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-connected:
			go n.syncWith(ctx, p)
		case <-identified.Out():
			n.savePeers()
		case <-renew.C:
			if err := n.announce(ctx); err != nil && ctx.Err() == nil {
				n.cfg.Log.Warn("announcing this broker", "err", err)
			}
		case <-dial.C:
			n.reconnect(ctx)
			n.savePeers()
		case <-resync.C:
			if peers := n.host.Network().Peers(); len(peers) > 0 {
				turn++
				go n.syncWith(ctx, peers[turn%len(peers)])
			}
		}
		n.m.peers.Set(float64(len(n.host.Network().Peers())))
	}
}

// reconnect dials the members it is not connected to, by the addresses it
// knows or, failing that, through the DHT.
func (n *Node) reconnect(ctx context.Context) {
	n.unstick()
	var want []peer.ID
	if n.members != nil {
		for p := range n.members {
			if p != n.host.ID() && n.host.Network().Connectedness(p) != network.Connected {
				want = append(want, p)
			}
		}
	} else {
		for _, p := range n.host.Peerstore().PeersWithAddrs() {
			if p != n.host.ID() && n.host.Network().Connectedness(p) != network.Connected {
				want = append(want, p)
			}
		}
	}
	for _, p := range want {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			ai := n.host.Peerstore().PeerInfo(p)
			if len(ai.Addrs) == 0 {
				found, err := n.dht.FindPeer(cctx, p)
				if err != nil {
					return
				}
				ai = found
			}
			if err := n.host.Connect(cctx, ai); err != nil {
				n.cfg.Log.Debug("dialing a member", "peer", p, "err", err)
			}
		}()
	}
}

func addrInfos(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("federation: peer address %q: %w", s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("federation: peer address %q must end in /p2p/<peer ID>: %w", s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// savePeers writes the addresses of connected peers to PeersFile.
func (n *Node) savePeers() {
	if n.cfg.PeersFile == "" || n.host == nil {
		return
	}
	var list []string
	for _, p := range n.host.Network().Peers() {
		for _, a := range n.host.Peerstore().Addrs(p) {
			list = append(list, a.String()+"/p2p/"+p.String())
		}
	}
	if len(list) == 0 {
		return
	}
	data, _ := json.Marshal(list)
	tmp := n.cfg.PeersFile + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err == nil {
		os.Rename(tmp, n.cfg.PeersFile)
	}
}

func (n *Node) loadPeers() []peer.AddrInfo {
	if n.cfg.PeersFile == "" {
		return nil
	}
	data, err := os.ReadFile(n.cfg.PeersFile)
	if err != nil {
		return nil
	}
	var list []string
	if json.Unmarshal(data, &list) != nil {
		n.cfg.Log.Warn("ignoring a malformed peers file", "file", n.cfg.PeersFile)
		return nil
	}
	var out []peer.AddrInfo
	for _, s := range list {
		if ai, err := addrInfos([]string{s}); err == nil {
			out = append(out, ai...)
		}
	}
	return out
}

// gater refuses connections to and from peers outside the membership.
type gater Node

func (g *gater) InterceptPeerDial(p peer.ID) bool             { return g.admit(p, "dial") }
func (g *gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool  { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.admit(p, "secured")
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

func (g *gater) admit(p peer.ID, stage string) bool {
	n := (*Node)(g)
	if _, ok := n.member(p); ok {
		return true
	}
	n.m.refused.WithLabelValues("not-a-member").Inc()
	n.cfg.Log.Info("refused a peer outside the federation", "peer", p, "at", stage)
	return false
}

// Status is what an operator sees of a broker's place in the federation.
type Status struct {
	Broker  identity.PrincipalID   `json:"broker"`
	Open    bool                   `json:"open"`
	Addrs   []string               `json:"addrs"`
	Members []identity.PrincipalID `json:"members,omitempty"`
	Peers   []PeerStatus           `json:"peers"`
	Brokers []Announcement         `json:"brokers"`
	// Clearing is how the latest clearing statements went, oldest first.
	Clearing []ClearingResult `json:"clearing"`
	// Equivocations are pairs of inconsistent checkpoints a member signed.
	Equivocations []Equivocation `json:"equivocations"`
}

// PeerStatus is one connected peer, as the API shows it (v1.Peer).
type PeerStatus = v1.Peer

// Status reports the node's addresses, members, peers and the brokers
// whose announcements are valid.
func (n *Node) Status() Status {
	st := Status{Broker: n.self, Open: n.members == nil, Addrs: n.Addrs(), Members: n.Members(), Peers: []PeerStatus{}, Brokers: n.Brokers(), Clearing: n.Clearings()}
	if st.Clearing == nil {
		st.Clearing = []ClearingResult{}
	}
	if st.Equivocations = n.Equivocations(); st.Equivocations == nil {
		st.Equivocations = []Equivocation{}
	}
	for _, p := range n.host.Network().Peers() {
		ps := PeerStatus{Peer: p.String(), Meshed: n.Meshed(TopicOffers, p), Addrs: []string{}}
		ps.Broker, _ = n.member(p)
		for _, c := range n.host.Network().ConnsToPeer(p) {
			ps.Addrs = append(ps.Addrs, c.RemoteMultiaddr().String())
		}
		st.Peers = append(st.Peers, ps)
	}
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int { return strings.Compare(a.Peer, b.Peer) })
	return st
}
