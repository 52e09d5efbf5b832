package integration

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/cinet/cinet/settlement/settlementtest"

	"github.com/cinet/cinet/identity"
)

// fedBroker writes the configuration of one broker of a federation: its
// own key and local provider, the members, and the peers to bootstrap from.
func fedBroker(t testing.TB, k, provider *identity.Key, region string, members []identity.PrincipalID, bootstrap ...string) *brokerProc {
	t.Helper()
	dir := t.TempDir()
	b := &brokerProc{t: t, dir: dir, keys: map[string]string{}}
	for role, key := range map[string]*identity.Key{"broker": k, "provider": provider, "regulator": regulatorKey, "tenant": tenantKey} {
		path := filepath.Join(dir, role+".key")
		if err := identity.WriteKeyFile(path, key); err != nil {
			t.Fatal(err)
		}
		b.keys[role] = path
	}
	b.writeFedConfig(region, members, bootstrap)
	return b
}

func (b *brokerProc) writeFedConfig(region string, members []identity.PrincipalID, bootstrap []string) {
	var ms []string
	for _, m := range members {
		ms = append(ms, m.String())
	}
	prov, _ := identity.LoadKeyFile(b.keys["provider"])
	host := cmp.Or(b.host, "127.0.0.1")
	cfg := fmt.Sprintf(`region: %s
data: %s
key: broker.key
listen: `+host+`:0
fee: "0.02"
poll: 50ms
logLevel: info
principals:
  - {did: %s, role: tenant}
  - {did: %s, role: regulator}
providers:
  - provider: %s
    adapter: local
    config: {workdir: %s, killGrace: 1s}
federation:
  listen: [/ip4/`+host+`/tcp/0, /ip4/`+host+`/udp/0/quic-v1]
  bootstrap: [%s]
  members: [%s]
  sync: 2s
  statementPeriod: 1s
  statementDelay: 1s
checkpoint: 1s
`, region, b.dir, tenantKey.ID(), regulatorKey.ID(), prov.ID(), filepath.Join(b.dir, "work"), strings.Join(bootstrap, ", "), strings.Join(ms, ", "))
	if err := os.WriteFile(filepath.Join(b.dir, "broker.yaml"), []byte(cfg), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// registerOwnedOffer registers the provider's CPU offer, owned by broker,
// through the CLI.
func (b *brokerProc) registerOwnedOffer(broker identity.PrincipalID, pool string) string {
	b.t.Helper()
	prov, _ := identity.LoadKeyFile(b.keys["provider"])
	cid, _ := identity.NewComputeID(prov.ID(), "cn-east-1", "a", pool)
	path := filepath.Join(b.dir, pool+".yaml")
	os.WriteFile(path, []byte(strings.Replace(fmt.Sprintf(localOffer, cid, prov.ID(), broker, 2), "local-cpu", pool, 1)), 0o644)
	if code, out, errOut := b.cli("provider", "provider", "register", path); code != 0 {
		b.t.Fatalf("provider register: %d\n%s\n%s", code, out, errOut)
	}
	return cid.Name()
}

func (b *brokerProc) fedAddrs() []string {
	b.t.Helper()
	st, err := b.client("regulator").Federation(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	return st.Addrs
}

// fedOffers lists the offers the CLI shows, by name → owner.
func (b *brokerProc) fedOffers() map[string]string {
	b.t.Helper()
	code, out, errOut := b.cli("tenant", "federation", "offers", "-o", "json")
	if code != 0 {
		b.t.Fatalf("federation offers: %d %s", code, errOut)
	}
	var list struct {
		Offers []struct{ Name, Broker string }
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		b.t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range list.Offers {
		got[o.Name] = o.Broker
	}
	return got
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFederationProcesses: three brokers as separate processes find each
// other through bootstrap addresses (C knows only B, B only A), and every
// offer reaches every book under its owner. B is killed, its bootstrap
// list removed, and an offer registered at A while it is down: restarted,
// it reconnects from the peers it kept and pulls what it missed.
func TestFederationProcesses(t *testing.T) {
	kA, kB, kC := Key(21), Key(22), Key(23)
	members := []identity.PrincipalID{kA.ID(), kB.ID(), kC.ID()}
	a := fedBroker(t, kA, Key(31), "cn-north-1", members)
	a.start()
	b := fedBroker(t, kB, Key(32), "cn-east-1", members, a.fedAddrs()...)
	b.start()
	c := fedBroker(t, kC, Key(33), "eu-west-1", members, b.fedAddrs()...)
	c.start()

	offerA := a.registerOwnedOffer(kA.ID(), "cpu-a")
	offerC := c.registerOwnedOffer(kC.ID(), "cpu-c")
	for _, x := range []*brokerProc{a, b, c} {
		waitUntil(t, "every book holds both offers", func() bool {
			got := x.fedOffers()
			return got[offerA] == kA.ID().String() && got[offerC] == kC.ID().String()
		})
	}
	code, out, _ := b.cli("regulator", "federation", "peers")
	if code != 0 || !strings.Contains(out, kA.ID().String()) || !strings.Contains(out, kC.ID().String()) {
		t.Fatalf("b's peers: %d\n%s", code, out)
	}

	b.stop(syscall.SIGKILL)
	b.writeFedConfig("cn-east-1", members, nil) // no bootstrap: peers.json alone
	offerA2 := a.registerOwnedOffer(kA.ID(), "cpu-a2")
	b.start()
	waitUntil(t, "the restarted b pulls the offer it missed", func() bool { return b.fedOffers()[offerA2] == kA.ID().String() })
}
