package federation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/cinet/cinet/descriptor"
	"github.com/cinet/cinet/identity"
)

// arrivals records when each broker admitted each offer.
type arrivals struct {
	mu   sync.Mutex
	at   map[string][]time.Time // pool name → when each broker admitted it
	cond *sync.Cond
}

type timedRegistry struct {
	Registry
	a *arrivals
}

func (r timedRegistry) Admit(ctx context.Context, envelope []byte, owner identity.PrincipalID) (*descriptor.Document, error) {
	doc, err := r.Registry.Admit(ctx, envelope, owner)
	if err == nil {
		now := time.Now()
		r.a.mu.Lock()
		name := doc.Offer.ComputeID.Name()
		r.a.at[name] = append(r.a.at[name], now)
		r.a.cond.Broadcast()
		r.a.mu.Unlock()
	}
	return doc, err
}

// BenchmarkPropagation publishes offers from random brokers of a
// federation of 10 and of 50 on loopback, each broker connected to two
// earlier ones, and measures how long until each other broker has admitted
// each offer: p50 and p99 over every (offer, broker) pair, and of the time
// until the last broker has it. Anti-entropy runs at its default, 30 s,
// so what is measured is gossip.
//
//	go test ./broker/federation -run XXX -bench Propagation -benchtime 30x
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("brokers=%d", n), func(b *testing.B) {
			a := &arrivals{at: map[string][]time.Time{}}
			a.cond = sync.NewCond(&a.mu)
			keys := make([]*identity.Key, n)
			for i := range keys {
				keys[i] = key(fmt.Sprintf("bench %d", i))
			}
			mem := ids(keys)
			nodes := make([]*broker, n)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range n {
				nodes[i] = startWith(b, keys[i], mem, startOptions{quiet: true, syncEvery: 30 * time.Second,
					wrap: func(r Registry) Registry { return timedRegistry{r, a} }})
				dial := func(j int) {
					if err := nodes[i].Connect(context.Background(), nodes[j].Addrs()[0]); err != nil {
						b.Fatal(err)
					}
				}
				if i > 0 {
					dial(i - 1)
				}
				if i > 1 {
					if j := rng.IntN(i - 1); nodes[i].Host().Network().Connectedness(nodes[j].Host().ID()) != network.Connected {
						dial(j)
					}
				}
			}
			// Gossip flows once each broker has grafted its peers into its
			// mesh for offers (at most GossipSub's degree of them).
			eventually(b, "every broker meshed with its peers", func() bool {
				for _, x := range nodes {
					meshed, peers := 0, x.Host().Network().Peers()
					for _, p := range peers {
						if x.Meshed(TopicOffers, p) {
							meshed++
						}
					}
					if meshed < min(len(peers), 2) {
						return false
					}
				}
				return true
			})
			var each, last []time.Duration
			b.ResetTimer()
			for i := range b.N {
				from := nodes[rng.IntN(n)]
				env := offerFor(b, from.ID(), fmt.Sprintf("p%d", i), 1, 1, provider)
				doc, err := from.reg.Register(context.Background(), env, provider.ID())
				if err != nil {
					b.Fatal(err)
				}
				name := doc.Offer.ComputeID.Name()
				t0 := time.Now()
				if err := from.PublishOffer(context.Background(), env); err != nil {
					b.Fatal(err)
				}
				deadline := time.AfterFunc(60*time.Second, func() { a.mu.Lock(); a.cond.Broadcast(); a.mu.Unlock() })
				a.mu.Lock()
				for len(a.at[name]) < n-1 && time.Since(t0) < 60*time.Second {
					a.cond.Wait()
				}
				got := slices.Clone(a.at[name])
				a.mu.Unlock()
				deadline.Stop()
				if len(got) < n-1 {
					b.Fatalf("offer %d reached %d of %d brokers in 60s", i, len(got), n-1)
				}
				var slowest time.Duration
				for _, t := range got {
					each = append(each, t.Sub(t0))
					slowest = max(slowest, t.Sub(t0))
				}
				last = append(last, slowest)
			}
			b.StopTimer()
			report := func(name string, ds []time.Duration) {
				slices.Sort(ds)
				b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, name+"-p50-ms")
				b.ReportMetric(float64(ds[(len(ds)*99)/100].Microseconds())/1000, name+"-p99-ms")
			}
			report("each", each)
			report("all", last)
		})
	}
}
