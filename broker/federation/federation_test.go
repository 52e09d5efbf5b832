package federation

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/cinet/cinet/broker/book"
	"github.com/cinet/cinet/broker/jobs"
	"github.com/cinet/cinet/broker/offers"
	"github.com/cinet/cinet/broker/store"
	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
	"github.com/cinet/cinet/settlement"
	"github.com/cinet/cinet/settlement/sqlstore"
)

func key(seed string) *identity.Key {
	s := sha256.Sum256([]byte("cinet federation test " + seed))
	return identity.NewKey(ed25519.NewKeyFromSeed(s[:]))
}

var (
	keyA, keyB, keyC = key("a"), key("b"), key("c")
	outsider         = key("outsider")
	provider         = key("provider")
	hostile          = []*identity.Key{key("h0"), key("h1"), key("h2"), key("h3"), key("h4"), key("h5")}
	members          = append([]identity.PrincipalID{keyA.ID(), keyB.ID(), keyC.ID()}, ids(hostile)...)
)

func ids(keys []*identity.Key) []identity.PrincipalID {
	var out []identity.PrincipalID
	for _, k := range keys {
		out = append(out, k.ID())
	}
	return out
}

// broker is one broker's federation node over a real registry, store and
// settler.
type broker struct {
	*Node
	reg     *offers.Registry
	book    *book.Book
	settler *settlement.Settler
	stop    func() // stops it; the test's end does too
}

func start(t testing.TB, k *identity.Key, mem []identity.PrincipalID) *broker {
	t.Helper()
	return startWith(t, k, mem, startOptions{})
}

// startOptions vary a test broker.
type startOptions struct {
	// auditLog is its audit log as witnesses see it; nil: its settler's.
	auditLog Log
	// wrap, when set, wraps the registry the node keeps peers' offers in.
	wrap      func(Registry) Registry
	quiet     bool          // no log
	syncEvery time.Duration // default 300ms
	dir       string        // its data directory (default a new one): to start a broker again
}

func startWith(t testing.TB, k *identity.Key, mem []identity.PrincipalID, o startOptions) *broker {
	t.Helper()
	auditLog := o.auditLog
	ctx, cancel := context.WithCancel(context.Background())
	dir := o.dir
	if dir == "" {
		dir = t.TempDir()
	}
	js, err := store.Open(ctx, filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := sqlstore.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	settler, err := settlement.New(settlement.Config{Store: ledger, Key: k, Origin: settlement.LogOrigin(k.ID())})
	if err != nil {
		t.Fatal(err)
	}
	if auditLog == nil {
		auditLog = settler
	}
	b := &broker{book: book.New(nil), settler: settler}
	b.reg = &offers.Registry{Store: js, Book: b.book, Settler: settler, Owner: k.ID(), Now: time.Now,
		CanRun: func(context.Context, identity.PrincipalID, *descriptor.Offer) error { return nil }}
	if _, err := b.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var reg Registry = b.reg
	if o.wrap != nil {
		reg = o.wrap(reg)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.quiet {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := New(ctx, Config{Key: k, Members: mem, Book: b.book, Offers: reg, Self: Announcement{Region: "r-" + k.ID().String()[8:14]}, AuditLog: auditLog, Leases: js,
		PeersFile: filepath.Join(dir, "peers.json"), SyncEvery: cmp.Or(o.syncEvery, 300*time.Millisecond), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	b.Node = n
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			n.Close()
			js.Close()
			ledger.Close()
		})
	}
	t.Cleanup(b.stop)
	return b
}

// testWriter sends a node's log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// connect connects a to b and waits until each has grafted the other into
// its gossip mesh for offers: until then a message can miss the new peer.
func connect(t testing.TB, a, b *broker) {
	t.Helper()
	if err := a.Connect(context.Background(), b.Addrs()[0]); err != nil {
		t.Fatalf("connecting %s to %s: %v", a.ID(), b.ID(), err)
	}
	eventually(t, "gossip peers", func() bool {
		return a.Meshed(TopicOffers, b.Host().ID()) && b.Meshed(TopicOffers, a.Host().ID())
	})
}

// eventually waits for cond, failing after a generous deadline: it waits
// on what the network does, not on how fast this machine is.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// offerFor returns a provider's signed offer of a pool owned by owner.
func offerFor(t testing.TB, owner identity.PrincipalID, pool string, seq, quantity int, signer *identity.Key) []byte {
	t.Helper()
	cid, err := identity.NewComputeID(provider.ID(), "cn-east-1", "a", pool)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := descriptor.Parse("offer.yaml", fmt.Appendf(nil, `apiVersion: cinet/v1
kind: Offer
metadata: {name: %s}
computeId: %s
provider: %s
broker: %s
region: cn-east-1
zone: a
jurisdiction: CN
class:
  cpu: {arch: x86_64, count: 2}
  memory: 4Gi
quantity: %d
price:
  currency: USD
  rates: {vcpuHour: "0.04"}
validUntil: %s
sequence: %d
`, pool, cid, provider.ID(), owner, quantity, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), seq))
	if err != nil {
		t.Fatal(err)
	}
	env, err := identity.Seal(signer, offers.PayloadType, doc.Canonical, identity.SealOptions{Expires: doc.Offer.ValidUntil, Seq: doc.Offer.Sequence})
	if err != nil {
		t.Fatal(err)
	}
	return env.Encode()
}

// register registers an offer at its owner and gossips it.
func (b *broker) register(t testing.TB, pool string, seq, quantity int) string {
	t.Helper()
	env := offerFor(t, b.ID(), pool, seq, quantity, provider)
	doc, err := b.reg.Register(context.Background(), env, provider.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PublishOffer(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	return doc.Offer.ComputeID.Name()
}

func (b *broker) holds(name string, seq uint64) bool {
	e, ok := b.book.Get(name)
	return ok && e.Sequence == seq
}

func TestOffersPropagateAndWithdraw(t *testing.T) {
	a, b, c := start(t, keyA, members), start(t, keyB, members), start(t, keyC, members)
	connect(t, a, b)
	connect(t, b, c) // c hears a through b
	name := a.register(t, "cpu", 1, 4)
	eventually(t, "c holds a's offer", func() bool { return c.holds(name, 1) })
	if e, _ := c.book.Get(name); e.Owner != keyA.ID() {
		t.Fatalf("c records owner %s, want a", e.Owner)
	}
	// A newer sequence replaces it everywhere.
	a.register(t, "cpu", 2, 8)
	eventually(t, "c holds sequence 2", func() bool { return c.holds(name, 2) })
	// A withdrawal by its owner takes it out.
	if err := a.reg.Withdraw(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	if err := a.PublishWithdrawal(context.Background(), name, 2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c drops the withdrawn offer", func() bool { _, ok := c.book.Get(name); return !ok })
	// Announcements: every broker knows every member's.
	eventually(t, "c knows all three brokers", func() bool { return len(c.Brokers()) == 3 })
	// A new announcement crosses two hops, and c measures how long it took.
	samples := func() (uint64, float64) {
		var m dto.Metric
		if err := c.m.propagation.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
	}
	before, beforeSum := samples()
	sent := time.Now()
	if err := a.announce(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c measures the announcement's propagation", func() bool { n, _ := samples(); return n > before })
	// The announcement's sequence, its signing time, is in whole
	// milliseconds (truncated), so the measure may exceed the real delay
	// by up to one.
	took := time.Since(sent).Seconds() + 0.001
	if n, sum := samples(); (sum-beforeSum)/float64(n-before) > took {
		t.Fatalf("propagation measured at %.4fs, longer than the %.4fs it can have taken", (sum-beforeSum)/float64(n-before), took)
	}
}

func TestAntiEntropyOnJoin(t *testing.T) {
	a, b := start(t, keyA, members), start(t, keyB, members)
	var names []string
	for i := range 30 {
		names = append(names, a.register(t, fmt.Sprintf("pool-%d", i), 1, 2))
	}
	// b was not connected when they were gossiped: it pulls them on joining.
	connect(t, b, a)
	eventually(t, "b holds all of a's offers", func() bool {
		for _, n := range names {
			if !b.holds(n, 1) {
				return false
			}
		}
		return true
	})
	// They came by sync, not gossip: b was not connected when they were
	// published. (The counter is added to after each page, so wait for it.)
	eventually(t, "b counts 30 offers synced", func() bool { return testutil.ToFloat64(b.m.synced) >= 30 })
}

// TestAntiEntropyHealsMissedGossip: an offer replaced and another
// withdrawn while gossip did not reach a peer (here: not gossiped at all)
// converge at the peer by periodic sync alone.
func TestAntiEntropyHealsMissedGossip(t *testing.T) {
	a, b := start(t, keyA, members), start(t, keyB, members)
	connect(t, a, b)
	kept, gone := a.register(t, "kept", 1, 2), a.register(t, "gone", 1, 2)
	eventually(t, "b holds both offers", func() bool { return b.holds(kept, 1) && b.holds(gone, 1) })
	// Registered and withdrawn at a without a word on the topic.
	if _, err := a.reg.Register(context.Background(), offerFor(t, keyA.ID(), "kept", 2, 3, provider), provider.ID()); err != nil {
		t.Fatal(err)
	}
	if err := a.reg.Withdraw(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b holds a's newer offer", func() bool { return b.holds(kept, 2) })
	eventually(t, "b drops a's withdrawn offer", func() bool { _, held := b.book.Get(gone); return !held })
}

// TestHostileMember: a member publishes what no honest broker would; its
// peers refuse each item for its reason, and nothing enters their books.
// Each case is a member of its own: rejections lower a peer's score until
// its messages are no longer heard, which the last check shows.
func TestHostileMember(t *testing.T) {
	a, b := start(t, keyA, members), start(t, keyB, members)
	connect(t, a, b)
	name := a.register(t, "cpu", 5, 4)
	eventually(t, "b holds a's offer", func() bool { return b.holds(name, 5) })

	forged := func(owner identity.PrincipalID) []byte {
		env, err := identity.DecodeEnvelope(offerFor(t, owner, "forged", 1, 4, provider))
		if err != nil {
			t.Fatal(err)
		}
		env.Signature[7] ^= 1 // well-formed, but not the provider's signature
		return env.Encode()
	}
	for i, tc := range []struct {
		name   string
		data   []byte
		result string
		reason string
		pool   string
	}{
		{"forged signature", forged(hostile[0].ID()), "rejected", "bad-signature", "forged"},
		{"signed by another than its provider", offerFor(t, hostile[1].ID(), "by-another", 1, 4, outsider), "rejected", "invalid-offer", "by-another"},
		{"offer naming another broker", offerFor(t, keyA.ID(), "claimed", 1, 4, provider), "rejected", "not-owner", "claimed"},
		{"another broker's offer replayed", offerFor(t, keyA.ID(), "cpu", 4, 4, provider), "rejected", "not-owner", ""},
		{"oversized", make([]byte, MaxGossip+1), "rejected", "too-large", ""},
		{"wrong payload type", mustSeal(t, hostile[5], "application/vnd.cinet.other+json"), "rejected", "wrong-payload-type", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := start(t, hostile[i], members)
			connect(t, m, b)
			counter := b.m.gossip.WithLabelValues(TopicOffers, tc.result, tc.reason)
			before := testutil.ToFloat64(counter)
			if err := m.offers.Publish(context.Background(), tc.data); err != nil {
				t.Fatal(err)
			}
			eventually(t, fmt.Sprintf("b counts a %s %s message", tc.result, tc.reason), func() bool { return testutil.ToFloat64(counter) > before })
			if tc.pool != "" {
				cid, _ := identity.NewComputeID(provider.ID(), "cn-east-1", "a", tc.pool)
				if _, ok := b.book.Get(cid.Name()); ok {
					t.Fatalf("b's book holds %s", tc.pool)
				}
			}
		})
	}
	// The owner's own replay of an older sequence is ignored as stale.
	stale := b.m.gossip.WithLabelValues(TopicOffers, "ignored", "stale")
	before := testutil.ToFloat64(stale)
	if err := a.offers.Publish(context.Background(), offerFor(t, keyA.ID(), "cpu", 3, 4, provider)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b ignores the replayed sequence 3", func() bool { return testutil.ToFloat64(stale) > before })
	if !b.holds(name, 5) {
		t.Fatal("the replay replaced the newer offer")
	}
}

func mustSeal(t testing.TB, k *identity.Key, payloadType string) []byte {
	env, err := identity.Seal(k, payloadType, []byte(`{"x":1}`), identity.SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return env.Encode()
}

// TestOutsiderRefused: a peer outside the membership cannot connect, and
// the refusal is counted.
func TestOutsiderRefused(t *testing.T) {
	a := start(t, keyA, members)
	o := start(t, outsider, []identity.PrincipalID{outsider.ID(), keyA.ID()}) // it thinks it belongs
	before := testutil.ToFloat64(a.m.refused.WithLabelValues("not-a-member"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := o.Connect(ctx, a.Addrs()[0]); err == nil {
		// The handshake may finish on the dialer's side before a refuses.
		eventually(t, "a drops the outsider", func() bool { return len(a.Host().Network().ConnsToPeer(o.Host().ID())) == 0 })
	}
	eventually(t, "a counts the refusal", func() bool {
		return testutil.ToFloat64(a.m.refused.WithLabelValues("not-a-member")) > before
	})
	if _, err := a.Reserve(ctx, outsider.ID(), "x", 1, "j", time.Minute); err == nil {
		t.Fatal("a reserved at an outsider")
	}
}

// TestReserveRace: 200 concurrent requests from three brokers for an offer
// with 10 free instances grant exactly 10; only the holder releases.
func TestReserveRace(t *testing.T) {
	a, b, c := start(t, keyA, members), start(t, keyB, members), start(t, keyC, members)
	connect(t, b, a)
	connect(t, c, a)
	name := a.register(t, "gpu", 1, 10)
	eventually(t, "b and c hold the offer", func() bool { return b.holds(name, 1) && c.holds(name, 1) })
	var granted, busy atomic.Int32
	var mu sync.Mutex
	held := map[string]*broker{}
	var wg sync.WaitGroup
	askers := []*broker{a, b, c}
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			asker := askers[i%3]
			var r book.Reservation
			var err error
			if asker == a {
				r, err = a.book.Reserve(name, 1, fmt.Sprint("job-", i), time.Minute)
			} else {
				r, err = asker.Reserve(context.Background(), keyA.ID(), name, 1, fmt.Sprint("job-", i), time.Minute)
			}
			switch {
			case err == nil:
				granted.Add(1)
				mu.Lock()
				held[r.ID] = asker
				mu.Unlock()
			case errors.Is(err, book.ErrInsufficient):
				busy.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if granted.Load() != 10 || busy.Load() != 190 {
		t.Fatalf("granted %d, refused as busy %d; want 10 and 190", granted.Load(), busy.Load())
	}
	// c cannot release b's reservation; b can.
	for id, holder := range held {
		if holder != b {
			continue
		}
		if err := c.Release(context.Background(), keyA.ID(), id); !errors.Is(err, book.ErrNoReservation) {
			t.Fatalf("c released b's reservation: %v", err)
		}
		if err := b.Release(context.Background(), keyA.ID(), id); err != nil {
			t.Fatal(err)
		}
		if e, _ := a.book.Get(name); e.Free != 1 {
			t.Fatalf("after release, %d free", e.Free)
		}
		break
	}
	// A reservation of an offer a does not own is refused, as jobs.Remote
	// promises: the home broker's runner excludes such an offer rather
	// than waiting on it as if its owner were out of reach.
	_, err := b.Reserve(context.Background(), keyC.ID(), name, 1, "j", time.Minute)
	if !errors.Is(err, jobs.ErrRefused) || !strings.Contains(err.Error(), "which alone reserves it") {
		t.Fatalf("c reserved a's offer: %v", err)
	}
	// So is a malformed one, and an unknown offer is unknown.
	if _, err := b.Reserve(context.Background(), keyA.ID(), name, 0, "j", time.Minute); !errors.Is(err, jobs.ErrRefused) {
		t.Fatalf("a reservation of no instances: %v", err)
	}
	if _, err := b.Reserve(context.Background(), keyA.ID(), "no-such-offer", 1, "j", time.Minute); !errors.Is(err, book.ErrUnknownOffer) || errors.Is(err, jobs.ErrRefused) {
		t.Fatalf("an unknown offer: %v", err)
	}
}

// TestWireErrors: every error of the wire table crosses as its code and
// comes back as the same error, with its message once; an error outside
// the table is no kind the asker would act on (it retries), and a code
// it does not know is the same.
func TestWireErrors(t *testing.T) {
	peer := keyB.ID()
	for _, w := range wireErrors {
		sent := fmt.Errorf("%w: the reason", w.err)
		code, msg := codeOf(sent)
		if code != w.code || msg != "the reason" {
			t.Errorf("%v crosses as %q %q", sent, code, msg)
		}
		got := errorOf(peer, code, msg)
		for _, other := range wireErrors {
			if errors.Is(got, other.err) != (other.code == w.code) {
				t.Errorf("%q comes back as %v: errors.Is(%v) = %v", code, got, other.err, !(other.code == w.code))
			}
		}
		if want := w.err.Error() + " (broker " + peer.String() + ": the reason)"; got.Error() != want {
			t.Errorf("%q reads %q, want %q", code, got.Error(), want)
		}
	}
	if code, _ := codeOf(errors.New("disk full")); code != "" {
		t.Errorf("an outage crosses as %q", code)
	}
	for _, code := range []string{codeUnavailable, "from-a-newer-broker"} {
		got := errorOf(peer, code, "x")
		for _, w := range wireErrors {
			if errors.Is(got, w.err) {
				t.Errorf("%q comes back as %v", code, w.err)
			}
		}
	}
}

// TestStreamsBounded: a peer that announces an oversized message, sends
// garbage, or opens a stream and never writes is cut off — by the size
// bound at once, by the deadline otherwise — and each is counted.
func TestStreamsBounded(t *testing.T) {
	a, b := start(t, keyA, members), start(t, keyB, members)
	connect(t, b, a)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		protocol protocol.ID
		send     []byte
	}{
		{"oversized sync summary", ProtocolSync, binary.AppendUvarint(nil, MaxSyncRequest+1)},
		{"oversized reservation", ProtocolReserve, binary.AppendUvarint(nil, MaxReserve+1)},
		{"garbage reservation", ProtocolReserve, append(binary.AppendUvarint(nil, 5), "{{{{{"...)},
		{"silent reservation", ProtocolReserve, nil},
		{"oversized forward", ProtocolExec, binary.AppendUvarint(nil, MaxExec+1)},
		{"garbage exec request", ProtocolExec, append(binary.AppendUvarint(nil, 3), "[1,"...)},
		{"oversized statement", ProtocolStatements, binary.AppendUvarint(nil, MaxStatement+1)},
		{"garbage statement", ProtocolStatements, append(binary.AppendUvarint(nil, 4), "nope"...)},
		{"oversized witness request", ProtocolWitness, binary.AppendUvarint(nil, MaxWitness+1)},
		{"truncated witness request", ProtocolWitness, append(binary.AppendUvarint(nil, 100), "{"...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counter := a.m.streamErrors.WithLabelValues(string(tc.protocol), "read")
			before := testutil.ToFloat64(counter)
			s, err := b.host.NewStream(ctx, a.host.ID(), tc.protocol)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Reset()
			if tc.send != nil {
				if _, err := s.Write(tc.send); err != nil {
					t.Fatal(err)
				}
			}
			s.SetReadDeadline(time.Now().Add(60 * time.Second))
			if n, err := io.ReadAll(s); err == nil && len(n) > 0 {
				t.Fatalf("a answered: %q", n)
			}
			eventually(t, "a counts the bad stream", func() bool { return testutil.ToFloat64(counter) > before })
		})
	}
	// a still serves honest requests afterwards.
	name := a.register(t, "after", 1, 1)
	if _, err := b.Reserve(ctx, keyA.ID(), name, 1, "j", time.Minute); err != nil {
		t.Fatalf("an honest reservation after the attacks: %v", err)
	}
}

// TestFloodFromOneMember: a member floods the offer topic with junk; its
// peers reject it and keep hearing their other peers.
func TestFloodFromOneMember(t *testing.T) {
	a, b := start(t, keyA, members), start(t, keyB, members)
	connect(t, a, b)
	m := start(t, hostile[2], members)
	connect(t, m, b)
	rejected := b.m.gossip.WithLabelValues(TopicOffers, "rejected", "malformed")
	for i := range 500 {
		if err := m.offers.Publish(context.Background(), fmt.Appendf(nil, "junk %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "b rejects the junk", func() bool { return testutil.ToFloat64(rejected) > 0 })
	name := a.register(t, "during-flood", 1, 1)
	eventually(t, "b still hears a", func() bool { return b.holds(name, 1) })
}

// TestLeasesSurviveRestart: a lease the owner granted a peer is kept: the
// owner, restarted, holds the instances again until the lease is released
// by its holder, and a lease released before the restart is not held.
func TestLeasesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	a, b := startWith(t, keyA, members, startOptions{dir: dir}), start(t, keyB, members)
	connect(t, b, a)
	ctx := context.Background()
	name := a.register(t, "cpu", 1, 3)
	kept, err := b.Reserve(ctx, keyA.ID(), name, 2, "j-kept", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := b.Reserve(ctx, keyA.ID(), name, 1, "j-gone", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, keyA.ID(), gone.ID); err != nil {
		t.Fatal(err)
	}
	a.stop()

	a = startWith(t, keyA, members, startOptions{dir: dir})
	e, ok := a.book.Get(name)
	if !ok || a.book.Free(e) != 1 {
		t.Fatalf("after the restart: held %v, free %d; want the kept lease's 2 of 3 held", ok, a.book.Free(e))
	}
	connect(t, b, a)
	if _, err := b.Reserve(ctx, keyA.ID(), name, 2, "j-more", time.Minute); !errors.Is(err, book.ErrInsufficient) {
		t.Fatalf("over-allocated past a kept lease: %v", err)
	}
	if err := b.Release(ctx, keyA.ID(), kept.ID); err != nil {
		t.Fatalf("the holder releases the kept lease: %v", err)
	}
	if a.book.Free(e) != 3 {
		t.Fatalf("free %d after the release, want 3", a.book.Free(e))
	}
}
